"""The whole program, per stack file, offline."""

import pytest

from offline.harness import STACKS, ProgramFailed

EXPECTED_TYPES = {
    "carepath:network:Network",
    "carepath:cluster:Cluster",
    "carepath:registry:Registry",
    "awsx:ec2:Vpc",
    "eks:index:Cluster",
    "eks:index:ManagedNodeGroup",
    "eks:index:VpcCniAddon",
    "aws:kms/key:Key",
    "aws:iam/role:Role",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:ecr/repository:Repository",
    "aws:ecr/lifecyclePolicy:LifecyclePolicy",
    "pulumi:providers:kubernetes",
    "carepath:edge:Edge",
    "carepath:edge:LoadBalancerController",
    "carepath:namespace:AppNamespace",
    "carepath:router:TargetGroupRouter",
    "carepath:track:Track",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:lb/loadBalancer:LoadBalancer",
    "aws:lb/targetGroup:TargetGroup",
    "aws:lb/listener:Listener",
    "aws:iam/policy:Policy",
    "kubernetes:helm.sh/v4:Chart",
    "kubernetes:core/v1:Namespace",
    "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding",
    "kubernetes:apps/v1:Deployment",
    "kubernetes:core/v1:Service",
    "kubernetes:policy/v1:PodDisruptionBudget",
}


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_evaluates_offline(run_stack, stack):
    plan = run_stack(stack)
    assert {r.type for r in plan.managed} == EXPECTED_TYPES
    assert plan.one("eks:index:Cluster").inputs["name"] == f"carepath-{stack}"
    assert plan.outputs["namespace"] == f"carepath-{stack}"
    assert plan.outputs["kubeconfig"] == "[secret]"
    assert plan.outputs["repositoryUrl"].endswith(".dkr.ecr.us-east-1.amazonaws.com/carepath-chat-api")
    components = {r.urn for r in plan.managed if r.type.startswith("carepath:")}
    root = plan.one("pulumi:pulumi:Stack")
    for resource in plan.managed:
        assert resource.parent in components | {root.urn}, resource.urn


def test_production_runs_a_nat_gateway_per_zone_and_demo_one(run_stack):
    assert run_stack("production").one("awsx:ec2:Vpc").inputs["natGateways"] == {"strategy": "OnePerAz"}
    assert run_stack("demo").one("awsx:ec2:Vpc").inputs["natGateways"] == {"strategy": "Single"}


def test_production_restricts_the_public_api_endpoint(run_stack):
    cluster = run_stack("production").one("eks:index:Cluster").inputs
    assert "0.0.0.0/0" not in cluster["publicAccessCidrs"]
    assert cluster["deletionProtection"] is True


@pytest.mark.parametrize(
    "overrides",
    [
        {"rollout.strategy": "canry"},
        {"chatApi.tag": "latest"},
        {"cluster.minNodes": 5},
        {"chatApi.replica": 3},
        {"rollout.canary.weight": 120, "mesh.enabled": False},
    ],
    ids=str,
)
@pytest.mark.parametrize("stack", STACKS)
def test_bad_config_registers_nothing(run_stack, stack, overrides):
    with pytest.raises(ProgramFailed) as caught:
        run_stack(stack, overrides)
    assert "carepath:" in str(caught.value.cause)
    assert caught.value.plan.managed == []


def test_an_existing_vpc_is_used_as_is(run_stack):
    plan = run_stack(
        "demo",
        {
            "cluster.vpcId": "vpc-0123456789abcdef0",
            "cluster.publicSubnetIds": ["subnet-0aaaaaaa", "subnet-0bbbbbbb"],
            "cluster.privateSubnetIds": ["subnet-0ccccccc", "subnet-0ddddddd"],
        },
    )
    assert plan.of_type("awsx:ec2:Vpc") == []
    cluster = plan.one("eks:index:Cluster").inputs
    assert cluster["vpcId"] == "vpc-0123456789abcdef0"
    assert plan.one("eks:index:ManagedNodeGroup").inputs["subnetIds"] == ["subnet-0ccccccc", "subnet-0ddddddd"]
    assert plan.outputs["vpcId"] == "vpc-0123456789abcdef0"

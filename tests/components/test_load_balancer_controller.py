import json

import pytest

from components.load_balancer_controller import CHART_REPOSITORY, LoadBalancerController, LoadBalancerControllerArgs

GROUPS = [
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/edge-blue/0123456789abcdef",
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/edge-green/fedcba9876543210",
]
OIDC = "oidc.eks.us-east-1.amazonaws.com/id/ABCDEF"


@pytest.fixture(scope="module")
def plan(run_component):
    return run_component(
        lambda: LoadBalancerController(
            "aws-load-balancer-controller",
            LoadBalancerControllerArgs(
                cluster_name="carepath-test",
                region="us-east-1",
                vpc_id="vpc-0123456789abcdef0",
                oidc_provider_arn=f"arn:aws:iam::123456789012:oidc-provider/{OIDC}",
                oidc_provider_url=f"https://{OIDC}",
                target_group_arns=GROUPS,
                chart_version="1.17.0",
            ),
        )
    )


def _actions(statement):
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


def test_policy_is_a_least_privilege_subset_of_the_recommended_one(plan, reference_schema):
    recommended = reference_schema("aws-lb-controller-iam-policy.json")
    allowed = {a for s in recommended["Statement"] for a in _actions(s)}
    policy = json.loads(plan.one("aws:iam/policy:Policy").inputs["policy"])
    granted = [a for s in policy["Statement"] for a in _actions(s)]
    assert set(granted) <= allowed
    mutating = {a for a in granted if not a.split(":")[1].startswith("Describe")}
    assert mutating == {"elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"}
    for statement in policy["Statement"]:
        if set(_actions(statement)) & mutating:
            assert statement["Resource"] == sorted(GROUPS), "target changes only on Pulumi's target groups"


def test_irsa_role_trusts_only_the_controller_service_account(plan):
    role = plan.one("aws:iam/role:Role")
    [statement] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Condition"]["StringEquals"] == {
        f"{OIDC}:sub": "system:serviceaccount:kube-system:aws-load-balancer-controller",
        f"{OIDC}:aud": "sts.amazonaws.com",
    }
    attachment = plan.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment").inputs
    assert attachment["policyArn"] == plan.one("aws:iam/policy:Policy").outputs["arn"]


def test_chart_is_pinned_and_wired_to_the_role(plan):
    chart = plan.one("kubernetes:helm.sh/v4:Chart")
    assert chart.inputs["chart"] == "aws-load-balancer-controller"
    assert chart.inputs["version"] == "1.17.0"
    assert chart.inputs["repositoryOpts"] == {"repo": CHART_REPOSITORY}
    assert chart.inputs["namespace"] == "kube-system"
    values = chart.inputs["values"]
    assert values["clusterName"] == "carepath-test" and values["vpcId"] == "vpc-0123456789abcdef0"
    assert values["serviceAccount"]["annotations"] == {"eks.amazonaws.com/role-arn": plan.one("aws:iam/role:Role").outputs["arn"]}
    assert values["createIngressClassResource"] is False
    assert plan.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment").urn in chart.options["dependsOn"]


def test_two_replicas_under_the_charts_disruption_budget(plan):
    values = plan.one("kubernetes:helm.sh/v4:Chart").inputs["values"]
    # The chart renders its PDB only with more than one replica; one pod may go, one stays.
    assert values["replicaCount"] == 2
    assert values["podDisruptionBudget"] == {"maxUnavailable": 1}

import json

import pytest

from components.cluster import ADMIN_POLICY, LOG_TYPES, Cluster, ClusterArgs
from core.settings import ClusterSettings
from tests.conftest import unknown_inputs

PRIVATE = ["subnet-0ccccccc", "subnet-0ddddddd", "subnet-0eeeeeee"]
PUBLIC = ["subnet-0aaaaaaa", "subnet-0bbbbbbb", "subnet-0fffffff"]
ADMIN = "arn:aws:iam::123456789012:role/platform-admin"


@pytest.fixture(scope="module")
def plan(run_component):
    config = ClusterSettings(
        instance_type="m7g.large",
        min_nodes=2,
        desired_nodes=3,
        max_nodes=5,
        public_access_cidrs=("198.51.100.0/24",),
        admin_role_arns=(ADMIN,),
    )
    return run_component(
        lambda: Cluster(
            "cluster",
            ClusterArgs(
                cluster_name="carepath-test",
                config=config,
                vpc_id="vpc-0123456789abcdef0",
                public_subnet_ids=PUBLIC,
                private_subnet_ids=PRIVATE,
            ),
        )
    )


def test_children_are_parented_to_the_component(plan):
    component = plan.one("carepath:cluster:Cluster")
    assert {r.parent for r in plan.managed if r is not component} == {component.urn}
    assert sorted(r.type for r in plan.children(component)) == sorted(
        [
            "aws:kms/key:Key",
            "aws:iam/role:Role",
            "aws:iam/role:Role",
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            "eks:index:Cluster",
            "eks:index:ManagedNodeGroup",
            "eks:index:VpcCniAddon",
            "pulumi:providers:kubernetes",
        ]
    )


def test_eks_cluster_is_pinned_logged_encrypted_and_uses_access_entries(plan, reference_schema):
    cluster = plan.one("eks:index:Cluster")
    key = plan.one("aws:kms/key:Key")
    inputs = cluster.inputs
    assert inputs["name"] == "carepath-test"
    assert inputs["version"] == "1.34"
    assert inputs["authenticationMode"] == "API"
    assert inputs["enabledClusterLogTypes"] == LOG_TYPES
    assert inputs["encryptionConfigKeyArn"] == key.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True
    assert inputs["createOidcProvider"] is True
    assert inputs["skipDefaultNodeGroup"] is True
    assert inputs["endpointPrivateAccess"] is True
    assert inputs["publicAccessCidrs"] == ["198.51.100.0/24"]
    assert inputs["privateSubnetIds"] == PRIVATE and inputs["publicSubnetIds"] == PUBLIC
    assert inputs["nodeAssociatePublicIpAddress"] is False
    [entry] = inputs["accessEntries"].values()
    assert entry["principalArn"] == ADMIN
    assert entry["accessPolicies"]["cluster-admin"]["policyArn"] == ADMIN_POLICY
    assert unknown_inputs(cluster, reference_schema("pulumi-eks-schema-subset.json")) == []


def test_node_group_is_al2023_on_private_subnets_sized_from_config(plan):
    nodes = plan.one("eks:index:ManagedNodeGroup")
    assert nodes.inputs["amiType"] == "AL2023_ARM_64_STANDARD"
    assert nodes.inputs["instanceTypes"] == ["m7g.large"]
    assert nodes.inputs["subnetIds"] == PRIVATE
    assert nodes.inputs["scalingConfig"] == {"minSize": 2, "desiredSize": 3, "maxSize": 5}
    assert nodes.inputs["cluster"] == plan.one("eks:index:Cluster").urn
    node_role = plan.one("aws:iam/role:Role", "cluster-node")
    assert nodes.inputs["nodeRoleArn"] == node_role.outputs["arn"]


def test_iam_is_least_privilege(plan, reference_schema):
    attachments = {r.name: r.inputs for r in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")}
    node_role = plan.one("aws:iam/role:Role", "cluster-node").outputs["name"]
    node_policies = {a["policyArn"].rsplit("/", 1)[1] for a in attachments.values() if a["role"] == node_role}
    assert node_policies == {"AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly"}

    cni_role = plan.one("aws:iam/role:Role", "cluster-vpc-cni")
    assert attachments["cluster-vpc-cni"] == {"role": cni_role.outputs["name"], "policyArn": "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"}
    trust = json.loads(cni_role.inputs["assumeRolePolicy"])["Statement"]
    cluster = plan.one("eks:index:Cluster").outputs
    issuer = cluster["oidcProviderUrl"].removeprefix("https://")
    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"Federated": cluster["oidcProviderArn"]},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    f"{issuer}:sub": "system:serviceaccount:kube-system:aws-node",
                    f"{issuer}:aud": "sts.amazonaws.com",
                }
            },
        }
    ]
    addon = plan.one("eks:index:VpcCniAddon")
    assert addon.inputs["serviceAccountRoleArn"] == cni_role.outputs["arn"]
    assert addon.inputs["clusterName"] == "carepath-test"
    for role in plan.of_type("aws:iam/role:Role"):
        assert unknown_inputs(role, reference_schema("pulumi-aws-schema-subset.json")) == []


def test_kubernetes_provider_is_built_from_the_cluster_kubeconfig(plan):
    provider = plan.one("pulumi:providers:kubernetes")
    kubeconfig = json.loads(provider.inputs["kubeconfig"])
    assert kubeconfig["clusters"][0]["name"] == "carepath-test"
    assert provider.inputs["kubeconfig"] == plan.one("eks:index:Cluster").outputs["kubeconfigJson"]

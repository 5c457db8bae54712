import json

import kubernetes_validate
import pytest

from components.cluster import ADMIN_POLICY, EBS_CSI_ADDON_VERSION, LOG_TYPES, STORAGE_CLASS, Cluster, ClusterArgs
from core.settings import ClusterSettings
from tests.conftest import KUBERNETES_VERSION, unknown_inputs

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
            "aws:kms/key:Key",
            "aws:iam/role:Role",
            "aws:iam/role:Role",
            "aws:iam/role:Role",
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            "aws:iam/rolePolicy:RolePolicy",
            "aws:ec2/launchTemplate:LaunchTemplate",
            "aws:eks/addon:Addon",
            "eks:index:Cluster",
            "eks:index:ManagedNodeGroup",
            "eks:index:VpcCniAddon",
            "kubernetes:storage.k8s.io/v1:StorageClass",
            "pulumi:providers:kubernetes",
        ]
    )


def test_eks_cluster_is_pinned_logged_encrypted_and_uses_access_entries(plan, reference_schema):
    cluster = plan.one("eks:index:Cluster")
    key = plan.one("aws:kms/key:Key", "cluster-secrets")
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


def test_nodes_require_imdsv2_out_of_pods_reach_and_encrypt_their_root_volume(plan, reference_schema):
    template = plan.one("aws:ec2/launchTemplate:LaunchTemplate")
    # A hop limit of 1: the metadata answer dies at the pod's network namespace, so pods cannot take the node's role.
    assert template.inputs["metadataOptions"] == {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1}
    [root] = template.inputs["blockDeviceMappings"]
    assert root["deviceName"] == "/dev/xvda"  # AL2023's root device
    assert root["ebs"]["volumeType"] == "gp3" and root["ebs"]["encrypted"] == "true"
    assert unknown_inputs(template, reference_schema("pulumi-aws-schema-subset.json")) == []
    nodes = plan.one("eks:index:ManagedNodeGroup")
    assert template.urn in nodes.options["dependsOn"]
    assert nodes.inputs["launchTemplate"]["id"].startswith("cluster-nodes-")  # the template's id under the mocks
    assert nodes.inputs["launchTemplate"]["version"] == str(template.outputs.get("latestVersion"))
    # EKS refuses these next to a launch template.
    assert "diskSize" not in nodes.inputs and "remoteAccess" not in nodes.inputs


def test_ebs_csi_driver_runs_with_its_own_role_limited_to_the_volumes_key(plan, reference_schema):
    schema = reference_schema("pulumi-aws-schema-subset.json")
    addon = plan.one("aws:eks/addon:Addon")
    role = plan.one("aws:iam/role:Role", "cluster-ebs-csi")
    assert (addon.inputs["addonName"], addon.inputs["addonVersion"]) == ("aws-ebs-csi-driver", EBS_CSI_ADDON_VERSION)
    assert addon.inputs["clusterName"] == "carepath-test"
    assert addon.inputs["serviceAccountRoleArn"] == role.outputs["arn"]
    assert plan.one("eks:index:ManagedNodeGroup").urn in addon.options["dependsOn"]  # its pods need nodes
    [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    [sub] = [value for key, value in trust["Condition"]["StringEquals"].items() if key.endswith(":sub")]
    assert sub == "system:serviceaccount:kube-system:ebs-csi-controller-sa"

    key = plan.one("aws:kms/key:Key", "cluster-volumes")
    assert key.inputs["enableKeyRotation"] is True
    attachment = plan.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "cluster-ebs-csi")
    assert attachment.inputs == {"role": role.outputs["name"], "policyArn": "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"}
    kms = plan.one("aws:iam/rolePolicy:RolePolicy")
    assert kms.inputs["role"] == role.outputs["name"]
    statements = json.loads(kms.inputs["policy"])["Statement"]
    assert {s["Resource"] for s in statements} == {key.outputs["arn"]}
    assert all(action.startswith("kms:") for s in statements for action in s["Action"])
    grants = next(s for s in statements if "kms:CreateGrant" in s["Action"])
    assert grants["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    for resource in (addon, key, kms):
        assert unknown_inputs(resource, schema) == []


def test_default_storage_class_is_encrypted_gp3_with_the_stacks_key(plan):
    storage = plan.one("kubernetes:storage.k8s.io/v1:StorageClass")
    assert storage.inputs["metadata"] == {"name": STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}
    assert storage.inputs["provisioner"] == "ebs.csi.aws.com"
    key = plan.one("aws:kms/key:Key", "cluster-volumes")
    assert storage.inputs["parameters"] == {"type": "gp3", "encrypted": "true", "kmsKeyId": key.outputs["arn"]}
    assert storage.inputs["volumeBindingMode"] == "WaitForFirstConsumer"
    assert storage.inputs["allowVolumeExpansion"] is True
    assert plan.one("aws:eks/addon:Addon").urn in storage.options["dependsOn"]
    assert storage.options["provider"].startswith(plan.one("pulumi:providers:kubernetes").urn)
    # Whole: a StorageClass keeps its settings at the top level, not under `spec`.
    kubernetes_validate.validate(dict(storage.inputs), KUBERNETES_VERSION, strict=True)


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


def test_vpc_cni_enforces_network_policies(plan, reference_schema):
    # Without the agent, NetworkPolicies are accepted and ignored: every default deny would be void.
    addon = plan.one("eks:index:VpcCniAddon")
    assert addon.inputs["enableNetworkPolicy"] is True
    options = reference_schema("pulumi-eks-schema-subset.json")["types"]["eks:index:VpcCniOptions"]["properties"]
    assert options["enableNetworkPolicy"]["type"] == "boolean"

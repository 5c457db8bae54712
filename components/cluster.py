"""Cluster: EKS with a managed AL2023 node group, IRSA, logging and KMS-encrypted secrets.

Access is by EKS access entries (authentication mode API, no aws-auth ConfigMap).
The VPC CNI runs with its own IRSA role, so the node role holds only what the
kubelet needs (worker policy and ECR pull). The nodes start from a launch template
that requires IMDSv2 with a hop limit of 1, so a pod cannot reach the instance
metadata and take the node's role, and gives them an encrypted gp3 root volume.
Volumes come from the EBS CSI driver add-on (its own IRSA role) through the default
StorageClass `STORAGE_CLASS`: gp3, encrypted with a key of this stack. Every
Kubernetes resource of the stack goes through `provider`, built from this cluster's
kubeconfig.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from core.naming import node_ami_type
from core.settings import ClusterSettings

LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
NODE_POLICIES = {
    "worker": "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "ecr-pull": "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
}
CNI_POLICY = "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
EBS_CSI_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
EBS_CSI_ADDON_VERSION = "v1.53.0-eksbuild.1"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
STORAGE_CLASS = "gp3-encrypted"
# AL2023's root device; 20 GiB is the size EKS gives a managed node without a launch template.
ROOT_DEVICE = "/dev/xvda"
ROOT_VOLUME_GIB = 20


@dataclass(frozen=True)
class ClusterArgs:
    cluster_name: str
    config: ClusterSettings
    vpc_id: pulumi.Input[str]
    public_subnet_ids: pulumi.Input[Sequence[str]]
    private_subnet_ids: pulumi.Input[Sequence[str]]


def irsa_trust_policy(
    oidc_provider_arn: pulumi.Input[str], oidc_provider_url: pulumi.Input[str], namespace: str, service_account: str
) -> pulumi.Output[str]:
    """A role trust policy that only the named service account can assume (IRSA)."""

    def render(args: list[str]) -> str:
        arn, url = args
        issuer = url.removeprefix("https://")
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": arn},
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": {
                            "StringEquals": {
                                f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                                f"{issuer}:aud": "sts.amazonaws.com",
                            }
                        },
                    }
                ],
            }
        )

    return pulumi.Output.all(oidc_provider_arn, oidc_provider_url).apply(render)


def volume_key_policy(key_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """What the EBS CSI driver needs of the volumes' key: AWS's managed driver policy covers
    EC2 only. Grants only for AWS resources (the volumes' attachment to instances)."""

    def render(arn: str) -> str:
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                        "Resource": arn,
                        "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
                    },
                    {
                        "Effect": "Allow",
                        "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                        "Resource": arn,
                    },
                ],
            }
        )

    return pulumi.Output.from_input(key_arn).apply(render)


def _rotating_key(name: str, description: str, opts: pulumi.ResourceOptions) -> aws.kms.Key:
    """A KMS key the stack owns, rotated yearly, with the longest deletion window."""
    return aws.kms.Key(name, description=description, enable_key_rotation=True, deletion_window_in_days=30, opts=opts)


class Cluster(pulumi.ComponentResource):
    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_provider_url: pulumi.Output[str]
    node_security_group_id: pulumi.Output[str]
    node_role_name: pulumi.Output[str]
    provider: k8s.Provider
    storage_class: k8s.storage.v1.StorageClass

    def __init__(self, name: str, args: ClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:cluster:Cluster", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)

        secrets_key = _rotating_key(f"{name}-secrets", f"Envelope encryption of Kubernetes secrets in EKS cluster {args.cluster_name}", child)
        node_role = aws.iam.Role(
            f"{name}-node",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
                    ],
                }
            ),
            opts=child,
        )
        node_policies = [
            aws.iam.RolePolicyAttachment(f"{name}-node-{key}", role=node_role.name, policy_arn=arn, opts=child)
            for key, arn in NODE_POLICIES.items()
        ]

        cluster = eks.Cluster(
            name,
            name=args.cluster_name,
            version=config.kubernetes_version,
            vpc_id=args.vpc_id,
            public_subnet_ids=args.public_subnet_ids,
            private_subnet_ids=args.private_subnet_ids,
            node_associate_public_ip_address=False,
            endpoint_private_access=True,
            endpoint_public_access=config.endpoint_public_access,
            public_access_cidrs=list(config.public_access_cidrs) if config.endpoint_public_access else None,
            authentication_mode=eks.AuthenticationMode.API,
            access_entries={
                f"admin-{arn.rsplit('/', 1)[-1]}": eks.AccessEntryArgs(
                    principal_arn=arn,
                    access_policies={
                        "cluster-admin": eks.AccessPolicyAssociationArgs(
                            policy_arn=ADMIN_POLICY,
                            access_scope={"type": "cluster"},  # pyright: ignore[reportArgumentType]
                        )
                    },
                )
                for arn in config.admin_role_arns
            },
            skip_default_node_group=True,
            create_oidc_provider=True,
            enabled_cluster_log_types=LOG_TYPES,
            encryption_config_key_arn=secrets_key.arn,
            deletion_protection=config.deletion_protection,
            # Managed nodes then carry the EKS-created cluster security group, exposed as node_security_group_id.
            skip_default_security_groups=True,
            # The CNI addon below, with its own IRSA role, replaces the one eks.Cluster would add.
            use_default_vpc_cni=True,
            opts=child,
        )

        cni_role = aws.iam.Role(
            f"{name}-vpc-cni",
            assume_role_policy=irsa_trust_policy(
                cluster.oidc_provider_arn, cluster.oidc_provider_url, "kube-system", "aws-node"
            ),
            opts=child,
        )
        cni_policy = aws.iam.RolePolicyAttachment(
            f"{name}-vpc-cni", role=cni_role.name, policy_arn=CNI_POLICY, opts=child
        )
        eks.VpcCniAddon(
            f"{name}-vpc-cni",
            cluster_name=args.cluster_name,
            service_account_role_arn=cni_role.arn,
            # Its network policy agent enforces the NetworkPolicies (`components.network_policy`);
            # without it they would be accepted and ignored.
            enable_network_policy=True,
            resolve_conflicts_on_create=eks.ResolveConflictsOnCreate.OVERWRITE,
            resolve_conflicts_on_update=eks.ResolveConflictsOnUpdate.OVERWRITE,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster, cni_policy]),
        )

        # No AMI, user data or security groups here: EKS keeps supplying them for the AMI type.
        node_template = aws.ec2.LaunchTemplate(
            f"{name}-nodes",
            description=f"Managed nodes of EKS cluster {args.cluster_name}",
            metadata_options={"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1},
            block_device_mappings=[
                {
                    "device_name": ROOT_DEVICE,
                    "ebs": {
                        "volume_type": "gp3",
                        "volume_size": ROOT_VOLUME_GIB,
                        # The account's EBS key: a key of ours would need a grant to the Auto Scaling service role.
                        "encrypted": "true",
                        "delete_on_termination": "true",
                    },
                }
            ],
            opts=child,
        )
        # With a launch template, EKS refuses the node group's own disk size and remote access.
        nodes = eks.ManagedNodeGroup(
            f"{name}-nodes",
            cluster=cluster,
            node_role_arn=node_role.arn,
            subnet_ids=args.private_subnet_ids,
            ami_type=node_ami_type(config.instance_type),
            instance_types=[config.instance_type],
            launch_template={"id": node_template.id, "version": node_template.latest_version.apply(str)},
            scaling_config={
                "min_size": config.min_nodes,
                "desired_size": config.desired_nodes,
                "max_size": config.max_nodes,
            },
            labels={"carepath.io/pool": "general"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=node_policies),
        )

        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=cluster.kubeconfig_json, opts=child)

        volumes_key = _rotating_key(f"{name}-volumes", f"Encryption of the persistent volumes of EKS cluster {args.cluster_name}", child)
        ebs_role = aws.iam.Role(
            f"{name}-ebs-csi",
            assume_role_policy=irsa_trust_policy(
                cluster.oidc_provider_arn, cluster.oidc_provider_url, "kube-system", EBS_CSI_SERVICE_ACCOUNT
            ),
            opts=child,
        )
        ebs_policies = [
            aws.iam.RolePolicyAttachment(f"{name}-ebs-csi", role=ebs_role.name, policy_arn=EBS_CSI_POLICY, opts=child),
            aws.iam.RolePolicy(f"{name}-ebs-csi-kms", role=ebs_role.name, policy=volume_key_policy(volumes_key.arn), opts=child),
        ]
        # The driver's pods need nodes: the add-on turns active only once they run.
        ebs_driver = aws.eks.Addon(
            f"{name}-ebs-csi",
            cluster_name=args.cluster_name,
            addon_name="aws-ebs-csi-driver",
            addon_version=EBS_CSI_ADDON_VERSION,
            service_account_role_arn=ebs_role.arn,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[nodes, *ebs_policies]),
        )
        # Claims that name no class (and the monitoring ones, which name it) get encrypted gp3;
        # WaitForFirstConsumer creates a volume in the zone of the node its pod is scheduled on.
        self.storage_class = k8s.storage.v1.StorageClass(
            STORAGE_CLASS,
            metadata={"name": STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true", "kmsKeyId": volumes_key.arn},
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[ebs_driver]),
        )
        self.cluster_name = pulumi.Output.from_input(args.cluster_name)
        self.kubeconfig = pulumi.Output.secret(cluster.kubeconfig_json)
        self.oidc_provider_arn = cluster.oidc_provider_arn
        self.oidc_provider_url = cluster.oidc_provider_url
        self.node_security_group_id = cluster.node_security_group_id
        self.node_role_name = node_role.name
        self.register_outputs(
            {
                "clusterName": self.cluster_name,
                "kubeconfig": self.kubeconfig,
                "oidcProviderArn": self.oidc_provider_arn,
            }
        )

"""LoadBalancerController: the AWS Load Balancer Controller, from its Helm chart, with
an IRSA role that can do exactly one job: register and deregister pod IPs in the
target groups Pulumi owns (TargetGroupBinding). It creates no load balancer,
listener, target group or security group rule: Pulumi owns those, so
`pulumi refresh` shows no drift. The policy is a subset of AWS's recommended one.
Two replicas under the chart's PodDisruptionBudget (`maxUnavailable: 1`): a node drain
never stops target registration, which the ALB readiness gates of new pods wait on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.cluster import irsa_trust_policy

CHART_REPOSITORY = "https://aws.github.io/eks-charts"
TGB_API_VERSION = "elbv2.k8s.aws/v1beta1"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "aws-load-balancer-controller"
REPLICAS = 2
DISRUPTION_BUDGET = {"maxUnavailable": 1}

# What reconciling a TargetGroupBinding reads: the target group and its health,
# and the pods' network interfaces and subnets.
DESCRIBE_ACTIONS = (
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
)
TARGET_ACTIONS = ("elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:RegisterTargets")


def controller_policy(target_group_arns: Sequence[str]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "Describe", "Effect": "Allow", "Action": list(DESCRIBE_ACTIONS), "Resource": "*"},
                {"Sid": "Targets", "Effect": "Allow", "Action": list(TARGET_ACTIONS), "Resource": sorted(target_group_arns)},
            ],
        }
    )


def target_group_binding(
    name: str, namespace: pulumi.Input[str], service: str, port: int, target_group_arn: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> k8s.apiextensions.CustomResource:
    """Hands the pods behind `service` to a target group Pulumi owns. No `networking` block:
    Pulumi owns the security group rules; the controller only registers targets."""
    return k8s.apiextensions.CustomResource(
        name,
        api_version=TGB_API_VERSION,
        kind="TargetGroupBinding",
        metadata={"name": service, "namespace": namespace},
        spec={"serviceRef": {"name": service, "port": port}, "targetGroupARN": target_group_arn, "targetType": "ip"},
        opts=opts,
    )


@dataclass(frozen=True)
class LoadBalancerControllerArgs:
    cluster_name: pulumi.Input[str]
    region: str
    vpc_id: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    oidc_provider_url: pulumi.Input[str]
    target_group_arns: Sequence[pulumi.Input[str]]
    chart_version: str


class LoadBalancerController(pulumi.ComponentResource):
    """Kubernetes children use the provider given in `opts.providers`."""

    chart: k8s.helm.v4.Chart

    def __init__(self, name: str, args: LoadBalancerControllerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:edge:LoadBalancerController", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            name,
            assume_role_policy=irsa_trust_policy(args.oidc_provider_arn, args.oidc_provider_url, NAMESPACE, SERVICE_ACCOUNT),
            opts=child,
        )
        policy = aws.iam.Policy(
            name,
            description="AWS Load Balancer Controller, TargetGroupBinding only",
            policy=pulumi.Output.all(*args.target_group_arns).apply(controller_policy),
            opts=child,
        )
        attachment = aws.iam.RolePolicyAttachment(name, role=role.name, policy_arn=policy.arn, opts=child)
        self.chart = k8s.helm.v4.Chart(
            name,
            chart="aws-load-balancer-controller",
            version=args.chart_version,
            repository_opts={"repo": CHART_REPOSITORY},
            namespace=NAMESPACE,
            values={
                "clusterName": args.cluster_name,
                "region": args.region,
                "vpcId": args.vpc_id,
                "replicaCount": REPLICAS,
                # The chart renders its PDB only with more than one replica.
                "podDisruptionBudget": DISRUPTION_BUDGET,
                "serviceAccount": {
                    "create": True,
                    "name": SERVICE_ACCOUNT,
                    "annotations": {"eks.amazonaws.com/role-arn": role.arn},
                },
                # Pulumi owns load balancers: no IngressClass, no hijacking of LoadBalancer Services.
                "createIngressClassResource": False,
                "enableServiceMutatorWebhook": False,
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[attachment]),
        )
        self.register_outputs({"roleArn": role.arn})

"""Network: the VPC the cluster and the ALB live in.

A new VPC (awsx) with public and private subnets over three availability zones,
or an existing VPC named by id. Subnets carry the tags the AWS Load Balancer
Controller looks for, so an existing VPC needs the same tags.

Either way the stack owns the VPC's flow log: every accepted and rejected flow (`traffic_type
ALL`) to a CloudWatch log group kept `FLOW_LOG_RETENTION_DAYS`, written through a role only
the flow logs service can assume, allowed to write to that group and nothing else. The stack
does not own an existing VPC, but a flow log is a resource of its own: destroying the stack
removes the flow log and leaves the VPC. The group is encrypted at rest by CloudWatch Logs'
own keys, not a customer KMS key: flow records hold addresses and ports, no patient data, and
a key would need a key policy for the Logs service of each Region.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal, Optional, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_awsx as awsx

from core.subnets import subnet_layout

AVAILABILITY_ZONES = 3
_NAT = {"single": awsx.ec2.NatGatewayStrategy.SINGLE, "onePerAz": awsx.ec2.NatGatewayStrategy.ONE_PER_AZ}
FLOW_LOG_RETENTION_DAYS = 90  # a quarter of traffic history for an investigation
FLOW_LOGS_SERVICE = "vpc-flow-logs.amazonaws.com"
# What delivering to one log group takes (the VPC guide's role, less creating and listing groups: the stack made this one).
FLOW_LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams")


def log_group_arn(name: pulumi.Input[str], parent: pulumi.Resource) -> pulumi.Output[str]:
    """A CloudWatch log group's ARN from its name: the same as the group's `arn`, known before
    the group exists (so a plan shows it)."""
    invoke = pulumi.InvokeOutputOptions(parent=parent)
    region = aws.get_region_output(opts=invoke).region
    account = aws.get_caller_identity_output(opts=invoke).account_id
    return pulumi.Output.concat("arn:aws:logs:", region, ":", account, ":log-group:", name)


def flow_log_trust(account: str) -> str:
    """Only the flow logs service, acting for this account, assumes the role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": FLOW_LOGS_SERVICE},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                }
            ],
        }
    )


def flow_log_policy(group_arn: str) -> str:
    """Write streams of the one log group (its ARN, and `:*` for its streams)."""
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": list(FLOW_LOG_ACTIONS), "Resource": [group_arn, f"{group_arn}:*"]}]}
    )


@dataclass(frozen=True)
class ExistingVpc:
    vpc_id: str
    public_subnet_ids: Sequence[str]
    private_subnet_ids: Sequence[str]


@dataclass(frozen=True)
class NetworkArgs:
    cidr_block: str  # its subnets: core.subnets
    nat_gateways: Literal["single", "onePerAz"]
    name: str  # the cluster's: the flow log group is /carepath/<name>/vpc-flow-logs, unique per account
    existing: Optional[ExistingVpc] = None  # set: reuse this VPC; only its flow log is created


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[Sequence[str]]
    private_subnet_ids: pulumi.Output[Sequence[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:network:Network", name, None, opts)
        if args.existing is not None:
            self.vpc_id = pulumi.Output.from_input(args.existing.vpc_id)
            self.public_subnet_ids = pulumi.Output.from_input(list(args.existing.public_subnet_ids))
            self.private_subnet_ids = pulumi.Output.from_input(list(args.existing.private_subnet_ids))
        else:
            layout = subnet_layout(args.cidr_block, AVAILABILITY_ZONES)
            vpc = awsx.ec2.Vpc(
                name,
                cidr_block=args.cidr_block,
                number_of_availability_zones=AVAILABILITY_ZONES,
                nat_gateways=awsx.ec2.NatGatewayConfigurationArgs(strategy=_NAT[args.nat_gateways]),
                enable_dns_hostnames=True,
                subnet_specs=[
                    # Tags let the load balancer controller and EKS find the subnets by role.
                    awsx.ec2.SubnetSpecArgs(
                        type=awsx.ec2.SubnetType.PUBLIC, cidr_blocks=list(layout.public), tags={"kubernetes.io/role/elb": "1"}
                    ),
                    awsx.ec2.SubnetSpecArgs(
                        type=awsx.ec2.SubnetType.PRIVATE, cidr_blocks=list(layout.private), tags={"kubernetes.io/role/internal-elb": "1"}
                    ),
                ],
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.vpc_id = vpc.vpc_id
            self.public_subnet_ids = vpc.public_subnet_ids
            self.private_subnet_ids = vpc.private_subnet_ids
        self._flow_log(name, args.name)
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
            }
        )

    def _flow_log(self, name: str, cluster_name: str) -> None:
        child = pulumi.ResourceOptions(parent=self)
        group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs", name=f"/carepath/{cluster_name}/vpc-flow-logs", retention_in_days=FLOW_LOG_RETENTION_DAYS, opts=child
        )
        group_arn = log_group_arn(group.name, self)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        role = aws.iam.Role(f"{name}-flow-logs", assume_role_policy=account.apply(flow_log_trust), opts=child)
        policy = aws.iam.RolePolicy(f"{name}-flow-logs", role=role.id, policy=group_arn.apply(flow_log_policy), opts=child)
        aws.ec2.FlowLog(
            name,
            vpc_id=self.vpc_id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group_arn,
            iam_role_arn=role.arn,
            # The service checks the role can write when the flow log is created.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )

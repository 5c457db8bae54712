"""Network: the VPC the cluster and the ALB live in.

A new VPC (awsx) with public and private subnets over three availability zones,
or an existing VPC named by id. Subnets carry the tags the AWS Load Balancer
Controller looks for, so an existing VPC needs the same tags.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Sequence

import pulumi
import pulumi_awsx as awsx

AVAILABILITY_ZONES = 3
_NAT = {"single": awsx.ec2.NatGatewayStrategy.SINGLE, "onePerAz": awsx.ec2.NatGatewayStrategy.ONE_PER_AZ}


@dataclass(frozen=True)
class ExistingVpc:
    vpc_id: str
    public_subnet_ids: Sequence[str]
    private_subnet_ids: Sequence[str]


@dataclass(frozen=True)
class NetworkArgs:
    cidr_block: str  # per zone: a public subnet of 1/16 of it, a private one of 1/8
    nat_gateways: Literal["single", "onePerAz"]
    existing: Optional[ExistingVpc] = None  # set: reuse this VPC, create nothing


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
            prefix = int(args.cidr_block.split("/")[1])
            vpc = awsx.ec2.Vpc(
                name,
                cidr_block=args.cidr_block,
                number_of_availability_zones=AVAILABILITY_ZONES,
                nat_gateways=awsx.ec2.NatGatewayConfigurationArgs(strategy=_NAT[args.nat_gateways]),
                enable_dns_hostnames=True,
                subnet_specs=[
                    # Tags let the load balancer controller and EKS find the subnets by role.
                    awsx.ec2.SubnetSpecArgs(
                        type=awsx.ec2.SubnetType.PUBLIC, cidr_mask=prefix + 4, tags={"kubernetes.io/role/elb": "1"}
                    ),
                    awsx.ec2.SubnetSpecArgs(
                        type=awsx.ec2.SubnetType.PRIVATE, cidr_mask=prefix + 3, tags={"kubernetes.io/role/internal-elb": "1"}
                    ),
                ],
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.vpc_id = vpc.vpc_id
            self.public_subnet_ids = vpc.public_subnet_ids
            self.private_subnet_ids = vpc.private_subnet_ids
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
            }
        )

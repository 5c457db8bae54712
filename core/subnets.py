"""The VPC's subnets: per availability zone a private subnet of 1/8 of the VPC's block and a public
one of 1/16. The VPC hands these blocks to awsx (`components.network`) and the network policy takes
the ALB's address range from them (`core.network_policy.alb_blocks`), so the two never disagree.

The layout is the one awsx's default `Legacy` strategy gives these sizes, so a VPC created before
the blocks were stated here keeps its subnets: the VPC split into a power of two of zone blocks,
each starting with its private subnet, the public one right after it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class SubnetLayout:
    public: tuple[str, ...]  # one per zone, in zone order
    private: tuple[str, ...]


def subnet_layout(vpc_cidr: str, zones: int) -> SubnetLayout:
    vpc = ipaddress.IPv4Network(vpc_cidr)
    zone_blocks = list(vpc.subnets(prefixlen_diff=(zones - 1).bit_length()))[:zones]
    private = [ipaddress.IPv4Network((zone.network_address, vpc.prefixlen + 3)) for zone in zone_blocks]
    public = [ipaddress.IPv4Network((int(block.broadcast_address) + 1, vpc.prefixlen + 4)) for block in private]
    return SubnetLayout(public=tuple(map(str, public)), private=tuple(map(str, private)))

"""Edge: the one public entrypoint, an ALB that Pulumi owns.

One target group per backend the router asks for (`target_type = "ip"`: the load
balancer controller registers pod IPs into it through a TargetGroupBinding).
With `certificate_arn` the production listener is HTTPS on 443 with a TLS 1.3
policy and HTTP on 80 redirects to it; without, it is HTTP on 80. Its default
action forwards by weight, so a traffic change is one listener update. Security
groups let the ALB reach pods on the target port and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass(frozen=True)
class EdgeArgs:
    vpc_id: pulumi.Input[str]
    public_subnet_ids: pulumi.Input[Sequence[str]]
    node_security_group_id: pulumi.Input[str]  # the security group the pods' ENIs carry
    target_port: int
    health_path: str
    certificate_arn: Optional[str]
    allowed_cidrs: Sequence[str]
    deregistration_delay_seconds: int
    idle_timeout_seconds: int
    backends: Sequence[str]  # one target group each
    weights: Sequence[tuple[str, int]]  # production listener: backend -> weight


class Edge(pulumi.ComponentResource):
    url: pulumi.Output[str]
    dns_name: pulumi.Output[str]
    target_group_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: EdgeArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:edge:Edge", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        https = args.certificate_arn is not None
        public_ports = (80, 443) if https else (80,)

        security_group = aws.ec2.SecurityGroup(
            name,
            vpc_id=args.vpc_id,
            description="chat-api ALB: public listeners in, pods on the target port out",
            ingress=[
                {"protocol": "tcp", "from_port": port, "to_port": port, "cidr_blocks": list(args.allowed_cidrs), "description": "public listener"}
                for port in public_ports
            ],
            egress=[
                {
                    "protocol": "tcp",
                    "from_port": args.target_port,
                    "to_port": args.target_port,
                    "security_groups": [args.node_security_group_id],
                    "description": "to pods",
                }
            ],
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-to-pods",
            security_group_id=args.node_security_group_id,
            referenced_security_group_id=security_group.id,
            ip_protocol="tcp",
            from_port=args.target_port,
            to_port=args.target_port,
            description="chat-api ALB to pods",
            opts=child,
        )
        load_balancer = aws.lb.LoadBalancer(
            name,
            load_balancer_type="application",
            internal=False,
            subnets=args.public_subnet_ids,
            security_groups=[security_group.id],
            drop_invalid_header_fields=True,
            idle_timeout=args.idle_timeout_seconds,
            opts=child,
        )
        self.target_group_arns = {}
        for backend in args.backends:
            target_group = aws.lb.TargetGroup(
                f"{name}-{backend}",
                port=args.target_port,
                protocol="HTTP",
                target_type="ip",
                vpc_id=args.vpc_id,
                deregistration_delay=args.deregistration_delay_seconds,
                health_check={
                    "path": args.health_path,
                    "port": "traffic-port",
                    "protocol": "HTTP",
                    "matcher": "200-399",
                    "interval": 10,
                    "timeout": 5,
                    "healthy_threshold": 2,
                    "unhealthy_threshold": 3,
                },
                opts=child,
            )
            self.target_group_arns[backend] = target_group.arn

        forward = {
            "type": "forward",
            "forward": {
                "target_groups": [
                    {"arn": self.target_group_arns[backend], "weight": weight} for backend, weight in args.weights
                ]
            },
        }
        if https:
            aws.lb.Listener(
                f"{name}-https",
                load_balancer_arn=load_balancer.arn,
                port=443,
                protocol="HTTPS",
                ssl_policy=TLS_POLICY,
                certificate_arn=args.certificate_arn,
                default_actions=[forward],
                opts=child,
            )
            aws.lb.Listener(
                f"{name}-http",
                load_balancer_arn=load_balancer.arn,
                port=80,
                protocol="HTTP",
                default_actions=[
                    {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"}}
                ],
                opts=child,
            )
        else:
            aws.lb.Listener(
                f"{name}-http",
                load_balancer_arn=load_balancer.arn,
                port=80,
                protocol="HTTP",
                default_actions=[forward],
                opts=child,
            )
        self.dns_name = load_balancer.dns_name
        self.url = load_balancer.dns_name.apply(lambda dns: f"{'https' if https else 'http'}://{dns}")
        self.register_outputs({"url": self.url, "targetGroupArns": self.target_group_arns})

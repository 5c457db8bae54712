"""Edge: the one public entrypoint, an ALB that Pulumi owns, with a target group per
backend the router asks for (`target_type = "ip"`: the load balancer controller
registers pod IPs into it through a TargetGroupBinding). Its listeners are the
router's: they say which target group gets how much traffic.

Security groups let the public reach the production listener ports (80, and
443 with a certificate) from `allowed_cidrs`, the test port from `test_cidrs`
only, and let the ALB reach pods on the target port and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws


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
    health_port: Optional[int] = None  # unset: the target port
    test_port: Optional[int] = None  # set: open it to `test_cidrs` for a test listener
    test_cidrs: Sequence[str] = ()


class Edge(pulumi.ComponentResource):
    url: pulumi.Output[str]
    dns_name: pulumi.Output[str]
    load_balancer_arn: pulumi.Output[str]
    target_group_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: EdgeArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:edge:Edge", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        public_ports = (80, 443) if args.certificate_arn else (80,)
        ingress = [
            {"protocol": "tcp", "from_port": port, "to_port": port, "cidr_blocks": list(args.allowed_cidrs), "description": "production listener"}
            for port in public_ports
        ]
        if args.test_port is not None:
            ingress.append(
                {"protocol": "tcp", "from_port": args.test_port, "to_port": args.test_port, "cidr_blocks": list(args.test_cidrs), "description": "test listener"}
            )
        pod_ports = sorted({args.target_port, args.health_port or args.target_port})
        security_group = aws.ec2.SecurityGroup(
            name,
            vpc_id=args.vpc_id,
            description="chat-api ALB: listeners in, pods on the target port out",
            ingress=ingress,  # pyright: ignore[reportArgumentType]
            egress=[
                {"protocol": "tcp", "from_port": port, "to_port": port, "security_groups": [args.node_security_group_id], "description": "to pods"}
                for port in pod_ports
            ],
            opts=child,
        )
        for port in pod_ports:
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-to-pods" if port == args.target_port else f"{name}-to-pods-{port}",
                security_group_id=args.node_security_group_id,
                referenced_security_group_id=security_group.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
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
                    "port": str(args.health_port) if args.health_port else "traffic-port",
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
        self.load_balancer_arn = load_balancer.arn
        self.dns_name = load_balancer.dns_name
        scheme = "https" if args.certificate_arn else "http"
        self.url = load_balancer.dns_name.apply(lambda dns: f"{scheme}://{dns}")
        self.register_outputs({"url": self.url, "targetGroupArns": self.target_group_arns})

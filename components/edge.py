"""Edge: the one public entrypoint, an ALB that Pulumi owns and every service shares.

It has a target group per backend the services' routers ask for (`target_type = "ip"`: the
load balancer controller registers pod IPs into it through a TargetGroupBinding; HTTPS to
the pods' TLS proxies or the mesh's gateways, `core.edge.Backend`), the production listener
(and, while a blue-green service has an idle colour to test, the test listener on
`edge.testPort`), each answering 404 by default: the services' routers add their own rules.

Security groups let the public reach the production listener ports (80, and 443 with a
certificate) from `allowed_cidrs`, the test port from `test_cidrs` only, and let the ALB reach
pods on the backends' ports and nothing more.

Hardening: the ALB drops requests with invalid header fields, writes access logs to a private
bucket of its own (`components.access_logs`), runs AWS WAF's managed rules when `waf` is set
(`components.firewall`) and is protected from deletion unless `deletion_protection` is off.
To destroy a stack, set `carepath:edge.deletionProtection` false, `pulumi up`, then
`pulumi destroy`. The destroy then
stops at the access log bucket while it holds logs (it never deletes them itself): empty it
once the logs may go, or keep it and drop it from the state (`pulumi state delete <urn>`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws

from components.access_logs import AccessLogBucket, AccessLogBucketArgs
from components.firewall import WebFirewall, WebFirewallArgs
from components.listeners import listener, redirect_to_https
from core.edge import TARGET_PROTOCOL, Backend

TARGET_GROUP_PREFIX = "cp-"


@dataclass(frozen=True)
class EdgeArgs:
    vpc_id: pulumi.Input[str]
    public_subnet_ids: pulumi.Input[Sequence[str]]
    node_security_group_id: pulumi.Input[str]  # the security group the pods' ENIs carry
    certificate_arn: Optional[str]
    allowed_cidrs: Sequence[str]
    deregistration_delay_seconds: int
    idle_timeout_seconds: int
    backends: Sequence[Backend]  # one target group each
    name: str  # unique per account and Region (the cluster's): names the web ACL and its log group
    access_log_retention_days: int
    deletion_protection: bool  # off only to destroy the stack: set it false, `pulumi up`, then `pulumi destroy`
    waf: bool  # AWS WAF on the ALB (`components.firewall`); off on demo only
    waf_log_retention_days: int
    test_port: Optional[int] = None  # set: a test listener on it, open to `test_cidrs`
    test_cidrs: Sequence[str] = ()


class Edge(pulumi.ComponentResource):
    url: pulumi.Output[str]
    dns_name: pulumi.Output[str]
    load_balancer_arn: pulumi.Output[str]
    target_group_arns: dict[str, pulumi.Output[str]]
    production_listener_arn: pulumi.Output[str]
    test_listener_arn: Optional[pulumi.Output[str]]

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
        pod_ports = sorted({port for backend in args.backends for port in (backend.port, backend.health_port or backend.port)})
        security_group = aws.ec2.SecurityGroup(
            name,
            vpc_id=args.vpc_id,
            description="CarePath ALB: listeners in, pods on the backends' ports out",
            ingress=ingress,  # pyright: ignore[reportArgumentType]
            egress=[
                {"protocol": "tcp", "from_port": port, "to_port": port, "security_groups": [args.node_security_group_id], "description": "to pods"}
                for port in pod_ports
            ],
            opts=child,
        )
        for port in pod_ports:
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-to-pods-{port}",
                security_group_id=args.node_security_group_id,
                referenced_security_group_id=security_group.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description="CarePath ALB to pods",
                opts=child,
            )
        logs = AccessLogBucket(f"{name}-access-logs", AccessLogBucketArgs(retention_days=args.access_log_retention_days), opts=child)
        load_balancer = aws.lb.LoadBalancer(
            name,
            load_balancer_type="application",
            internal=False,
            subnets=args.public_subnet_ids,
            security_groups=[security_group.id],
            drop_invalid_header_fields=True,  # malformed headers never reach the pods
            idle_timeout=args.idle_timeout_seconds,
            access_logs={"bucket": logs.bucket, "prefix": logs.prefix, "enabled": True},
            enable_deletion_protection=args.deletion_protection,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs.policy]),
        )
        if args.waf:
            WebFirewall(
                f"{name}-waf",
                WebFirewallArgs(name=args.name, load_balancer_arn=load_balancer.arn, log_retention_days=args.waf_log_retention_days),
                opts=child,
            )
        self.target_group_arns = {}
        for backend in args.backends:
            target_group = aws.lb.TargetGroup(
                f"{name}-{backend.name}",
                # AWS allows 32 characters: with a prefix the provider makes the rest unique, so a
                # long service name never breaks a deploy; the tag says whose the group is.
                name_prefix=TARGET_GROUP_PREFIX,
                tags={"carepath:backend": backend.name},
                port=backend.port,
                protocol=TARGET_PROTOCOL,
                target_type="ip",
                vpc_id=args.vpc_id,
                deregistration_delay=args.deregistration_delay_seconds,
                health_check={
                    "path": backend.health_path,
                    "port": str(backend.health_port) if backend.health_port else "traffic-port",
                    "protocol": backend.health_protocol,
                    "matcher": "200-399",
                    "interval": 10,
                    "timeout": 5,
                    "healthy_threshold": 2,
                    "unhealthy_threshold": 3,
                },
                opts=child,
            )
            self.target_group_arns[backend.name] = target_group.arn
        production = listener("production-https" if args.certificate_arn else "production-http", load_balancer.arn, args.certificate_arn, 443 if args.certificate_arn else 80, child)
        if args.certificate_arn:
            redirect_to_https(load_balancer.arn, child)
        self.production_listener_arn = production.arn
        self.test_listener_arn = listener("test", load_balancer.arn, args.certificate_arn, args.test_port, child).arn if args.test_port is not None else None
        self.load_balancer_arn = load_balancer.arn
        self.dns_name = load_balancer.dns_name
        scheme = "https" if args.certificate_arn else "http"
        self.url = load_balancer.dns_name.apply(lambda dns: f"{scheme}://{dns}")
        self.register_outputs({"url": self.url, "targetGroupArns": self.target_group_arns})

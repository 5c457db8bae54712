"""The ALB's production listener, shared by the routers that own it.

HTTP on 80, or with a certificate HTTPS on 443 with a TLS 1.3 policy and HTTP on 80
redirecting to it. The default action forwards by weight over target groups, so a
traffic change is an update of this one listener.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import pulumi
import pulumi_aws as aws

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
STICKINESS_SECONDS = 3600  # while two target groups share traffic, a client stays on one


def forward(target_groups: Sequence[tuple[pulumi.Input[str], int]]) -> dict[str, Any]:
    """A weighted forward action; sticky while more than one target group takes traffic."""
    action: dict[str, Any] = {"target_groups": [{"arn": arn, "weight": weight} for arn, weight in target_groups]}
    if sum(1 for _, weight in target_groups if weight > 0) > 1:
        action["stickiness"] = {"enabled": True, "duration": STICKINESS_SECONDS}
    return {"type": "forward", "forward": action}


def listener(
    name: str,
    load_balancer_arn: pulumi.Input[str],
    certificate_arn: Optional[str],
    port: int,
    action: dict[str, Any],
    opts: pulumi.ResourceOptions,
) -> aws.lb.Listener:
    https = certificate_arn is not None
    return aws.lb.Listener(
        name,
        load_balancer_arn=load_balancer_arn,
        port=port,
        protocol="HTTPS" if https else "HTTP",
        ssl_policy=TLS_POLICY if https else None,
        certificate_arn=certificate_arn,
        default_actions=[action],  # pyright: ignore[reportArgumentType]
        opts=opts,
    )


def production_listener(
    load_balancer_arn: pulumi.Input[str], certificate_arn: Optional[str], action: dict[str, Any], opts: pulumi.ResourceOptions
) -> aws.lb.Listener:
    """The production listener with `action`; with a certificate also HTTP 80 redirecting to HTTPS."""
    https = certificate_arn is not None
    main = listener(
        "production-https" if https else "production-http", load_balancer_arn, certificate_arn, 443 if https else 80, action, opts
    )
    if https:
        aws.lb.Listener(
            "production-http",
            load_balancer_arn=load_balancer_arn,
            port=80,
            protocol="HTTP",
            default_actions=[{"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"}}],
            opts=pulumi.ResourceOptions(parent=opts.parent),
        )
    return main

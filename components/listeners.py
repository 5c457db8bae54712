"""The ALB's listeners and rules: the edge owns the listeners, each service's router owns its
rules on them.

Production is HTTP on 80, or with a certificate HTTPS on 443 with a TLS 1.3 policy and HTTP
on 80 redirecting to it. A listener's own default action answers 404: every request that
reaches a service does so through that service's rule, so services never share a name or an
action, and a traffic change is an update of one service's rule.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import pulumi
import pulumi_aws as aws

from core.edge import EntryRule

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
STICKINESS_SECONDS = 3600  # while two target groups share traffic, a client stays on one
NOT_FOUND = {"type": "fixed-response", "fixed_response": {"content_type": "text/plain", "message_body": "no service here", "status_code": "404"}}


def forward(target_groups: Sequence[tuple[pulumi.Input[str], int]]) -> dict[str, Any]:
    """A weighted forward action; sticky while more than one target group takes traffic."""
    action: dict[str, Any] = {"target_groups": [{"arn": arn, "weight": weight} for arn, weight in target_groups]}
    if sum(1 for _, weight in target_groups if weight > 0) > 1:
        action["stickiness"] = {"enabled": True, "duration": STICKINESS_SECONDS}
    return {"type": "forward", "forward": action}


def listener(name: str, load_balancer_arn: pulumi.Input[str], certificate_arn: Optional[str], port: int, opts: pulumi.ResourceOptions) -> aws.lb.Listener:
    """A listener whose default action answers 404 (services add their rules)."""
    https = certificate_arn is not None
    return aws.lb.Listener(
        name,
        load_balancer_arn=load_balancer_arn,
        port=port,
        protocol="HTTPS" if https else "HTTP",
        ssl_policy=TLS_POLICY if https else None,
        certificate_arn=certificate_arn,
        default_actions=[NOT_FOUND],  # pyright: ignore[reportArgumentType]
        opts=opts,
    )


def redirect_to_https(load_balancer_arn: pulumi.Input[str], opts: pulumi.ResourceOptions) -> aws.lb.Listener:
    return aws.lb.Listener(
        "production-http",
        load_balancer_arn=load_balancer_arn,
        port=80,
        protocol="HTTP",
        default_actions=[{"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"}}],
        opts=opts,
    )


def listener_rule(name: str, listener_arn: pulumi.Input[str], rule: EntryRule, action: dict[str, Any], opts: pulumi.ResourceOptions) -> aws.lb.ListenerRule:
    """A service's rule: its hosts and path, to `action`."""
    return aws.lb.ListenerRule(
        name,
        listener_arn=listener_arn,
        priority=rule.priority,
        conditions=rule.conditions(),  # pyright: ignore[reportArgumentType]
        actions=[action],  # pyright: ignore[reportArgumentType]
        opts=opts,
    )

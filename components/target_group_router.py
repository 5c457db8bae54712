"""TargetGroupRouter: traffic split at the ALB, one target group per track.

Each track's Service is bound to its own target group by a TargetGroupBinding
(the controller registers that Service's pod IPs); the Edge's listeners say how
much each target group gets. Used by the rolling strategy (one track) and by
blue/green (a target group per colour: Services and selectors never swap, so
the ALB readiness gates stay valid, and a switch is one listener update).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

import pulumi
import pulumi_kubernetes as k8s

from components.track import SERVICE_PORT
from core.release import ReleasePlan

TGB_API_VERSION = "elbv2.k8s.aws/v1beta1"


@dataclass(frozen=True)
class TargetGroupRouterArgs:
    namespace: pulumi.Input[str]
    plan: ReleasePlan
    target_group_arns: Mapping[str, pulumi.Input[str]]  # track -> its target group
    controller: pulumi.Resource  # its CRD and webhooks must be up before a binding is created


class TargetGroupRouter(pulumi.ComponentResource):
    bindings: dict[str, k8s.apiextensions.CustomResource]  # track -> its binding

    def __init__(self, name: str, args: TargetGroupRouterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:router:TargetGroupRouter", name, None, opts)
        self.bindings = {}
        for track in args.plan.tracks:
            service = track.deployment
            self.bindings[track.track] = k8s.apiextensions.CustomResource(
                service,
                api_version=TGB_API_VERSION,
                kind="TargetGroupBinding",
                metadata={"name": service, "namespace": args.namespace},
                # No `networking` block: Pulumi owns the security group rules; the controller only registers targets.
                spec={
                    "serviceRef": {"name": service, "port": SERVICE_PORT},
                    "targetGroupARN": args.target_group_arns[track.track],
                    "targetType": "ip",
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[args.controller]),
            )
        self.register_outputs({})

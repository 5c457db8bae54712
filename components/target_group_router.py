"""TargetGroupRouter: traffic split at the ALB, one target group per track.

Each track's Service is bound to its own target group by a TargetGroupBinding
(the controller registers that Service's pod IPs); the listeners say how much
each target group gets. Used by the rolling strategy (one track) and by
blue/green (a target group per colour: Services and selectors never swap, so
the ALB readiness gates stay valid, and a switch is one listener update).

Order matters and is expressed as dependencies, so one `pulumi up` is safe:
bindings first (pods get the ALB readiness gate only if their binding exists
when they are created), then the tracks that take production traffic, then the
production listener (traffic moves only to ready pods), then the other tracks
(an idle colour scales down only after traffic has left it), then the test
listener. Call `route_production`, then `route_test`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.listeners import forward, listener, production_listener
from components.load_balancer_controller import target_group_binding
from core.release import SERVICE_PORT, ReleasePlan


@dataclass(frozen=True)
class TargetGroupRouterArgs:
    plan: ReleasePlan
    load_balancer_arn: pulumi.Input[str]
    target_group_arns: Mapping[str, pulumi.Input[str]]  # track -> its target group
    certificate_arn: Optional[str]  # set: HTTPS listeners, and HTTP 80 redirects
    test_port: int
    controller: pulumi.Resource  # its CRD and webhooks must be up before a binding is created
    namespaces: Sequence[pulumi.Resource] = ()


class TargetGroupRouter(pulumi.ComponentResource):
    bindings: dict[str, k8s.apiextensions.CustomResource]  # track -> its binding
    production_listener: aws.lb.Listener

    def __init__(self, name: str, args: TargetGroupRouterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:router:TargetGroupRouter", name, None, opts)
        self._args = args
        self.bindings = {}
        for track in args.plan.tracks:
            self.bindings[track.track] = target_group_binding(
                track.deployment,
                track.namespace,
                track.deployment,
                SERVICE_PORT,
                args.target_group_arns[track.track],
                pulumi.ResourceOptions(parent=self, depends_on=[args.controller, *args.namespaces]),
            )

    def deployment_after(self, track: str) -> list[pulumi.Resource]:
        """Pods are created after their binding, so they get the ALB readiness gate."""
        return [self.bindings[track]]

    def _forward(self, weights: Sequence[tuple[str, int]]) -> dict[str, Any]:
        return forward([(self._args.target_group_arns[track], weight) for track, weight in weights])

    def route_production(self, after: Sequence[pulumi.Resource]) -> aws.lb.Listener:
        """The production listener, forwarding by the plan's weights once `after` (the production
        tracks' Deployments) are ready."""
        self.production_listener = production_listener(
            self._args.load_balancer_arn,
            self._args.certificate_arn,
            self._forward(self._args.plan.weights),
            pulumi.ResourceOptions(parent=self, depends_on=list(after)),
        )
        return self.production_listener

    def route_test(self, after: Sequence[pulumi.Resource]) -> None:
        """The test listener on the test port, to the plan's test track (if it has one)."""
        test_track = self._args.plan.test_track
        if test_track is not None:
            listener(
                "test",
                self._args.load_balancer_arn,
                self._args.certificate_arn,
                self._args.test_port,
                self._forward(((test_track, 1),)),
                pulumi.ResourceOptions(parent=self, depends_on=list(after)),
            )
        self.register_outputs({})

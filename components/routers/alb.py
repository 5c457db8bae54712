"""AlbRouter: traffic split at the ALB, one target group per track.

Each track's Service is bound to its own target group by a TargetGroupBinding (the
controller registers that Service's pod IPs, on the port of their TLS proxy: the ALB speaks
TLS to the pods, `components.track.TlsProxy`); the service's listener rules say how much
each target group gets. Used by the rolling strategy (one track) and by blue/green (a target
group per colour: Services and selectors never swap, so the ALB readiness gates stay valid,
and a switch is an update of the service's two rules).

Order matters and is expressed as dependencies, so one `pulumi up` is safe: bindings first
(pods get the ALB readiness gate only if their binding exists when they are created), then
the tracks that take production traffic, then the production rule (traffic moves only to
ready pods), then the other tracks (an idle colour scales down only after traffic has left
it), then the test rule.
"""

from __future__ import annotations

from typing import Any, ClassVar, Optional, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.listeners import forward
from components.load_balancer_controller import target_group_binding
from components.routers.router import RouterArgs, service_rule
from core.edge import TLS_SERVICE_PORT, Backend
from core.release import ReleasePlan
from core.routers import RouterTraits
from core.settings import COLOURS, ServiceSettings
from core.settings.rules import TLS_PROXY_PORT


class AlbRouter(pulumi.ComponentResource):
    traits: ClassVar[RouterTraits] = RouterTraits("alb", strategies=("rolling", "blue-green"))
    bindings: dict[str, k8s.apiextensions.CustomResource]  # track -> its binding
    production_rule: aws.lb.ListenerRule

    @staticmethod
    def backends(plan: ReleasePlan, service: ServiceSettings) -> tuple[Backend, ...]:
        """A target group per track; blue/green has both colours' always, so a switch never
        creates one."""
        tracks = COLOURS if plan.strategy == "blue-green" else tuple(t.track for t in plan.tracks)
        return tuple(Backend(f"{plan.service}-{track}", TLS_PROXY_PORT, service.health_path) for track in tracks)

    def __init__(self, name: str, args: RouterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:router:AlbRouter", name, None, opts)
        self._args = args
        self.bindings = {}
        for track in args.plan.tracks:
            self.bindings[track.track] = target_group_binding(
                track.deployment,
                args.namespaces[track.namespace],
                track.deployment,
                TLS_SERVICE_PORT,  # the pods' TLS proxy (`components.track.TlsProxy`)
                self._target_group(track.track),
                pulumi.ResourceOptions(parent=self, depends_on=[args.platform.controller]),
            )

    def _target_group(self, track: str) -> pulumi.Input[str]:
        return self._args.edge.target_group_arns[f"{self._args.service}-{track}"]

    def deployment_after(self, track: str) -> list[pulumi.Resource]:
        """Pods are created after their binding, so they get the ALB readiness gate."""
        return [self.bindings[track]]

    def _forward(self, weights: Sequence[tuple[str, int]]) -> dict[str, Any]:
        return forward([(self._target_group(track), weight) for track, weight in weights])

    def route_production(self, after: Sequence[pulumi.Resource]) -> aws.lb.ListenerRule:
        """The service's production rule, forwarding by the plan's weights once `after` (the
        production tracks' Deployments) are ready."""
        args = self._args
        self.production_rule = service_rule(args, "production", self._forward(args.plan.weights), after)
        return self.production_rule

    def route_test(self, after: Sequence[pulumi.Resource]) -> None:
        """The service's rule on the test listener, to the plan's test track (if it has one)."""
        args = self._args
        test_track = args.plan.test_track
        if test_track is not None and args.edge.test_listener_arn is not None:
            service_rule(args, "test", self._forward(((test_track, 1),)), after)
        self.register_outputs({})

"""CanaryRouter: traffic split in the mesh, by an Istio VirtualService that Pulumi owns.

- A `chat-api-mesh` Service selects every track (only by `app.kubernetes.io/name`), so
  one host can be split into subsets; the tracks' own Services keep their fixed selectors.
- The DestinationRule defines the subsets `stable` and `canary` by the `track` label.
- The routes (tester header, pinned conversations, shadow copies, weighted split) and
  their order are `core.routing`'s; a Telemetry resource adds the request host to
  Istio's request metrics, so mirrored (`-shadow`) requests can be told apart.
- The Gateway (on the mesh's ingress gateway pods, which the ALB targets) takes HTTP
  on port 80; the VirtualService is bound to it and to the mesh. Its first route
  sends requests with the tester header to the canary, its second splits the rest
  by the plan's weights. With no canary in flight it routes 100 % to stable and has
  no header route, so no route ever names a track without pods.

Order, as dependencies, so one `pulumi up` is safe: the VirtualService changes only
after the Deployments it routes to are ready, and a track that leaves the plan is
deleted after it (Pulumi deletes last). Promotion therefore rolls stable to the new
tag while the canary still takes the traffic, then moves traffic, then removes the
canary. A weight step changes the VirtualService and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.listeners import forward, production_listener
from components.mesh import GATEWAY_PORT, GATEWAY_SELECTOR
from core.release import APP, SERVICE_PORT, ReleasePlan
from core.routing import canary_routes
from core.settings import HeaderSettings, MirrorSettings

NETWORKING = "networking.istio.io/v1"
MESH_SERVICE = f"{APP}-mesh"
SUBSETS = ("stable", "canary")


@dataclass(frozen=True)
class CanaryRouterArgs:
    plan: ReleasePlan
    namespace: pulumi.Input[str]  # the app namespace's output, so these wait for it
    namespace_name: str
    header: HeaderSettings
    stickiness: bool
    mirror: Optional[MirrorSettings]
    public_hosts: Sequence[pulumi.Input[str]]  # Host headers clients send: the ALB's name, edge.hostnames
    mesh: pulumi.Resource  # istiod: sidecar injection and the Istio CRDs must be up first
    load_balancer_arn: pulumi.Input[str]
    gateway_target_group_arn: pulumi.Input[str]
    certificate_arn: Optional[str]


def mesh_host(namespace: str) -> str:
    return f"{MESH_SERVICE}.{namespace}.svc.cluster.local"


class CanaryRouter(pulumi.ComponentResource):
    virtual_service: k8s.apiextensions.CustomResource

    def __init__(self, name: str, args: CanaryRouterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:router:CanaryRouter", name, None, opts)
        self._args = args
        after_mesh = pulumi.ResourceOptions(parent=self, depends_on=[args.mesh])
        k8s.core.v1.Service(
            MESH_SERVICE,
            metadata={"name": MESH_SERVICE, "namespace": args.namespace, "labels": {"app.kubernetes.io/name": APP}},
            spec={  # pyright: ignore[reportArgumentType]
                "type": "ClusterIP",
                "selector": {"app.kubernetes.io/name": APP},
                "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}],
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        k8s.apiextensions.CustomResource(
            f"{APP}-gateway",
            api_version=NETWORKING,
            kind="Gateway",
            metadata={"name": APP, "namespace": args.namespace},
            spec={
                "selector": GATEWAY_SELECTOR,
                "servers": [{"port": {"number": GATEWAY_PORT, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}],
            },
            opts=after_mesh,
        )
        k8s.apiextensions.CustomResource(
            APP,
            api_version=NETWORKING,
            kind="DestinationRule",
            metadata={"name": APP, "namespace": args.namespace},
            spec={
                "host": mesh_host(args.namespace_name),
                "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
                "subsets": [{"name": subset, "labels": {"track": subset}} for subset in SUBSETS],
            },
            opts=after_mesh,
        )
        # Istio's metrics get the request's host, so mirrored requests (host `...-shadow`) can be told apart.
        k8s.apiextensions.CustomResource(
            f"{APP}-telemetry",
            api_version="telemetry.istio.io/v1",
            kind="Telemetry",
            metadata={"name": APP, "namespace": args.namespace},
            spec={
                "selector": {"matchLabels": {"app.kubernetes.io/name": APP}},
                "metrics": [
                    {
                        "providers": [{"name": "prometheus"}],
                        "overrides": [{"match": {"metric": "REQUEST_COUNT"}, "tagOverrides": {"request_host": {"value": "request.host"}}}],
                    }
                ],
            },
            opts=after_mesh,
        )

    def deployment_after(self, track: str) -> list[pulumi.Resource]:
        """Pods are created once istiod can inject their sidecars."""
        return [self._args.mesh]

    def route_production(self, after: Sequence[pulumi.Resource]) -> pulumi.Resource:
        """The VirtualService with the routes of `core.routing`, changed only after `after` (the
        Deployments it routes to) are ready; then the ALB listener to the gateway."""
        args = self._args
        routes = canary_routes(args.plan, mesh_host(args.namespace_name), args.header, args.stickiness, args.mirror)
        self.virtual_service = k8s.apiextensions.CustomResource(
            APP,
            api_version=NETWORKING,
            kind="VirtualService",
            metadata={"name": APP, "namespace": args.namespace},
            spec={
                "hosts": [mesh_host(args.namespace_name), *args.public_hosts],
                "gateways": [f"{args.namespace_name}/{APP}", "mesh"],
                "http": routes,
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.mesh, *after]),
        )
        # The ALB sends everything to the ingress gateway; the VirtualService does the splitting.
        production_listener(
            args.load_balancer_arn,
            args.certificate_arn,
            forward([(args.gateway_target_group_arn, 100)]),
            pulumi.ResourceOptions(parent=self, depends_on=[self.virtual_service]),
        )
        return self.virtual_service

    def route_test(self, after: Sequence[pulumi.Resource]) -> None:
        """Testers reach the canary by header on the production entrypoint; there is no test listener."""
        self.register_outputs({})

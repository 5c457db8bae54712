"""CanaryRouter: traffic split in the mesh, by an Istio VirtualService that Pulumi owns.

- A `chat-api-mesh` Service selects every track (only by `app.kubernetes.io/name`), so
  one host can be split into subsets; the tracks' own Services keep their fixed selectors.
- The DestinationRule defines the subsets `stable` and `canary` by the `track` label.
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
from components.mesh import GATEWAY_SELECTOR
from components.track import SERVICE_PORT
from core.release import APP, ReleasePlan
from core.settings import HeaderSettings

NETWORKING = "networking.istio.io/v1"
MESH_SERVICE = f"{APP}-mesh"
SUBSETS = ("stable", "canary")


@dataclass(frozen=True)
class CanaryRouterArgs:
    plan: ReleasePlan
    namespace: pulumi.Input[str]  # the app namespace's output, so these wait for it
    namespace_name: str
    header: HeaderSettings
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
            spec={
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
                "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}],
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

    def deployment_after(self, track: str) -> list[pulumi.Resource]:
        """Pods are created once istiod can inject their sidecars."""
        return [self._args.mesh]

    def _destination(self, subset: str, weight: int) -> dict:
        return {
            "destination": {"host": mesh_host(self._args.namespace_name), "subset": subset, "port": {"number": SERVICE_PORT}},
            "weight": weight,
        }

    def route_production(self, after: Sequence[pulumi.Resource]) -> pulumi.Resource:
        """The VirtualService: tester header first, then the weighted split; after `after` (the
        Deployments it routes to) are ready."""
        plan, header = self._args.plan, self._args.header
        routes = []
        if plan.header_track is not None:
            routes.append(
                {
                    "name": "testers",
                    "match": [{"headers": {header.name: {"exact": header.value}}}],
                    "route": [self._destination(plan.header_track, 100)],
                }
            )
        routes.append({"name": "split", "route": [self._destination(track, weight) for track, weight in plan.weights]})
        self.virtual_service = k8s.apiextensions.CustomResource(
            APP,
            api_version=NETWORKING,
            kind="VirtualService",
            metadata={"name": APP, "namespace": self._args.namespace},
            spec={
                "hosts": [mesh_host(self._args.namespace_name), *self._args.public_hosts],
                "gateways": [f"{self._args.namespace_name}/{APP}", "mesh"],
                "http": routes,
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._args.mesh, *after]),
        )
        # The ALB sends everything to the ingress gateway; the VirtualService does the splitting.
        production_listener(
            self._args.load_balancer_arn,
            self._args.certificate_arn,
            forward([(self._args.gateway_target_group_arn, 100)]),
            pulumi.ResourceOptions(parent=self, depends_on=[self.virtual_service]),
        )
        return self.virtual_service

    def route_test(self, after: Sequence[pulumi.Resource]) -> None:
        """Testers reach the canary by header on the production entrypoint; there is no test listener."""
        self.register_outputs({})

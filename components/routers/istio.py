"""IstioRouter: traffic split in the mesh, by an Istio VirtualService that Pulumi owns.

- A `<service>-mesh` Service selects every track (only by `app.kubernetes.io/name`), so one
  host can be split into subsets; the tracks' own Services keep their fixed selectors.
- The DestinationRule defines the subsets `stable` and `canary` by the `track` label.
- The routes (tester header, pinned conversations, shadow copies of reads, weighted split) and
  their order are `core.routing`'s; a Telemetry resource adds the request host to Istio's
  request metrics, so mirrored (`-shadow`) requests can be told apart.
- The VirtualService is bound to the mesh's shared gateway (on the ingress gateway pods, which
  the ALB targets through the service's listener rule) for the service's public hosts, and to
  the mesh for its in-cluster names: the mesh host and the service's own name, so a caller
  inside the mesh that calls `chat-api` gets the same split and tester route as the edge.
- With no canary in flight it routes 100 % to stable and has no header route, so no route
  ever names a track without pods.

Order, as dependencies, so one `pulumi up` is safe: the VirtualService changes only after the
Deployments it routes to are ready, and a track that leaves the plan is deleted after it
(Pulumi deletes last). Promotion therefore rolls stable to the new tag while the canary still
takes the traffic, then moves traffic, then removes the canary. A weight step changes the
VirtualService and nothing else.
"""

from __future__ import annotations

from typing import Any, ClassVar, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.listeners import forward
from components.mesh import GATEWAY_BACKEND, GATEWAY_HEALTH_PATH, GATEWAY_HEALTH_PORT, GATEWAY_PORT, MESH_GATEWAY
from components.routers.router import RouterArgs, service_rule
from core.edge import Backend
from core.release import SERVICE_PORT, ReleasePlan
from core.routers import RouterTraits
from core.routing import Match, Route, canary_routes, path_prefix, pin_regex, set_pin_cookie
from core.settings import ServiceSettings

NETWORKING = "networking.istio.io/v1"
SUBSETS = ("stable", "canary")


def service_host(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.cluster.local"


def _matches(match: Match) -> list[dict[str, Any]]:
    """One match, or two for a `/x/*` path: Istio's prefix `/x/` is a string prefix, without `/x`."""
    rendered: dict[str, Any] = {}
    headers: dict[str, Any] = {}
    if match.header is not None:
        headers[match.header[0]] = {"exact": match.header[1]}
    if match.pin is not None:
        headers["cookie"] = {"regex": pin_regex(match.pin)}
    if headers:
        rendered["headers"] = headers
    if match.method is not None:
        rendered["method"] = {"exact": match.method}
    if match.path is None:
        return [rendered]
    prefix = path_prefix(match.path)
    uris = [{"exact": prefix[:-1]}, {"prefix": prefix}] if prefix else [{"exact": match.path}]
    return [{**rendered, "uri": uri} for uri in uris]


def http_routes(routes: Sequence[Route], host: str) -> list[dict[str, Any]]:
    """`core.routing`'s routes as VirtualService `http` routes to subsets of `host`. They match
    on no path prefix: the ALB's rule applies the service's, and callers inside the mesh call
    the service by its own name, with its own paths."""

    def destination(subset: str) -> dict[str, Any]:
        return {"host": host, "subset": subset, "port": {"number": SERVICE_PORT}}

    rendered = []
    for route in routes:
        entry: dict[str, Any] = {"name": route.name}
        matches = [one for m in route.matches for one in _matches(m)]
        if matches:
            entry["match"] = matches
        entry["route"] = []
        for d in route.destinations:
            target: dict[str, Any] = {"destination": destination(d.track), "weight": d.weight}
            if d.pin is not None:
                target["headers"] = {"response": {"add": {"set-cookie": set_pin_cookie(d.pin)}}}
            entry["route"].append(target)
        if route.mirror is not None:
            entry["mirror"] = destination(route.mirror[0])
            entry["mirrorPercentage"] = {"value": float(route.mirror[1])}
        rendered.append(entry)
    return rendered


class IstioRouter(pulumi.ComponentResource):
    traits: ClassVar[RouterTraits] = RouterTraits("istio", strategies=("rolling", "canary"), mesh=True, path_routing=False)
    virtual_service: k8s.apiextensions.CustomResource

    @staticmethod
    def backends(plan: ReleasePlan, service: ServiceSettings) -> tuple[Backend, ...]:
        """The mesh's ingress gateway, checked on its own readiness port (its routes match on
        Host, which an ALB health check does not send)."""
        return (Backend(GATEWAY_BACKEND, GATEWAY_PORT, GATEWAY_HEALTH_PATH, GATEWAY_HEALTH_PORT),)

    def __init__(self, name: str, args: RouterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:router:IstioRouter", name, None, opts)
        self._args = args
        assert args.platform.mesh is not None, "the settings turn the mesh on for an istio-routed service"
        self._mesh = args.platform.mesh
        service, namespace = args.service, args.plan.serving.namespace
        self._namespace = args.namespaces[namespace]
        self._mesh_service = f"{service}-mesh"
        self._host = service_host(self._mesh_service, namespace)
        after_mesh = pulumi.ResourceOptions(parent=self, depends_on=[self._mesh])
        k8s.core.v1.Service(
            self._mesh_service,
            metadata={"name": self._mesh_service, "namespace": self._namespace, "labels": {"app.kubernetes.io/name": service}},
            spec={  # pyright: ignore[reportArgumentType]
                "type": "ClusterIP",
                "selector": {"app.kubernetes.io/name": service},
                "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}],
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        k8s.apiextensions.CustomResource(
            service,
            api_version=NETWORKING,
            kind="DestinationRule",
            metadata={"name": service, "namespace": self._namespace},
            spec={
                "host": self._host,
                "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
                "subsets": [{"name": subset, "labels": {"track": subset}} for subset in SUBSETS],
            },
            opts=after_mesh,
        )
        # Istio's metrics get the request's host, so mirrored requests (host `...-shadow`) can be told apart.
        k8s.apiextensions.CustomResource(
            f"{service}-telemetry",
            api_version="telemetry.istio.io/v1",
            kind="Telemetry",
            metadata={"name": service, "namespace": self._namespace},
            spec={
                "selector": {"matchLabels": {"app.kubernetes.io/name": service}},
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
        return [self._mesh]

    def route_production(self, after: Sequence[pulumi.Resource]) -> pulumi.Resource:
        """The VirtualService with the routes of `core.routing`, changed only after `after` (the
        Deployments it routes to) are ready; then the service's rule on the ALB to the gateway."""
        args = self._args
        settings, namespace = args.settings, args.plan.serving.namespace
        canary = settings.rollout.canary
        routes = http_routes(canary_routes(args.plan, canary.header, canary.stickiness, canary.mirror), self._host)
        public_hosts = list(settings.hosts) or [args.edge.dns_name]
        self.virtual_service = k8s.apiextensions.CustomResource(
            args.service,
            api_version=NETWORKING,
            kind="VirtualService",
            metadata={"name": args.service, "namespace": self._namespace},
            spec={
                "hosts": [self._host, service_host(args.service, namespace), *public_hosts],
                "gateways": [MESH_GATEWAY, "mesh"],
                "http": routes,
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._mesh, *after]),
        )
        # The ALB sends the service's requests to the ingress gateway; the VirtualService splits them.
        service_rule(args, "production", forward([(args.edge.target_group_arns[GATEWAY_BACKEND], 100)]), [self.virtual_service])
        return self.virtual_service

    def route_test(self, after: Sequence[pulumi.Resource]) -> None:
        """Testers reach the canary by header on the production entrypoint; there is no test route."""
        self.register_outputs({})

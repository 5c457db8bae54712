"""GatewayApiRouter: traffic split by a Gateway API `HTTPRoute` (gateway.networking.k8s.io/v1,
standard channel) that Pulumi owns, served by Istio.

- The route has two parents: the platform's `Gateway` (`istio-ingress/carepath`, which the ALB
  reaches through the service's listener rule), and the service's own `Service` (the mesh
  binding of the Gateway API, "GAMMA"): a caller inside the mesh that calls `chat-api` gets the
  same split and tester route as the edge.
- Its backends are the tracks' own Services (`chat-api`, `chat-api-canary`) with the plan's
  weights: the Gateway API has no subsets.
- The rules are `core.routing`'s, in its order. The Gateway API does not take the first rule
  that matches: it ranks matches by how specific they are (an exact path, then the longest
  prefix, then a method, then the most header matches), then by list order. So a rule that
  matches on headers alone (testers, pins) repeats its match on every path and method a later
  rule names (the shadow rules' reads), and outranks it there as it does everywhere else.
- Mirroring is the standard `RequestMirror` filter with `percent`; pinned conversations
  (stickiness) are the same pin cookie as with Istio: a `Cookie` header match
  (`RegularExpression`, which Istio implements) and a `ResponseHeaderModifier` filter on each
  weighted backend that sets it. Session persistence (`sessionPersistence`) is still
  experimental in the Gateway API, so it is not used: every field here is standard.
- Like Istio, the Gateway tells services apart by host: the service's path prefix is the
  ALB rule's to match (callers in the mesh use the service's own paths).

A weight step changes the HTTPRoute and nothing else; moving a service between `istio` and
`gateway-api` changes its routing objects and its ALB rule, never its Deployments.
"""

from __future__ import annotations

from typing import Any, ClassVar, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.listeners import forward
from components.mesh import GATEWAY_API_BACKEND, GATEWAY_API_LISTENER, GATEWAY_HEALTH_PATH, GATEWAY_HEALTH_PORT, GATEWAY_PORT
from components.routers.router import RouterArgs, service_rule
from core.edge import Backend
from core.release import SERVICE_PORT, ReleasePlan, TrackSpec, deployment_name
from core.routers import RouterTraits
from core.routing import Match, Route, canary_routes, path_prefix, pin_regex, set_pin_cookie
from core.settings import ServiceSettings

GATEWAY_API = "gateway.networking.k8s.io/v1"


def _match(match: Match, path: Optional[str], method: Optional[str]) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    if path is not None:
        prefix = path_prefix(path)
        rendered["path"] = {"type": "PathPrefix", "value": prefix} if prefix else {"type": "Exact", "value": path}
    if method is not None:
        rendered["method"] = method
    headers = []
    if match.header is not None:
        headers.append({"type": "Exact", "name": match.header[0], "value": match.header[1]})
    if match.pin is not None:
        headers.append({"type": "RegularExpression", "name": "Cookie", "value": pin_regex(match.pin)})
    if headers:
        rendered["headers"] = headers
    return rendered


def cluster_hosts(service: str, namespace: str) -> list[str]:
    """The names a caller in the cluster reaches a service's Service by."""
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]


def http_route_rules(routes: Sequence[Route], service: str) -> list[dict[str, Any]]:
    """`core.routing`'s routes as HTTPRoute rules to the tracks' Services of `service`."""

    def backend(track: str) -> dict[str, Any]:
        return {"group": "", "kind": "Service", "name": deployment_name(service, track), "port": SERVICE_PORT}

    rules = []
    for index, route in enumerate(routes):
        later = list(dict.fromkeys((m.path, m.method) for r in routes[index + 1 :] for m in r.matches if m.path is not None or m.method is not None))
        matches = []
        for match in route.matches:
            matches.append(_match(match, match.path, match.method))
            if match.path is None and match.method is None:  # a path or a method ranks above headers: repeat on the later ones
                matches += [_match(match, path, method) for path, method in later]
        rule: dict[str, Any] = {"name": route.name}
        if matches:
            rule["matches"] = matches
        refs = []
        for destination in route.destinations:
            ref: dict[str, Any] = {**backend(destination.track), "weight": destination.weight}
            if destination.pin is not None:
                ref["filters"] = [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {"add": [{"name": "Set-Cookie", "value": set_pin_cookie(destination.pin)}]}}]
            refs.append(ref)
        rule["backendRefs"] = refs
        if route.mirror is not None:
            track, percent = route.mirror
            rule["filters"] = [{"type": "RequestMirror", "requestMirror": {"backendRef": backend(track), "percent": percent}}]
        rules.append(rule)
    return rules


# HTTPRoute (gateway.networking.k8s.io/v1) `spec.rules`: "While 16 rules and 64 matches per rule
# are allowed, the total number of matches across all rules in a route must be less than 128"
# (its CEL rule sums them `<= 128`); the API server refuses a route over it.
HTTP_ROUTE_MATCH_LIMIT = 128


def route_matches(service: ServiceSettings) -> int:
    """The matches of the service's HTTPRoute at its largest, with a canary in flight (a rolling
    service's route is the split alone), counted on the rules this router renders."""
    canary, strategy = service.rollout.canary, service.rollout.strategy
    tracks = tuple(TrackSpec("service", track, track, 1, "") for track in ("stable", "canary"))
    largest = ReleasePlan("service", strategy, tracks, (("stable", 50), ("canary", 50)), header_track="canary" if strategy == "canary" else None)
    rules = http_route_rules(canary_routes(largest, canary.header, canary.stickiness, canary.mirror), "service")
    return sum(len(rule.get("matches", ())) for rule in rules)


class GatewayApiRouter(pulumi.ComponentResource):
    traits: ClassVar[RouterTraits] = RouterTraits(
        "gateway-api",
        strategies=("rolling", "canary"),
        mesh=True,
        gateway_api=True,
        path_routing=False,
        match_limit=HTTP_ROUTE_MATCH_LIMIT,
        route_matches=route_matches,
    )
    http_route: k8s.apiextensions.CustomResource

    @staticmethod
    def backends(plan: ReleasePlan, service: ServiceSettings) -> tuple[Backend, ...]:
        """The Gateway's proxy, checked on its readiness port like the Istio ingress gateway."""
        return (Backend(GATEWAY_API_BACKEND, GATEWAY_PORT, GATEWAY_HEALTH_PATH, GATEWAY_HEALTH_PORT),)

    def __init__(self, name: str, args: RouterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:router:GatewayApiRouter", name, None, opts)
        mesh, gateway = args.platform.mesh, args.platform.gateway
        assert mesh is not None and gateway is not None, "the settings turn on the mesh and the Gateway API for this router"
        self._args = args
        self._mesh, self._gateway = mesh, gateway
        self._waits = [args.platform.mesh, *([args.platform.gateway_resource] if args.platform.gateway_resource else [])]

    def deployment_after(self, track: str) -> list[pulumi.Resource]:
        """Pods are created once istiod can inject their sidecars."""
        return [self._mesh]

    def route_production(self, after: Sequence[pulumi.Resource]) -> pulumi.Resource:
        """The HTTPRoute, changed only after `after` (the Deployments it routes to) are ready; then
        the service's rule on the ALB to the Gateway."""
        args = self._args
        settings, service = args.settings, args.service
        canary = settings.rollout.canary
        gateway_namespace, gateway_name = self._gateway
        namespace = args.plan.serving.namespace
        spec: dict[str, Any] = {
            "parentRefs": [
                {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": gateway_namespace, "name": gateway_name, "sectionName": GATEWAY_API_LISTENER},
                {"group": "", "kind": "Service", "name": service, "port": SERVICE_PORT},
            ],
            "rules": http_route_rules(canary_routes(args.plan, canary.header, canary.stickiness, canary.mirror), service),
        }
        if settings.hosts:
            # The Gateway tells services apart by host. Callers in the mesh send the service's own
            # names, which a mesh route's hostnames may be matched against too (the Gateway API
            # leaves it open; Istio ignores them today), so the route lists those as well.
            spec["hostnames"] = [*settings.hosts, *cluster_hosts(service, namespace)]
        self.http_route = k8s.apiextensions.CustomResource(
            service,
            api_version=GATEWAY_API,
            kind="HTTPRoute",
            metadata={"name": service, "namespace": args.namespaces[namespace]},
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*self._waits, *after]),
        )
        service_rule(args, "production", forward([(args.edge.target_group_arns[GATEWAY_API_BACKEND], 100)]), [self.http_route])
        return self.http_route

    def route_test(self, after: Sequence[pulumi.Resource]) -> None:
        """Testers reach the canary by header on the production entrypoint; there is no test route."""
        self.register_outputs({})

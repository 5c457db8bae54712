"""GatewayApiRouter: the split by one standard-channel HTTPRoute, on the platform's Gateway and on
the service's own Service (callers in the mesh)."""

import itertools
import json
import re

import pytest

from components.routers.gateway_api import GatewayApiRouter, route_matches
from core.release import plan_release
from core.routing import PIN_COOKIE, canary_routes, pin_regex, route_for
from tests.components.conftest import PRODUCTION_LISTENER, target_group_arn
from tests.conftest import one_service, settings_from, undeclared_fields, validate_kubernetes

HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
STANDARD = "gateway-api-crd-schemas.json"
MIRROR = {"percent": 20, "paths": ["/v1/models", "/v1/conversations/*"]}


def canary(**canary_settings):
    return {"tag": "v1.4.0", "router": "gateway-api", "rollout": {"strategy": "canary", "canary": {"tag": "v2.0.0", "weight": 10, **canary_settings}}}


ROLLING = {"tag": "v1.4.0", "router": "gateway-api", "rollout": {"strategy": "rolling"}}


def route_spec(run_router, service, **kwargs):
    return run_router(service, **kwargs).one(HTTP_ROUTE).inputs["spec"]


def _backend(name, weight):
    return {"group": "", "kind": "Service", "name": name, "port": 80, "weight": weight}


def test_weighted_backend_refs_per_track_after_the_tester_header(run_router):
    spec = route_spec(run_router, canary(stickiness=False))
    assert spec["rules"] == [
        {"name": "testers", "matches": [{"headers": [{"type": "Exact", "name": "x-version", "value": "canary"}]}], "backendRefs": [_backend("chat-api-canary", 100)]},
        {"name": "split", "backendRefs": [_backend("chat-api", 90), _backend("chat-api-canary", 10)]},
    ]


def test_rolling_is_one_rule_with_everything_on_stable(run_router):
    spec = route_spec(run_router, ROLLING, stack="demo", mesh={"enabled": True})
    assert spec["rules"] == [{"name": "split", "backendRefs": [_backend("chat-api", 100)]}]


def test_the_route_hangs_on_the_gateway_and_on_the_services_own_service(run_router):
    # The Service parent is the Gateway API's mesh binding: a caller in the mesh gets the split too.
    spec = route_spec(run_router, canary())
    assert spec["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "istio-ingress", "name": "carepath", "sectionName": "https"},
        {"group": "", "kind": "Service", "name": "chat-api", "port": 80},
    ]
    assert "hostnames" not in spec


def test_a_service_with_hosts_is_told_apart_by_them_and_still_answers_its_own_names(run_router):
    spec = route_spec(run_router, {**canary(), "hosts": ["triage.example.org"]}, name="triage-api")
    assert spec["hostnames"] == [
        "triage.example.org",
        "triage-api",
        "triage-api.carepath-staging",
        "triage-api.carepath-staging.svc",
        "triage-api.carepath-staging.svc.cluster.local",
    ]
    assert spec["parentRefs"][1] == {"group": "", "kind": "Service", "name": "triage-api", "port": 80}


def test_pinned_conversations_match_the_pin_cookie_and_each_weighted_backend_sets_it(run_router):
    rules = {rule["name"]: rule for rule in route_spec(run_router, canary(stickiness=True))["rules"]}
    assert list(rules) == ["testers", "pinned-canary", "pinned-stable", "split"]
    for name, track in (("pinned-canary", "canary"), ("pinned-stable", "stable")):
        [match] = rules[name]["matches"]
        assert match == {"headers": [{"type": "RegularExpression", "name": "Cookie", "value": pin_regex(f"{track}-v2.0.0")}]}
    for backend, track in zip(rules["split"]["backendRefs"], ("stable", "canary"), strict=True):
        [cookie] = [f["responseHeaderModifier"]["add"] for f in backend["filters"] if f["type"] == "ResponseHeaderModifier"]
        assert cookie[0]["name"] == "Set-Cookie" and cookie[0]["value"].startswith(f"{PIN_COOKIE}={track}-v2.0.0;")
    assert [b["weight"] for b in rules["split"]["backendRefs"]] == [90, 10]


def test_a_mirror_copies_its_percent_on_the_listed_paths_only(run_router):
    rules = route_spec(run_router, canary(stickiness=True, mirror=MIRROR))["rules"]
    mirrored = {rule["name"]: rule for rule in rules if "filters" in rule}
    assert set(mirrored) == {"shadowed", "pinned-stable-shadowed"}
    for rule in mirrored.values():
        assert rule["filters"] == [
            {"type": "RequestMirror", "requestMirror": {"backendRef": {"group": "", "kind": "Service", "name": "chat-api-canary", "port": 80}, "percent": 20}}
        ]
        # reads only: a write on these paths falls through to its pin or the split, and is not copied
        assert [(m["path"]["type"], m["path"]["value"], m["method"]) for m in rule["matches"]] == [
            ("Exact", "/v1/models", "GET"),
            ("Exact", "/v1/models", "HEAD"),
            ("PathPrefix", "/v1/conversations/", "GET"),
            ("PathPrefix", "/v1/conversations/", "HEAD"),
        ]


def test_header_only_rules_repeat_on_every_later_path_and_method(run_router):
    rules = {rule["name"]: rule for rule in route_spec(run_router, canary(stickiness=True, mirror=MIRROR))["rules"]}
    reads = [(path, method) for path in ("/v1/models", "/v1/conversations/") for method in ("GET", "HEAD")]
    for name in ("testers", "pinned-canary", "pinned-stable"):
        pairs = [(m.get("path", {}).get("value"), m.get("method")) for m in rules[name]["matches"]]
        assert pairs == [(None, None), *reads]
        assert len({json.dumps(m["headers"], sort_keys=True) for m in rules[name]["matches"]}) == 1


# The Gateway API picks, among the matches a request meets, an exact path first, then the longest
# prefix, then a method match, then the most header matches, then the earlier rule; `core.routing`
# means first match wins.
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")
PATHS = ("/", "/v1/models", "/v1/models/x", "/v1/conversations", "/v1/conversations/42", "/v1/conversations-archive", "/v1/other")
HEADERS = ({}, {"x-version": "canary"})
COOKIES = (None, "canary-v2.0.0", "stable-v2.0.0", "stable-v1.0.0")


def _gateway_api_pick(rules, method, path, headers):
    def path_rank(spec):
        if spec["type"] == "Exact":
            return (2, len(spec["value"])) if path == spec["value"] else None
        prefix = spec["value"].rstrip("/")
        return (1, len(prefix)) if path == prefix or path.startswith(prefix + "/") or not prefix else None

    def header_met(spec):
        value = headers.get(spec["name"].lower())
        return value is not None and (value == spec["value"] if spec["type"] == "Exact" else re.search(spec["value"], value) is not None)

    candidates = []
    for index, rule in enumerate(rules):
        for match in rule.get("matches", [{}]):
            rank = path_rank(match.get("path", {"type": "PathPrefix", "value": "/"}))
            on_method = match.get("method", method) == method
            if rank is not None and on_method and all(header_met(h) for h in match.get("headers", [])):
                candidates.append((rank, "method" in match, len(match.get("headers", [])), -index, rule["name"]))
    return max(candidates)[-1]


@pytest.mark.parametrize("stickiness", [True, False])
@pytest.mark.parametrize("mirror", [None, MIRROR])
def test_the_gateway_apis_precedence_picks_the_rule_first_match_would(run_router, stickiness, mirror):
    service = canary(stickiness=stickiness, **({"mirror": mirror} if mirror else {}))
    rules = route_spec(run_router, service)["rules"]
    settings = settings_from(one_service(service))
    config = settings.service("chat-api").rollout.canary
    routes = canary_routes(plan_release(settings, "chat-api"), config.header, config.stickiness, config.mirror)
    for method, path, headers, cookie in itertools.product(METHODS, PATHS, HEADERS, COOKIES):
        request = {**headers, **({"cookie": f"session=1; {PIN_COOKIE}={cookie}"} if cookie else {})}
        assert _gateway_api_pick(rules, method, path, request) == route_for(routes, method, path, request).name, (method, path, request)


@pytest.mark.parametrize(
    "service",
    [canary(), canary(stickiness=False), canary(mirror=MIRROR), {**canary(mirror=MIRROR), "hosts": ["chat.example.org"]}, ROLLING],
    ids=["pins", "no-pins", "pins-and-mirror", "hosts", "rolling"],
)
def test_every_object_is_standard_channel_and_valid(run_router, reference_schema, service):
    plan = run_router(service, mesh={"enabled": True})
    route = plan.one(HTTP_ROUTE)
    validate_kubernetes(route, reference_schema)
    schema = reference_schema(STANDARD)["gateway.networking.k8s.io/v1/HTTPRoute"]
    assert undeclared_fields(dict(route.inputs["spec"]), schema["properties"]["spec"]) == []
    assert "sessionPersistence" not in json.dumps(route.inputs)
    for resource in plan.managed:
        if resource.type.startswith("kubernetes:"):
            validate_kubernetes(resource, reference_schema)


def test_a_field_of_another_channel_would_be_caught(reference_schema):
    schema = reference_schema(STANDARD)["gateway.networking.k8s.io/v1/HTTPRoute"]["properties"]["spec"]
    spec = {"rules": [{"backendRefs": [_backend("chat-api", 100)], "sessionPersistence": {"type": "Cookie"}}]}
    assert undeclared_fields(spec, schema) == ["rules.[0].sessionPersistence"]


def test_the_route_moves_after_its_pods_and_the_alb_sends_the_service_to_the_gateway(run_router):
    plan = run_router(canary())
    route = plan.one(HTTP_ROUTE)
    assert route.inputs["metadata"] == {"name": "chat-api", "namespace": "carepath-staging"}
    for stand_in in ("carepath:test:Istiod", "carepath:test:Gateway"):
        assert plan.one(stand_in).urn in route.options["dependsOn"]
    for deployment in plan.of_type("carepath:test:Deployment"):
        assert deployment.urn in route.options["dependsOn"]
        assert plan.one("carepath:test:Istiod").urn in deployment.options["dependsOn"]
    [rule] = plan.of_type("aws:lb/listenerRule:ListenerRule")
    assert (rule.name, rule.inputs["listenerArn"]) == ("chat-api-production", PRODUCTION_LISTENER)
    assert rule.inputs["actions"] == [{"type": "forward", "forward": {"targetGroups": [{"arn": target_group_arn("gateway-api"), "weight": 100}]}}]
    assert route.urn in rule.options["dependsOn"]
    assert rule.parent == plan.one("carepath:test:Service").urn


def test_the_edge_backend_is_the_gateways_proxy_checked_on_its_readiness_port():
    settings = settings_from(one_service(canary()))
    [backend] = GatewayApiRouter.backends(plan_release(settings, "chat-api"), settings.service("chat-api"))
    assert (backend.name, backend.port, backend.health_path, backend.health_port) == ("gateway-api", 443, "/healthz/ready", 15021)


def mirror_paths(count):
    return {"percent": 10, "paths": [f"/v1/read-{index}" for index in range(count)]}


@pytest.mark.parametrize(("stickiness", "largest"), [(True, 12), (False, 31)])
def test_the_largest_mirror_the_settings_allow_renders_a_route_the_api_server_takes(run_router, reference_schema, stickiness, largest):
    # HTTPRoute's CEL rule on spec.rules: the matches of all rules together `<= 128`.
    route = run_router(canary(stickiness=stickiness, mirror=mirror_paths(largest))).one(HTTP_ROUTE)
    rules = route.inputs["spec"]["rules"]
    assert 128 - 10 < sum(len(rule.get("matches", [])) for rule in rules) <= 128
    validate_kubernetes(route, reference_schema)  # and each rule's own `maxItems: 64`
    with pytest.raises(ValueError) as refused:
        settings_from(one_service(canary(stickiness=stickiness, mirror=mirror_paths(largest + 1))), "staging")
    sticky = "with" if stickiness else "without"
    assert refused.value.args and f"carepath:services.chat-api.rollout.canary.mirror.paths: {largest + 1} paths {sticky} stickiness make" in str(refused.value)
    assert "above its limit of 128" in str(refused.value)


@pytest.mark.parametrize("stickiness", [True, False])
@pytest.mark.parametrize("mirror", [None, MIRROR])
def test_the_count_the_settings_check_is_the_rendered_routes(run_router, stickiness, mirror):
    service = canary(stickiness=stickiness, **({"mirror": mirror} if mirror else {}))  # a canary in flight: the route at its largest
    rules = route_spec(run_router, service)["rules"]
    assert route_matches(settings_from(one_service(service), "staging").service("chat-api")) == sum(len(rule.get("matches", [])) for rule in rules)

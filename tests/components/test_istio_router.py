"""IstioRouter: the split in the mesh, by a VirtualService over subsets of one host."""

import pytest

from components.routers.istio import IstioRouter
from core.release import plan_release
from core.routing import PIN_COOKIE
from tests.components.conftest import DNS_NAME, PRODUCTION_LISTENER, target_group_arn
from tests.conftest import one_service, settings_from, validate_kubernetes

MESH_HOST = "chat-api-mesh.carepath-staging.svc.cluster.local"
OWN_HOST = "chat-api.carepath-staging.svc.cluster.local"
VIRTUAL_SERVICE = "kubernetes:networking.istio.io/v1:VirtualService"
STABLE_ONLY = {"tag": "v1.4.0", "replicas": 4, "rollout": {"strategy": "canary"}}
IN_FLIGHT = {**STABLE_ONLY, "rollout": {"strategy": "canary", "canary": {"tag": "v2.0.0", "weight": 10, "stickiness": False}}}
MIRROR = {"percent": 20, "paths": ["/v1/models", "/v1/conversations/*"]}


@pytest.fixture(scope="module")
def in_flight(run_router):
    return run_router(IN_FLIGHT)


@pytest.fixture(scope="module")
def idle(run_router):
    return run_router(STABLE_ONLY)


def _destination(subset, weight):
    return {"destination": {"host": MESH_HOST, "subset": subset, "port": {"number": 80}}, "weight": weight}


def test_header_route_first_then_the_weighted_split(in_flight):
    spec = in_flight.one(VIRTUAL_SERVICE).inputs["spec"]
    assert spec["http"] == [
        {"name": "testers", "match": [{"headers": {"x-version": {"exact": "canary"}}}], "route": [_destination("canary", 100)]},
        {"name": "split", "route": [_destination("stable", 90), _destination("canary", 10)]},
    ]


def test_without_a_canary_everything_goes_to_stable_and_no_header_route(idle):
    spec = idle.one(VIRTUAL_SERVICE).inputs["spec"]
    assert spec["http"] == [{"name": "split", "route": [_destination("stable", 100)]}]


def test_callers_in_the_mesh_reach_the_split_by_the_services_own_name(in_flight):
    spec = in_flight.one(VIRTUAL_SERVICE).inputs["spec"]
    assert spec["hosts"] == [MESH_HOST, OWN_HOST, DNS_NAME]
    assert spec["gateways"] == ["istio-ingress/edge", "mesh"]


def test_a_service_with_hosts_answers_them_instead_of_the_albs_name(run_router):
    hosts = ["triage.example.org", "triage.example.net"]
    spec = run_router({**STABLE_ONLY, "hosts": hosts}, name="triage-api").one(VIRTUAL_SERVICE).inputs["spec"]
    assert spec["hosts"] == ["triage-api-mesh.carepath-staging.svc.cluster.local", "triage-api.carepath-staging.svc.cluster.local", *hosts]
    assert {d["destination"]["host"] for d in spec["http"][0]["route"]} == {"triage-api-mesh.carepath-staging.svc.cluster.local"}


def test_subsets_split_one_host_that_selects_every_track(in_flight):
    rule = in_flight.one("kubernetes:networking.istio.io/v1:DestinationRule").inputs["spec"]
    assert rule["host"] == MESH_HOST
    assert rule["subsets"] == [{"name": "stable", "labels": {"track": "stable"}}, {"name": "canary", "labels": {"track": "canary"}}]
    assert rule["trafficPolicy"] == {"tls": {"mode": "ISTIO_MUTUAL"}}
    service = in_flight.one("kubernetes:core/v1:Service").inputs
    assert service["metadata"]["name"] == "chat-api-mesh"
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "chat-api"}


def test_request_metrics_carry_the_host_so_shadow_copies_can_be_told_apart(in_flight):
    telemetry = in_flight.one("kubernetes:telemetry.istio.io/v1:Telemetry").inputs["spec"]
    assert telemetry["selector"] == {"matchLabels": {"app.kubernetes.io/name": "chat-api"}}
    [metrics] = telemetry["metrics"]
    assert metrics["overrides"] == [{"match": {"metric": "REQUEST_COUNT"}, "tagOverrides": {"request_host": {"value": "request.host"}}}]


@pytest.mark.parametrize("stickiness", [True, False])
@pytest.mark.parametrize("mirror", [None, MIRROR])
def test_pins_and_shadow_copies(run_router, reference_schema, stickiness, mirror):
    canary = {"tag": "v2.0.0", "weight": 10, "stickiness": stickiness, **({"mirror": mirror} if mirror else {})}
    service = run_router({**STABLE_ONLY, "rollout": {"strategy": "canary", "canary": canary}}).one(VIRTUAL_SERVICE)
    validate_kubernetes(service, reference_schema)
    http = {route["name"]: route for route in service.inputs["spec"]["http"]}
    names = list(http)
    assert names[0] == "testers" and names[-1] == "split"
    assert ("pinned-canary" in http) is stickiness and ("shadowed" in http) is bool(mirror)
    if stickiness:
        assert names.index("pinned-stable") < names.index("split")
        assert http["pinned-canary"]["match"] == [{"headers": {"cookie": {"regex": f"^(.*; ?)?{PIN_COOKIE}=canary\\-v2\\.0\\.0(;.*)?$"}}}]
        assert [d["headers"]["response"]["add"]["set-cookie"].split(";")[0] for d in http["split"]["route"]] == [
            f"{PIN_COOKIE}=stable-v2.0.0",
            f"{PIN_COOKIE}=canary-v2.0.0",
        ]
    if mirror:
        shadowed = http["shadowed"]
        # reads only: a write on these paths falls through to its pin or the split, and is not copied
        # `/v1/conversations/*` covers `/v1/conversations` as well, as the Gateway API's prefix does
        per_path = ([{"exact": "/v1/models"}], [{"exact": "/v1/conversations"}, {"prefix": "/v1/conversations/"}])
        reads = [{"method": {"exact": method}, "uri": uri} for uris in per_path for method in ("GET", "HEAD") for uri in uris]
        assert shadowed["match"] == reads
        if stickiness:
            cookie = {"cookie": {"regex": f"^(.*; ?)?{PIN_COOKIE}=stable\\-v2\\.0\\.0(;.*)?$"}}
            assert http["pinned-stable-shadowed"]["match"] == [{"headers": cookie, **read} for read in reads]
            assert "mirror" not in http["pinned-stable"]
        assert shadowed["mirror"] == {"host": MESH_HOST, "subset": "canary", "port": {"number": 80}}
        assert shadowed["mirrorPercentage"] == {"value": 20}
        assert "mirror" not in http["split"]


def test_every_istio_object_validates(in_flight, idle, reference_schema):
    for plan in (in_flight, idle):
        for resource in plan.managed:
            if resource.type.startswith("kubernetes:"):
                validate_kubernetes(resource, reference_schema)


def test_routes_move_only_after_the_deployments_and_the_alb_sends_the_service_to_the_gateway(in_flight, reference_schema):
    service = in_flight.one(VIRTUAL_SERVICE)
    for deployment in in_flight.of_type("carepath:test:Deployment"):
        assert deployment.urn in service.options["dependsOn"]
        assert in_flight.one("carepath:test:Istiod").urn in deployment.options["dependsOn"]
    rule = in_flight.one("aws:lb/listenerRule:ListenerRule")
    assert rule.name == "chat-api-production"
    assert rule.inputs["listenerArn"] == PRODUCTION_LISTENER
    assert rule.inputs["actions"] == [{"type": "forward", "forward": {"targetGroups": [{"arn": target_group_arn("gateway"), "weight": 100}]}}]
    assert service.urn in rule.options["dependsOn"]
    # The rule is the service's, not the router's: a change of router updates it in place.
    assert rule.parent == in_flight.one("carepath:test:Service").urn
    assert [r.type for r in in_flight.of_type("aws:lb/listener:Listener")] == []
    assert in_flight.one("carepath:router:IstioRouter").parent == in_flight.one("carepath:test:Service").urn


def test_the_edge_backend_is_the_ingress_gateway_checked_on_its_readiness_port():
    settings = settings_from(one_service(IN_FLIGHT))
    [backend] = IstioRouter.backends(plan_release(settings, "chat-api"), settings.service("chat-api"))
    assert (backend.name, backend.port, backend.health_path, backend.health_port) == ("gateway", 443, "/healthz/ready", 15021)

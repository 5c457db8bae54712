import pulumi
import pytest

from components.canary_router import CanaryRouter, CanaryRouterArgs, mesh_host
from core.release import ReleasePlan, TrackSpec
from core.settings import HeaderSettings
from tests.conftest import validate_kubernetes

ALB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/edge/0123456789abcdef"
GATEWAY_GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/edge-gateway/0123456789abcdef"
HOST = mesh_host("carepath-staging")
STABLE = TrackSpec("stable", "v1.4.0", 4, "carepath-staging")
CANARY = TrackSpec("canary", "v2.0.0", 1, "carepath-staging")


def route(run_component, plan):
    def build():
        mesh = pulumi.CustomResource("carepath:test:Istiod", "istiod", {})
        router = CanaryRouter(
            "router",
            CanaryRouterArgs(
                plan=plan,
                namespace="carepath-staging",
                namespace_name="carepath-staging",
                header=HeaderSettings(name="x-version", value="canary"),
                stickiness=False,
                mirror=None,
                public_hosts=["edge-0123.us-east-1.elb.amazonaws.com", "chat.example.org"],
                mesh=mesh,
                load_balancer_arn=ALB,
                gateway_target_group_arn=GATEWAY_GROUP,
                certificate_arn=None,
            ),
        )
        deployments = [pulumi.CustomResource("carepath:test:Deployment", t.deployment, {}) for t in plan.tracks]
        router.route_production(after=deployments)
        router.route_test(after=[])

    return run_component(build)


@pytest.fixture(scope="module")
def in_flight(run_component):
    return route(run_component, ReleasePlan("canary", (STABLE, CANARY), (("stable", 90), ("canary", 10)), header_track="canary"))


@pytest.fixture(scope="module")
def idle(run_component):
    return route(run_component, ReleasePlan("canary", (STABLE,), (("stable", 100),)))


def _destination(subset, weight):
    return {"destination": {"host": HOST, "subset": subset, "port": {"number": 80}}, "weight": weight}


def test_header_route_first_then_the_weighted_split(in_flight):
    spec = in_flight.one("kubernetes:networking.istio.io/v1:VirtualService").inputs["spec"]
    assert spec["http"] == [
        {"name": "testers", "match": [{"headers": {"x-version": {"exact": "canary"}}}], "route": [_destination("canary", 100)]},
        {"name": "split", "route": [_destination("stable", 90), _destination("canary", 10)]},
    ]
    assert spec["hosts"] == [HOST, "edge-0123.us-east-1.elb.amazonaws.com", "chat.example.org"]
    assert spec["gateways"] == ["carepath-staging/chat-api", "mesh"]


def test_without_a_canary_everything_goes_to_stable_and_no_header_route(idle):
    spec = idle.one("kubernetes:networking.istio.io/v1:VirtualService").inputs["spec"]
    assert spec["http"] == [{"name": "split", "route": [_destination("stable", 100)]}]


def test_subsets_split_one_host_that_selects_every_track(in_flight):
    rule = in_flight.one("kubernetes:networking.istio.io/v1:DestinationRule").inputs["spec"]
    assert rule["host"] == HOST
    assert rule["subsets"] == [{"name": "stable", "labels": {"track": "stable"}}, {"name": "canary", "labels": {"track": "canary"}}]
    assert rule["trafficPolicy"] == {"tls": {"mode": "ISTIO_MUTUAL"}}
    service = in_flight.one("kubernetes:core/v1:Service").inputs
    assert service["metadata"]["name"] == "chat-api-mesh"
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "chat-api"}
    gateway = in_flight.one("kubernetes:networking.istio.io/v1:Gateway").inputs["spec"]
    assert gateway["selector"] == {"istio": "ingressgateway"}


def test_every_istio_object_validates(in_flight, idle, reference_schema):
    for plan in (in_flight, idle):
        for resource in plan.managed:
            if resource.type.startswith("kubernetes:"):
                validate_kubernetes(resource, reference_schema)


def test_routes_move_only_after_the_deployments_and_the_alb_sends_all_to_the_gateway(in_flight):
    service = in_flight.one("kubernetes:networking.istio.io/v1:VirtualService")
    for deployment in in_flight.of_type("carepath:test:Deployment"):
        assert deployment.urn in service.options["dependsOn"]
    [listener] = in_flight.of_type("aws:lb/listener:Listener")
    assert listener.inputs["defaultActions"] == [{"type": "forward", "forward": {"targetGroups": [{"arn": GATEWAY_GROUP, "weight": 100}]}}]
    assert service.urn in listener.options["dependsOn"]

import pulumi
import pytest

from components.listeners import STICKINESS_SECONDS, TLS_POLICY
from components.target_group_router import TargetGroupRouter, TargetGroupRouterArgs
from core.release import ReleasePlan, TrackSpec
from tests.conftest import unknown_inputs, validate_crd

GROUPS = {
    "blue": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/edge-blue/0123456789abcdef",
    "green": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/edge-green/fedcba9876543210",
}
ALB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/edge/0123456789abcdef"
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0f0e0d0c-0b0a-0908-0706-050403020100"


def blue_green(weights=(("blue", 100),), test_track="green", namespaces=("carepath-test", "carepath-test")):
    return ReleasePlan(
        "blue-green",
        (TrackSpec("blue", "v1", 2, namespaces[0]), TrackSpec("green", "v2", 2, namespaces[1])),
        weights,
        test_track=test_track,
    )


def route(run_component, plan, certificate=None):
    def build():
        controller = pulumi.CustomResource("carepath:test:Controller", "controller", {})
        router = TargetGroupRouter(
            "router",
            TargetGroupRouterArgs(
                plan=plan, load_balancer_arn=ALB, target_group_arns=GROUPS, certificate_arn=certificate, test_port=8443, controller=controller
            ),
        )
        # stand-ins for the tracks' Deployments
        serving = [pulumi.CustomResource("carepath:test:Deployment", t.deployment, {}) for t in plan.production_tracks]
        production = router.route_production(after=serving)
        idle = [
            pulumi.CustomResource("carepath:test:Deployment", t.deployment, {}, opts=pulumi.ResourceOptions(depends_on=[production]))
            for t in plan.other_tracks
        ]
        router.route_test(after=idle)

    return run_component(build)


@pytest.fixture(scope="module")
def plan(run_component):
    return route(run_component, blue_green())


def test_one_binding_per_track_to_its_own_target_group(plan, reference_schema):
    bindings = {r.inputs["metadata"]["name"]: r for r in plan.of_type("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding")}
    assert set(bindings) == {"chat-api-blue", "chat-api-green"}
    for colour in ("blue", "green"):
        binding = bindings[f"chat-api-{colour}"]
        assert binding.inputs["spec"] == {
            "serviceRef": {"name": f"chat-api-{colour}", "port": 80},
            "targetGroupARN": GROUPS[colour],
            "targetType": "ip",
        }
        assert binding.inputs["metadata"]["namespace"] == "carepath-test"
        assert plan.one("carepath:test:Controller").urn in binding.options["dependsOn"]
        validate_crd(binding, reference_schema("elbv2-crd-schemas.json"))


def _listeners(plan):
    return {r.inputs["port"]: r for r in plan.of_type("aws:lb/listener:Listener")}


def test_production_listener_forwards_to_the_active_colour_and_test_listener_to_the_other(plan, reference_schema):
    listeners = _listeners(plan)
    assert set(listeners) == {80, 8443}
    assert listeners[80].inputs["defaultActions"] == [{"type": "forward", "forward": {"targetGroups": [{"arn": GROUPS["blue"], "weight": 100}]}}]
    assert listeners[8443].inputs["defaultActions"] == [{"type": "forward", "forward": {"targetGroups": [{"arn": GROUPS["green"], "weight": 1}]}}]
    for listener in listeners.values():
        assert listener.inputs["loadBalancerArn"] == ALB and listener.inputs["protocol"] == "HTTP"
        assert unknown_inputs(listener, reference_schema("pulumi-aws-schema-subset.json")) == []


def test_traffic_moves_only_to_ready_pods_and_leaves_before_a_scale_down(plan):
    deployments = {r.name: r for r in plan.of_type("carepath:test:Deployment")}
    listeners = _listeners(plan)
    assert deployments["chat-api-blue"].urn in listeners[80].options["dependsOn"]
    assert listeners[80].urn in deployments["chat-api-green"].options["dependsOn"]
    assert deployments["chat-api-green"].urn in listeners[8443].options["dependsOn"]


def test_https_with_a_modern_policy_and_http_redirecting(run_component):
    listeners = _listeners(route(run_component, blue_green(), certificate=CERTIFICATE))
    assert set(listeners) == {80, 443, 8443}
    for port in (443, 8443):
        assert listeners[port].inputs["protocol"] == "HTTPS"
        assert listeners[port].inputs["sslPolicy"] == TLS_POLICY
        assert listeners[port].inputs["certificateArn"] == CERTIFICATE
    assert listeners[80].inputs["defaultActions"] == [
        {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}
    ]


def test_a_gradual_switch_splits_by_weight_and_keeps_clients_on_one_colour(run_component):
    listeners = _listeners(route(run_component, blue_green(weights=(("blue", 80), ("green", 20)))))
    forward = listeners[80].inputs["defaultActions"][0]["forward"]
    assert forward["targetGroups"] == [{"arn": GROUPS["blue"], "weight": 80}, {"arn": GROUPS["green"], "weight": 20}]
    assert forward["stickiness"] == {"enabled": True, "duration": STICKINESS_SECONDS}


def test_no_test_listener_without_a_test_track(run_component):
    listeners = _listeners(route(run_component, blue_green(test_track=None)))
    assert set(listeners) == {80}


def test_bindings_live_in_each_colours_namespace(run_component):
    plan = route(run_component, blue_green(namespaces=("carepath-test-blue", "carepath-test-green")))
    namespaces = {r.inputs["metadata"]["name"]: r.inputs["metadata"]["namespace"] for r in plan.of_type("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding")}
    assert namespaces == {"chat-api-blue": "carepath-test-blue", "chat-api-green": "carepath-test-green"}

"""AlbRouter: the split at the ALB, a target group per track and the service's own listener rules."""

import pytest

from components.listeners import STICKINESS_SECONDS
from components.routers.alb import AlbRouter
from core.edge import entry_rules
from core.release import plan_release
from tests.components.conftest import PRODUCTION_LISTENER, TEST_LISTENER, target_group_arn
from tests.conftest import one_service, settings_from, unknown_inputs, validate_crd

BLUE_GREEN = {"replicas": 2, "rollout": {"strategy": "blue-green", "blueGreen": {"active": "blue", "blue": {"tag": "v1"}, "green": {"tag": "v2"}}}}
EDGE = {"testCidrs": ["198.51.100.0/24"]}  # blue-green needs who may reach the test listener
BINDING = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"


def blue_green(**blue_green_settings):
    rollout = {**BLUE_GREEN["rollout"], "blueGreen": {**BLUE_GREEN["rollout"]["blueGreen"], **blue_green_settings}}
    return {**BLUE_GREEN, "rollout": rollout}


@pytest.fixture(scope="module")
def plan(run_router):
    return run_router(BLUE_GREEN, stack="bluegreen", edge=EDGE)


def _rules(plan):
    return {r.name: r for r in plan.of_type("aws:lb/listenerRule:ListenerRule")}


def _forward(*groups):
    return [{"type": "forward", "forward": {"targetGroups": [{"arn": target_group_arn(name), "weight": weight} for name, weight in groups]}}]


def test_one_binding_per_track_to_its_own_target_group(plan, reference_schema):
    bindings = {r.inputs["metadata"]["name"]: r for r in plan.of_type(BINDING)}
    assert set(bindings) == {"chat-api-blue", "chat-api-green"}
    for colour in ("blue", "green"):
        binding = bindings[f"chat-api-{colour}"]
        assert binding.inputs["spec"] == {
            "serviceRef": {"name": f"chat-api-{colour}", "port": 443},  # the pods' TLS proxy
            "targetGroupARN": target_group_arn(f"chat-api-{colour}"),
            "targetType": "ip",
        }
        assert binding.inputs["metadata"]["namespace"] == "carepath-bluegreen"
        assert plan.one("carepath:test:Controller").urn in binding.options["dependsOn"]
        validate_crd(binding, reference_schema("elbv2-crd-schemas.json"))


def test_pods_are_created_after_their_binding(plan):
    bindings = {r.inputs["metadata"]["name"]: r.urn for r in plan.of_type(BINDING)}
    for deployment in plan.of_type("carepath:test:Deployment"):
        assert bindings[deployment.name] in deployment.options["dependsOn"]


def test_the_production_rule_forwards_to_the_active_colour_and_the_test_rule_to_the_other(plan, reference_schema):
    rules = _rules(plan)
    assert set(rules) == {"chat-api-production", "chat-api-test"}
    production, test = rules["chat-api-production"].inputs, rules["chat-api-test"].inputs
    assert production["listenerArn"] == PRODUCTION_LISTENER and test["listenerArn"] == TEST_LISTENER
    assert production["actions"] == _forward(("chat-api-blue", 100))
    assert test["actions"] == _forward(("chat-api-green", 1))
    # Both rules match the service's requests: the default service's is every path, last.
    assert production["priority"] == test["priority"] == 50000
    assert production["conditions"] == test["conditions"] == [{"pathPattern": {"values": ["/*"]}}]
    schema = reference_schema("pulumi-aws-schema-subset.json")
    for rule in rules.values():
        assert unknown_inputs(rule, schema) == []
        assert rule.parent == plan.one("carepath:test:Service").urn
    assert plan.of_type("aws:lb/listener:Listener") == []


def test_traffic_moves_only_to_ready_pods_and_leaves_before_a_scale_down(plan):
    deployments = {r.name: r for r in plan.of_type("carepath:test:Deployment")}
    rules = _rules(plan)
    assert deployments["chat-api-blue"].urn in rules["chat-api-production"].options["dependsOn"]
    assert rules["chat-api-production"].urn in deployments["chat-api-green"].options["dependsOn"]
    assert deployments["chat-api-green"].urn in rules["chat-api-test"].options["dependsOn"]


def test_a_gradual_switch_splits_by_weight_and_keeps_clients_on_one_colour(run_router):
    rules = _rules(run_router(blue_green(greenWeight=20), stack="bluegreen", edge=EDGE))
    forward = rules["chat-api-production"].inputs["actions"][0]["forward"]
    assert forward["targetGroups"] == _forward(("chat-api-blue", 80), ("chat-api-green", 20))[0]["forward"]["targetGroups"]
    assert forward["stickiness"] == {"enabled": True, "duration": STICKINESS_SECONDS}


def test_no_test_rule_for_an_idle_colour_without_pods(run_router):
    assert set(_rules(run_router(blue_green(idleReplicas=0), stack="bluegreen", edge=EDGE))) == {"chat-api-production"}


def test_bindings_live_in_each_colours_namespace(run_router):
    plan = run_router(blue_green(isolation="namespace"), stack="bluegreen", edge=EDGE)
    namespaces = {r.inputs["metadata"]["name"]: r.inputs["metadata"]["namespace"] for r in plan.of_type(BINDING)}
    assert namespaces == {"chat-api-blue": "carepath-bluegreen-blue", "chat-api-green": "carepath-bluegreen-green"}


def test_rolling_forwards_everything_to_the_stable_track_on_the_services_hosts_and_path(run_router):
    service = {"tag": "v1.4.0", "hosts": ["api.example.org"], "pathPrefix": "/triage", "rollout": {"strategy": "rolling"}}
    plan = run_router(service, name="triage-api", stack="demo")
    [rule] = plan.of_type("aws:lb/listenerRule:ListenerRule")
    assert rule.name == "triage-api-production"
    assert rule.inputs["actions"] == _forward(("triage-api-stable", 100))
    assert "stickiness" not in rule.inputs["actions"][0]["forward"]
    expected = entry_rules(settings_from(one_service(service, "triage-api"), "demo").services)["triage-api"]
    assert rule.inputs["priority"] == expected.priority
    assert rule.inputs["conditions"] == [{"hostHeader": {"values": ["api.example.org"]}}, {"pathPattern": {"values": ["/triage", "/triage/*"]}}]
    [binding] = plan.of_type(BINDING)
    assert binding.inputs["spec"]["serviceRef"] == {"name": "triage-api", "port": 443}


@pytest.mark.parametrize(
    "service, stack, expected",
    [
        (BLUE_GREEN, "bluegreen", {"chat-api-blue", "chat-api-green"}),
        # An idle colour without pods keeps its target group: switching back creates nothing.
        (blue_green(idleReplicas=0), "bluegreen", {"chat-api-blue", "chat-api-green"}),
        ({"tag": "v1.4.0", "rollout": {"strategy": "rolling"}}, "demo", {"chat-api-stable"}),
    ],
    ids=["blue-green", "idle-colour-without-pods", "rolling"],
)
def test_backends_are_a_target_group_per_track_on_the_pods_port(service, stack, expected):
    settings = settings_from(one_service({**service, "port": 9000, "healthPath": "/ready"}, edge=EDGE), stack)
    backends = AlbRouter.backends(plan_release(settings, "chat-api"), settings.service("chat-api"))
    assert {b.name for b in backends} == expected
    # The pods' TLS proxy, whatever the app's port; checked through it, over TLS.
    assert {(b.port, b.health_path, b.health_port, b.health_protocol) for b in backends} == {(8443, "/ready", None, "HTTPS")}

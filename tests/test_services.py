"""Services side by side on one stack: what each gets, what a release step of one touches, the
Gateway API router on a whole stack, and the design's invariants per service on every stack."""

import json

import pytest

from core.edge import entry_rules
from core.release import deployment_name
from core.settings import Settings
from core.stack_config import carepath_sections
from offline.diff import diff_plans
from offline.harness import Plan, Registration, apply_overrides, load_stack_config
from tests.conftest import settings_from, undeclared_fields, unknown_inputs, validate_kubernetes

TRIAGE = {
    "tag": "v0.3.0",
    "hosts": ["triage.staging.carepath.example"],
    "rollout": {"strategy": "canary", "canary": {"tag": "v0.4.0", "weight": 10, "replicas": 1}},
}
DB = {"tag": "v2.1.0", "router": "alb", "pathPrefix": "/db", "rollout": {"strategy": "rolling"}}
TRIAGE_BLUE_GREEN = {
    "hosts": ["triage.carepath.example"],
    "rollout": {"strategy": "blue-green", "blueGreen": {"active": "blue", "blue": {"tag": "v0.3.0"}, "green": {"tag": "v0.4.0"}}},
}


def leaves(prefix: str, value: dict) -> dict:
    """`value` as `--path` overrides of its leaves under `prefix`: leaf keys never overlap, so the
    order overrides apply in does not matter and a later step replaces its key's value."""
    found = {}
    for key, item in value.items():
        found.update(leaves(f"{prefix}.{key}", item) if isinstance(item, dict) else {f"{prefix}.{key}": item})
    return found


ADDED = {**leaves("services.triage-api", TRIAGE), **leaves("services.db-api", DB)}
CHAT_IN_FLIGHT = {"services.chat-api.rollout.canary.tag": "v2.0.0", "services.chat-api.rollout.canary.weight": 10, "services.chat-api.rollout.canary.replicas": 1}
ON_GATEWAY_API = {**CHAT_IN_FLIGHT, "services.chat-api.router": "gateway-api"}

VIRTUAL_SERVICE = "kubernetes:networking.istio.io/v1:VirtualService"
HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
RULE = "aws:lb/listenerRule:ListenerRule"
BINDING = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"
TRACK_KINDS = (DEPLOYMENT, "kubernetes:core/v1:Service", "kubernetes:policy/v1:PodDisruptionBudget")
PLATFORM = ("carepath:edge:Edge", "carepath:mesh:IstioMesh", "carepath:edge:LoadBalancerController")


def lineage(plans: tuple[Plan, ...], urn: str) -> list[Registration]:
    """The resource `urn` names and its parents up to the stack, from whichever of `plans` has them."""
    by_urn = {r.urn: r for plan in plans for r in plan.resources}
    chain = [by_urn[urn]]
    while chain[-1].parent in by_urn:
        chain.append(by_urn[chain[-1].parent])
    return chain


def service_of(plans: tuple[Plan, ...], urn: str) -> str | None:
    """The service a resource belongs to (the `Service` component above it), if any."""
    return next((r.name for r in lineage(plans, urn) if r.type == "carepath:services:Service"), None)


def only_change(before: Plan, after: Plan):
    [change] = diff_plans(before, after).changes
    return change


def settings_of(stack: str, overrides: dict) -> Settings:
    return settings_from(carepath_sections(apply_overrides(load_stack_config(stack), overrides)), stack)


# --- a. two services more, by config alone -----------------------------------


@pytest.fixture(scope="module")
def three(run_stack):
    return run_stack("staging", ADDED)


def test_each_added_service_gets_its_repository(three):
    for name in ("triage-api", "db-api"):
        repository = three.one("aws:ecr/repository:Repository", name)
        assert repository.inputs["name"] == f"carepath-{name}"
        assert service_of((three,), repository.urn) == name
    assert three.outputs["repositoryUrls"] == {name: f"123456789012.dkr.ecr.us-east-1.amazonaws.com/carepath-{name}" for name in ("chat-api", "triage-api", "db-api")}


def test_each_added_service_gets_its_tracks(three):
    expected = {"chat-api": {"chat-api"}, "triage-api": {"triage-api", "triage-api-canary"}, "db-api": {"db-api"}}
    for kind in TRACK_KINDS:
        found: dict[str, set[str]] = {}
        for resource in three.of_type(kind):
            if resource.inputs["metadata"]["name"].endswith("-mesh"):
                continue  # the Istio router's host over every track, not a track
            found.setdefault(service_of((three,), resource.urn) or "", set()).add(resource.inputs["metadata"]["name"])
            assert resource.inputs["metadata"]["namespace"] == "carepath-staging"
        assert found == expected, kind
    deployments = {r.name: r.inputs["spec"] for r in three.of_type(DEPLOYMENT)}
    assert deployments["triage-api-canary"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "triage-api", "track": "canary"}}
    assert deployments["triage-api-canary"]["template"]["spec"]["containers"][0]["image"].endswith("/carepath-triage-api:v0.4.0")
    assert deployments["db-api"]["template"]["spec"]["containers"][0]["image"].endswith("/carepath-db-api:v2.1.0")
    assert {name: state["strategy"] for name, state in three.outputs["releases"].items()} == {"chat-api": "canary", "triage-api": "canary", "db-api": "rolling"}


def test_each_added_service_gets_its_routes_and_its_own_listener_rule(three):
    rules = entry_rules(settings_of("staging", ADDED).services)
    for name in ("chat-api", "triage-api", "db-api"):
        rule = three.one(RULE, f"{name}-production")
        assert service_of((three,), rule.urn) == name
        hosts = [{"hostHeader": {"values": list(rules[name].hosts)}}] if rules[name].hosts else []
        assert (rule.inputs["priority"], rule.inputs["conditions"]) == (rules[name].priority, [*hosts, {"pathPattern": {"values": list(rules[name].paths)}}])
    assert three.one(RULE, "triage-api-production").inputs["conditions"][0] == {"hostHeader": {"values": ["triage.staging.carepath.example"]}}
    assert three.one(RULE, "db-api-production").inputs["conditions"] == [{"pathPattern": {"values": ["/db", "/db/*"]}}]
    triage = three.one(VIRTUAL_SERVICE, "triage-api").inputs["spec"]
    assert triage["hosts"][-1] == "triage.staging.carepath.example"
    assert [d["weight"] for d in triage["http"][-1]["route"]] == [90, 10]
    binding = three.one(BINDING, "db-api")
    assert binding.inputs["spec"]["targetGroupARN"] == three.one("aws:lb/targetGroup:TargetGroup", "edge-db-api-stable").outputs["arn"]


def test_two_istio_services_share_the_gateways_target_group(three):
    groups = {r.name: r.outputs["arn"] for r in three.of_type("aws:lb/targetGroup:TargetGroup")}
    assert set(groups) == {"edge-gateway", "edge-db-api-stable"}
    for name in ("chat-api", "triage-api"):
        assert three.one(RULE, f"{name}-production").inputs["actions"][0]["forward"]["targetGroups"] == [{"arn": groups["edge-gateway"], "weight": 100}]
    # The ALB reaches pods on what the backends need: the gateway (443, readiness 15021) and db-api's TLS proxy (8443).
    egress = three.one("aws:ec2/securityGroup:SecurityGroup").inputs["egress"]
    assert sorted(r["fromPort"] for r in egress) == [443, 8443, 15021]


def test_each_added_service_gets_its_signals(three):
    for name in ("triage-api", "db-api"):
        signals = three.one("carepath:monitoring:ReleaseSignals", name)
        assert service_of((three,), signals.urn) == name
        children = {(r.type, r.inputs["metadata"]["name"]) for r in three.children(signals)}
        assert children == {
            ("kubernetes:monitoring.coreos.com/v1:ServiceMonitor", name),
            ("kubernetes:monitoring.coreos.com/v1:PrometheusRule", name),
            ("kubernetes:core/v1:ConfigMap", f"{name}-dashboard"),
        }
        monitor = next(r for r in three.children(signals) if r.type.endswith("ServiceMonitor"))
        assert monitor.inputs["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == name


def test_adding_services_touches_no_resource_of_the_one_already_there(run_stack, three):
    diff = diff_plans(run_stack("staging"), three)
    changed = {(c.action, service_of((run_stack("staging"), three), c.urn), c.type) for c in diff.changes}
    assert not any(service == "chat-api" for _, service, _ in changed)
    assert {action for action, service, _ in changed if service is not None} == {"create"}
    # The shared platform makes room: the ALB's way to db-api's pods, and the controller's new target group.
    assert {kind for action, service, kind in changed if service is None and action == "update"} == {"aws:ec2/securityGroup:SecurityGroup", "aws:iam/policy:Policy"}


@pytest.mark.parametrize("service", ["triage-api", "chat-api"])
def test_a_weight_step_of_one_service_changes_only_its_route(run_stack, service):
    # Two services mid-release at once: each step is one update of its own VirtualService.
    before = run_stack("staging", {**ADDED, **CHAT_IN_FLIGHT})
    after = run_stack("staging", {**ADDED, **CHAT_IN_FLIGHT, f"services.{service}.rollout.canary.weight": 25})
    change = only_change(before, after)
    assert (change.action, change.type, change.name) == ("update", VIRTUAL_SERVICE, service)
    assert {f.after for f in change.fields} == {75, 25}


# --- b. a service on the Gateway API -----------------------------------------


@pytest.fixture(scope="module")
def gateway_api(run_stack):
    return run_stack("staging", {**ADDED, **ON_GATEWAY_API})


def test_a_stack_with_a_service_on_the_gateway_api_evaluates_and_every_object_is_valid(gateway_api, reference_schema):
    assert {r.type for r in gateway_api.managed} >= {HTTP_ROUTE, "kubernetes:gateway.networking.k8s.io/v1:Gateway", "carepath:router:GatewayApiRouter"}
    for resource in gateway_api.managed:
        if resource.type.startswith("kubernetes:"):
            validate_kubernetes(resource, reference_schema)
    schema = reference_schema("gateway-api-crd-schemas.json")
    for resource in gateway_api.managed:
        if resource.type.startswith("kubernetes:gateway.networking.k8s.io/"):
            body = {key: resource.inputs[key] for key in ("spec",)}
            kind = f"gateway.networking.k8s.io/v1/{resource.type.rsplit(':', 1)[1]}"
            assert undeclared_fields(body, schema[kind]["properties"]) == [], resource.urn
            assert "sessionPersistence" not in json.dumps(resource.inputs)
    aws = reference_schema("pulumi-aws-schema-subset.json")
    for resource in gateway_api.managed:
        if resource.type in aws["resources"]:
            assert unknown_inputs(resource, aws) == [], resource.urn


def test_both_edges_of_the_mesh_serve_side_by_side(gateway_api):
    groups = {r.name: r.outputs["arn"] for r in gateway_api.of_type("aws:lb/targetGroup:TargetGroup")}
    assert set(groups) == {"edge-gateway", "edge-gateway-api", "edge-db-api-stable"}
    forwards = {r.name: r.inputs["actions"][0]["forward"]["targetGroups"] for r in gateway_api.of_type(RULE)}
    assert forwards["chat-api-production"] == [{"arn": groups["edge-gateway-api"], "weight": 100}]
    assert forwards["triage-api-production"] == [{"arn": groups["edge-gateway"], "weight": 100}]


def test_a_weight_step_on_the_gateway_api_changes_only_its_http_route(run_stack, gateway_api):
    after = run_stack("staging", {**ADDED, **ON_GATEWAY_API, "services.chat-api.rollout.canary.weight": 25})
    change = only_change(gateway_api, after)
    assert (change.action, change.type, change.name) == ("update", HTTP_ROUTE, "chat-api")


@pytest.mark.parametrize("direction", ["istio-to-gateway-api", "gateway-api-to-istio"])
@pytest.mark.parametrize("others", [{}, ADDED], ids=["alone", "beside-others"])
def test_moving_a_service_between_istio_and_the_gateway_api_changes_only_its_routing(run_stack, direction, others):
    istio, gateway = run_stack("staging", {**others, **CHAT_IN_FLIGHT}), run_stack("staging", {**others, **ON_GATEWAY_API})
    before, after = (istio, gateway) if direction == "istio-to-gateway-api" else (gateway, istio)
    plans = (before, after)
    diff = diff_plans(before, after)
    assert diff.changes
    for change in diff.changes:
        kinds = {r.type for r in lineage(plans, change.urn)}
        service = service_of(plans, change.urn)
        assert "carepath:track:Track" not in kinds and change.type != "kubernetes:security.istio.io/v1:PeerAuthentication", change
        if service is None:  # what serves the routers' backends: target groups, gateways, bindings, the controller's grant
            assert kinds & set(PLATFORM), change
        elif change.type == RULE:
            assert (change.action, change.name, [f.path for f in change.fields]) == ("update", "chat-api-production", ["actions[0].forward.targetGroups[0].arn"])
        else:  # the routers' objects, and only chat-api's
            assert service == "chat-api" and kinds & {"carepath:router:IstioRouter", "carepath:router:GatewayApiRouter"}, change


# --- c. the stack files, and every invariant per service ---------------------

STACK_CONFIGS = {
    "demo": ("demo", {}),
    "staging": ("staging", {}),
    "production": ("production", {}),
    "staging-three-services": ("staging", ADDED),
    "staging-gateway-api": ("staging", {**ADDED, **ON_GATEWAY_API}),
    "production-two-services": ("production", leaves("services.triage-api", TRIAGE_BLUE_GREEN)),
}


def routes(plan: Plan) -> list[tuple[str, list[tuple[str, int]]]]:
    """Every production route of the plan, as (what, [(the Deployment it reaches, weight)]), in
    every router's spelling; a route to a gateway is the gateway's routes' business."""
    found = []
    for service in plan.of_type(VIRTUAL_SERVICE):
        name = service.inputs["metadata"]["name"]
        for route in service.inputs["spec"]["http"]:
            targets = [(deployment_name(name, d["destination"]["subset"]), d["weight"]) for d in route["route"]]
            if "mirror" in route:
                targets.append((deployment_name(name, route["mirror"]["subset"]), 0))
            found.append((f"{name} {route['name']}", targets))
    for route in plan.of_type(HTTP_ROUTE):
        for rule in route.inputs["spec"]["rules"]:
            targets = [(ref["name"], ref["weight"]) for ref in rule["backendRefs"]]
            targets += [(f["requestMirror"]["backendRef"]["name"], 0) for f in rule.get("filters", []) if f["type"] == "RequestMirror"]
            found.append((f"{route.name} {rule['name']}", targets))
    bound = {b.inputs["spec"]["targetGroupARN"]: b.inputs["spec"]["serviceRef"]["name"] for b in plan.of_type(BINDING)}
    deployments = {r.inputs["metadata"]["name"] for r in plan.of_type(DEPLOYMENT)}
    for rule in plan.of_type(RULE):
        if rule.name.endswith("-production"):
            groups = rule.inputs["actions"][0]["forward"]["targetGroups"]
            found.append((rule.name, [(bound[g["arn"]], g["weight"]) if bound[g["arn"]] in deployments else ("(gateway)", g["weight"]) for g in groups]))
    return found


@pytest.mark.parametrize("config", list(STACK_CONFIGS))
def test_weights_sum_to_100_and_no_route_reaches_a_track_without_pods(run_stack, config):
    stack, overrides = STACK_CONFIGS[config]
    plan = run_stack(stack, overrides)
    replicas = {r.inputs["metadata"]["name"]: r.inputs["spec"].get("replicas", 0) for r in plan.of_type(DEPLOYMENT)}
    found = routes(plan)
    assert {what.split(" ")[0].removesuffix("-production") for what, _ in found} >= set(plan.outputs["releases"])
    for what, targets in found:
        assert sum(weight for _, weight in targets) == 100, what
        for target, _ in targets:
            assert target == "(gateway)" or replicas.get(target, 0) >= 1, (what, target)
    bound = {b.inputs["spec"]["targetGroupARN"]: b.inputs["spec"]["serviceRef"]["name"] for b in plan.of_type(BINDING)}
    for rule in plan.of_type(RULE):
        if rule.name.endswith("-test"):  # the idle colour, for testers
            [group] = rule.inputs["actions"][0]["forward"]["targetGroups"]
            assert replicas[bound[group["arn"]]] >= 1


SERVICES = [
    (config, name, service.rollout.strategy, settings.routers[name].name)
    for config, (stack, overrides) in STACK_CONFIGS.items()
    for settings in [settings_of(stack, overrides)]
    for name, service in settings.services.items()
]


@pytest.mark.parametrize("config, service, strategy, router", SERVICES, ids=[f"{c}:{s}" for c, s, _, _ in SERVICES])
def test_a_release_step_changes_only_what_it_must(run_stack, config, service, strategy, router):
    stack, overrides = STACK_CONFIGS[config]
    key = f"services.{service}.rollout"
    if strategy == "canary":
        # A canary in flight (the config's own, or one started here), its size pinned as the driver
        # pins it before a step (`core.actions.scale_canary`).
        in_flight = {f"{key}.canary.tag": "v9.9.9", f"{key}.canary.weight": 10, f"{key}.canary.replicas": 1, **overrides}
        before = run_stack(stack, in_flight)
        change = only_change(before, run_stack(stack, {**in_flight, f"{key}.canary.weight": 50}))
        assert (change.action, change.name, service_of((before,), change.urn)) == ("update", service, service)
        assert change.type == {"istio": VIRTUAL_SERVICE, "gateway-api": HTTP_ROUTE}[router]
    elif strategy == "blue-green":
        diff = diff_plans(run_stack(stack, overrides), run_stack(stack, {**overrides, f"{key}.blueGreen.active": "green"}))
        assert {(c.action, c.type, c.name) for c in diff.changes} == {("update", RULE, f"{service}-production"), ("update", RULE, f"{service}-test")}
    else:
        assert strategy == "rolling"
        diff = diff_plans(run_stack(stack, overrides), run_stack(stack, {**overrides, f"services.{service}.tag": "v9.9.9"}))
        assert {(c.action, c.type, c.name) for c in diff.changes} == {("update", DEPLOYMENT, service)}


SWITCHABLE = [(config, service, strategy) for config, service, strategy, router in SERVICES if router in ("istio", "gateway-api")]


@pytest.mark.parametrize("config, service, strategy", SWITCHABLE, ids=[f"{c}:{s}" for c, s, _ in SWITCHABLE])
def test_switching_between_rolling_and_canary_never_replaces_the_serving_deployment(run_stack, config, service, strategy):
    # On a router that carries both strategies; the ALB router carries rolling and blue-green only.
    stack, overrides = STACK_CONFIGS[config]
    # A rolling stage of a promotion path cannot run a verification suite before patients: the switch drops it.
    promotion = carepath_sections(load_stack_config(stack))["services"].get(service, {}).get("promotion")
    to_rolling = {f"services.{service}.promotion": {k: v for k, v in promotion.items() if k != "verify"}} if promotion and strategy == "canary" else {}
    switched = run_stack(stack, {**overrides, f"services.{service}.rollout.strategy": "rolling" if strategy == "canary" else "canary", **to_rolling})
    for before, after in ((run_stack(stack, overrides), switched), (switched, run_stack(stack, overrides))):
        serving = [c for c in diff_plans(before, after).changes if c.type == DEPLOYMENT and c.name == service]
        assert all(c.action == "update" and c.replace_because == () for c in serving), serving


# --- e. callers in the mesh ---------------------------------------------------


def test_callers_in_the_mesh_reach_each_service_by_its_own_name(gateway_api):
    triage = gateway_api.one(VIRTUAL_SERVICE, "triage-api").inputs["spec"]
    assert "triage-api.carepath-staging.svc.cluster.local" in triage["hosts"] and "mesh" in triage["gateways"]
    route = gateway_api.one(HTTP_ROUTE, "chat-api").inputs["spec"]
    assert {"group": "", "kind": "Service", "name": "chat-api", "port": 80} in route["parentRefs"]
    # ... and that name is the stable track's own Service, which exists.
    assert gateway_api.one("kubernetes:core/v1:Service", "chat-api").inputs["spec"]["ports"][0]["port"] == 80

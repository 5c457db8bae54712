import pytest

from offline.diff import diff_plans, render_diff

LISTENER_RULE = "aws:lb/listenerRule:ListenerRule"


def test_no_override_means_no_change(run_stack):
    diff = diff_plans(run_stack("staging"), run_stack("staging"))
    assert diff.changes == () and diff.outputs == ()
    assert diff.unchanged == len(run_stack("staging").managed)


def test_node_count_is_an_in_place_update_of_the_node_group_only(run_stack):
    diff = diff_plans(run_stack("demo"), run_stack("demo", {"cluster.desiredNodes": 3}))
    [change] = diff.changes
    assert (change.action, change.type) == ("update", "eks:index:ManagedNodeGroup")
    assert [(f.path, f.before, f.after) for f in change.fields] == [("scalingConfig.desiredSize", 2, 3)]


def test_instance_type_change_replaces_the_node_group(run_stack):
    diff = diff_plans(run_stack("demo"), run_stack("demo", {"cluster.instanceType": "t4g.large"}))
    [change] = diff.changes
    assert change.action == "replace" and set(change.replace_because) == {"amiType", "instanceTypes"}
    assert "+- replace  cluster-nodes  [eks:index:ManagedNodeGroup]  (replace: amiType, instanceTypes changed)" in render_diff(diff)


def test_using_an_existing_repository_deletes_the_created_one(run_stack):
    diff = diff_plans(run_stack("demo"), run_stack("demo", {"services.chat-api.createRepository": False}))
    assert {(c.action, c.type) for c in diff.changes} == {
        ("delete", "aws:ecr/repository:Repository"),
        ("delete", "aws:ecr/lifecyclePolicy:LifecyclePolicy"),
    }


def test_renaming_the_cluster_replaces_it_and_shows_the_output_change(run_stack):
    diff = diff_plans(run_stack("demo"), run_stack("demo", {"cluster.name": "carepath-demo-2"}))
    replaced = {c.type for c in diff.of("replace")}
    assert "eks:index:Cluster" in replaced
    assert ("clusterName", "carepath-demo", "carepath-demo-2") in {(f.path, f.before, f.after) for f in diff.outputs}
    assert "Summary:" in render_diff(diff)


def test_an_existing_vpc_deletes_the_created_one_and_moves_the_cluster(run_stack):
    overrides = {
        "cluster.vpcId": "vpc-0123456789abcdef0",
        "cluster.publicSubnetIds": ["subnet-0aaaaaaa", "subnet-0bbbbbbb"],
        "cluster.privateSubnetIds": ["subnet-0ccccccc", "subnet-0ddddddd"],
    }
    diff = diff_plans(run_stack("demo"), run_stack("demo", overrides))
    assert ("delete", "awsx:ec2:Vpc") in {(c.action, c.type) for c in diff.changes}
    cluster = next(c for c in diff.changes if c.type == "eks:index:Cluster")
    assert cluster.action == "replace" and "vpcId" in cluster.replace_because


def _only_change(diff):
    assert len(diff.changes) == 1, [(c.action, c.type, c.name) for c in diff.changes]
    return diff.changes[0]


def test_a_new_tag_updates_only_the_deployment(run_stack):
    change = _only_change(diff_plans(run_stack("demo"), run_stack("demo", {"services.chat-api.tag": "v1.5.0"})))
    assert (change.action, change.type, change.name) == ("update", "kubernetes:apps/v1:Deployment", "chat-api")
    assert {f.path for f in change.fields} == {
        "spec.template.metadata.labels.app.kubernetes.io/version",
        "spec.template.spec.containers[0].image",
    }


def test_rolling_back_to_the_previous_tag_updates_only_the_deployment(run_stack):
    change = _only_change(diff_plans(run_stack("demo", {"services.chat-api.tag": "v1.5.0"}), run_stack("demo")))
    assert (change.action, change.type) == ("update", "kubernetes:apps/v1:Deployment")
    image = next(f for f in change.fields if f.path.endswith(".image"))
    assert image.before.endswith(":v1.5.0") and image.after.endswith(":v1.4.0")


def test_switching_rolling_to_canary_keeps_the_serving_deployment(run_stack):
    after = run_stack("demo", {"services.chat-api.rollout.strategy": "canary", "mesh.enabled": True})
    diff = diff_plans(run_stack("demo"), after)
    touched = {(c.type, c.name): c for c in diff.changes}
    # Leaving the ALB drops the pods' TLS proxy and the Service's port for it: in place.
    service = touched[("kubernetes:core/v1:Service", "chat-api")]
    assert service.action == "update" and service.replace_because == ()
    assert all(f.path.startswith("spec.ports") for f in service.fields), [f.path for f in service.fields]
    deployment = touched[("kubernetes:apps/v1:Deployment", "chat-api")]
    # Enabling the mesh restarts the pods to inject sidecars: an in-place rolling update, nothing else.
    assert deployment.action == "update" and deployment.replace_because == ()
    proxy = ("spec.template.spec.initContainers", "spec.template.spec.volumes")
    assert all(f.path.startswith(("spec.template.metadata.", *proxy)) for f in deployment.fields), [f.path for f in deployment.fields]
    spec = after.one("kubernetes:apps/v1:Deployment", "chat-api").inputs["spec"]
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert spec["selector"] == {"matchLabels": {"app.kubernetes.io/name": "chat-api", "track": "stable"}}


def test_a_blue_green_switch_updates_only_the_services_listener_rules_and_replaces_nothing(run_stack):
    diff = diff_plans(run_stack("production"), run_stack("production", {"services.chat-api.rollout.blueGreen.active": "green"}))
    assert {(c.action, c.type, c.name) for c in diff.changes} == {
        ("update", LISTENER_RULE, "chat-api-production"),
        ("update", LISTENER_RULE, "chat-api-test"),
    }
    groups = {r.name: r.outputs["arn"] for r in run_stack("production").of_type("aws:lb/targetGroup:TargetGroup")}
    moves = {c.name: [(f.path, f.before, f.after) for f in c.fields] for c in diff.changes}
    assert moves == {
        "chat-api-production": [("actions[0].forward.targetGroups[0].arn", groups["edge-chat-api-blue"], groups["edge-chat-api-green"])],
        "chat-api-test": [("actions[0].forward.targetGroups[0].arn", groups["edge-chat-api-green"], groups["edge-chat-api-blue"])],
    }


def test_switching_back_is_the_same_listener_update_reversed(run_stack):
    forward = diff_plans(run_stack("production"), run_stack("production", {"services.chat-api.rollout.blueGreen.active": "green"}))
    back = diff_plans(run_stack("production", {"services.chat-api.rollout.blueGreen.active": "green"}), run_stack("production"))
    assert {c.name: [(f.after, f.before) for f in c.fields] for c in back.changes} == {
        c.name: [(f.before, f.after) for f in c.fields] for c in forward.changes
    }


def test_a_new_tag_on_the_idle_colour_updates_only_its_deployment(run_stack):
    change = _only_change(diff_plans(run_stack("production"), run_stack("production", {"services.chat-api.rollout.blueGreen.green.tag": "v2.0.0"})))
    assert (change.action, change.type, change.name) == ("update", "kubernetes:apps/v1:Deployment", "chat-api-green")


def test_a_gradual_switch_changes_only_the_production_listener_rule(run_stack):
    change = _only_change(diff_plans(run_stack("production"), run_stack("production", {"services.chat-api.rollout.blueGreen.greenWeight": 10})))
    assert (change.action, change.type, change.name) == ("update", LISTENER_RULE, "chat-api-production")


def test_scaling_the_idle_colour_to_zero_drops_its_test_route(run_stack):
    diff = diff_plans(run_stack("production"), run_stack("production", {"services.chat-api.rollout.blueGreen.idleReplicas": 0}))
    assert {(c.action, c.type, c.name) for c in diff.changes} == {
        ("update", "kubernetes:apps/v1:Deployment", "chat-api-green"),
        ("delete", LISTENER_RULE, "chat-api-test"),
        ("delete", "aws:lb/listener:Listener", "test"),
        ("update", "aws:ec2/securityGroup:SecurityGroup", "edge"),
    }


# --- canary --------------------------------------------------------------------

IN_FLIGHT = {"services.chat-api.rollout.canary.tag": "v2.0.0", "services.chat-api.rollout.canary.weight": 10}


def test_a_weight_step_changes_only_the_virtual_service(run_stack):
    step = diff_plans(run_stack("staging", IN_FLIGHT), run_stack("staging", {**IN_FLIGHT, "services.chat-api.rollout.canary.weight": 25}))
    change = _only_change(step)
    assert (change.action, change.type, change.name) == ("update", "kubernetes:networking.istio.io/v1:VirtualService", "chat-api")
    split = len(run_stack("staging", IN_FLIGHT).one("kubernetes:networking.istio.io/v1:VirtualService").inputs["spec"]["http"]) - 1
    assert {(f.path, f.before, f.after) for f in change.fields} == {
        (f"spec.http[{split}].route[0].weight", 90, 75),
        (f"spec.http[{split}].route[1].weight", 10, 25),
    }


def test_starting_a_canary_adds_its_track_and_routes_without_touching_stable(run_stack):
    diff = diff_plans(run_stack("staging"), run_stack("staging", IN_FLIGHT))
    touched = {(c.action, c.type, c.name) for c in diff.changes}
    assert ("update", "kubernetes:networking.istio.io/v1:VirtualService", "chat-api") in touched
    assert ("create", "kubernetes:apps/v1:Deployment", "chat-api-canary") in touched
    assert not any(name == "chat-api" and kind == "kubernetes:apps/v1:Deployment" for _, kind, name in touched)
    assert all(action in ("create", "update") for action, _, _ in touched)


def test_abort_sends_everything_back_to_stable_and_leaves_it_untouched(run_stack):
    diff = diff_plans(run_stack("staging", IN_FLIGHT), run_stack("staging", unset=("services.chat-api.rollout.canary.tag",), overrides={"services.chat-api.rollout.canary.weight": 0}))
    touched = {(c.type, c.name): c.action for c in diff.changes}
    assert touched[("kubernetes:networking.istio.io/v1:VirtualService", "chat-api")] == "update"
    assert touched[("kubernetes:apps/v1:Deployment", "chat-api-canary")] == "delete"
    assert ("kubernetes:apps/v1:Deployment", "chat-api") not in touched
    assert {action for (kind, name), action in touched.items() if name != "chat-api"} == {"delete"}


def test_promotion_rolls_stable_to_the_canary_tag_then_removes_the_canary(run_stack):
    full = {**IN_FLIGHT, "services.chat-api.rollout.canary.weight": 100}
    promoted = run_stack("staging", {"services.chat-api.tag": "v2.0.0", "services.chat-api.rollout.canary.weight": 0}, unset=("services.chat-api.rollout.canary.tag",))
    diff = diff_plans(run_stack("staging", full), promoted)
    touched = {(c.type, c.name): c for c in diff.changes}
    stable = touched[("kubernetes:apps/v1:Deployment", "chat-api")]
    assert stable.action == "update" and stable.replace_because == ()
    assert touched[("kubernetes:apps/v1:Deployment", "chat-api-canary")].action == "delete"
    # Traffic moves to stable only once its rollout is done (the provider awaits it), and the
    # canary is deleted after that (Pulumi deletes last), so the canary serves throughout.
    service = promoted.one("kubernetes:networking.istio.io/v1:VirtualService")
    assert promoted.one("kubernetes:apps/v1:Deployment", "chat-api").urn in service.options["dependsOn"]
    spec = promoted.one("kubernetes:apps/v1:Deployment", "chat-api").inputs["spec"]
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0 and spec["replicas"] == 2


# --- services and routers ------------------------------------------------------

TRIAGE_CANARY = {"tag": "v0.3.0", "hosts": ["triage.example.org"], "rollout": {"strategy": "canary", "canary": {"tag": "v0.4.0", "weight": 10}}}
ROUTE = {"istio": "kubernetes:networking.istio.io/v1:VirtualService", "gateway-api": "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"}


def two_canaries(router: str, **changes) -> dict:
    """Staging with chat-api and triage-api both mid-canary on `router`, and `changes` to triage-api."""
    return {**IN_FLIGHT, "services.chat-api.router": router, "services.triage-api": {**TRIAGE_CANARY, "router": router, **changes}}


@pytest.mark.parametrize("router", ROUTE)
def test_a_weight_step_of_one_service_changes_only_its_route(run_stack, router):
    step = {**TRIAGE_CANARY["rollout"], "canary": {"tag": "v0.4.0", "weight": 25}}
    change = _only_change(diff_plans(run_stack("staging", two_canaries(router)), run_stack("staging", two_canaries(router, rollout=step))))
    assert (change.action, change.type, change.name) == ("update", ROUTE[router], "triage-api")
    assert sorted(f.after for f in change.fields) == [25, 75]


def test_a_blue_green_switch_of_one_service_updates_only_its_own_listener_rules(run_stack):
    colours = {"blue": {"tag": "v0.3.0"}, "green": {"tag": "v0.3.0"}}
    triage_api = {"pathPrefix": "/triage", "rollout": {"strategy": "blue-green", "blueGreen": {"active": "blue", **colours}}}
    switched = {**triage_api, "rollout": {"strategy": "blue-green", "blueGreen": {"active": "green", **colours}}}
    diff = diff_plans(run_stack("production", {"services.triage-api": triage_api}), run_stack("production", {"services.triage-api": switched}))
    assert {(c.action, c.type, c.name) for c in diff.changes} == {
        ("update", LISTENER_RULE, "triage-api-production"),
        ("update", LISTENER_RULE, "triage-api-test"),
    }


def test_a_new_tag_of_one_service_updates_only_its_deployment(run_stack):
    change = _only_change(diff_plans(run_stack("staging", two_canaries("istio")), run_stack("staging", two_canaries("istio", tag="v0.3.1"))))
    assert (change.action, change.type, change.name) == ("update", "kubernetes:apps/v1:Deployment", "triage-api")


@pytest.mark.parametrize("before, after", [("istio", "gateway-api"), ("gateway-api", "istio")])
def test_moving_a_service_between_routers_keeps_its_deployments_and_its_listener_rule(run_stack, before, after):
    diff = diff_plans(run_stack("staging", {**IN_FLIGHT, "services.chat-api.router": before}), run_stack("staging", {**IN_FLIGHT, "services.chat-api.router": after}))
    touched = {(c.type, c.name): c for c in diff.changes}
    assert not [key for key in touched if key[0] == "kubernetes:apps/v1:Deployment"]
    assert touched[(ROUTE[after], "chat-api")].action == "create" and touched[(ROUTE[before], "chat-api")].action == "delete"
    rule = touched[(LISTENER_RULE, "chat-api-production")]
    assert rule.action == "update" and [f.path for f in rule.fields] == ["actions[0].forward.targetGroups[0].arn"]


def test_a_service_on_its_own_host_updates_its_listener_rule_in_place(run_stack):
    change = _only_change(diff_plans(run_stack("demo"), run_stack("demo", {"services.chat-api.hosts": ["chat.example.org"]})))
    assert (change.action, change.type, change.name) == ("update", LISTENER_RULE, "chat-api-production")
    fields = {f.path: (f.before, f.after) for f in change.fields}
    assert fields["priority"][0] == 50000 and fields["priority"][1] < 50000
    assert fields["conditions[0].hostHeader.values"] == (None, ["chat.example.org"])


def test_serving_https_moves_each_listener_rule_to_the_new_listener(run_stack):
    certificate = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
    diff = diff_plans(run_stack("demo"), run_stack("demo", {"edge.certificateArn": certificate}))
    [rule] = [c for c in diff.changes if c.type == LISTENER_RULE]
    assert (rule.action, rule.name, rule.replace_because) == ("replace", "chat-api-production", ("listenerArn",))
    assert "+- replace  chat-api-production  [aws:lb/listenerRule:ListenerRule]  (replace: listenerArn changed)" in render_diff(diff)

import json

import pytest

from offline.diff import diff_json, diff_plans, render_diff

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
        "spec.template.spec.containers[chat-api].image",
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
    assert {(f.path, f.before, f.after) for f in change.fields} == {
        ("spec.http[split].route[0].weight", 90, 75),
        ("spec.http[split].route[1].weight", 10, 25),
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
    # Conditions are keyed by kind: the host condition is added, the path condition stays as it was.
    assert fields["conditions[hostHeader]"] == (None, {"hostHeader": {"values": ["chat.example.org"]}})
    assert not [path for path in fields if path.startswith("conditions[pathPattern]")]


def test_serving_https_moves_each_listener_rule_to_the_new_listener(run_stack):
    certificate = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
    diff = diff_plans(run_stack("demo"), run_stack("demo", {"edge.certificateArn": certificate}))
    [rule] = [c for c in diff.changes if c.type == LISTENER_RULE]
    assert (rule.action, rule.name, rule.replace_because) == ("replace", "chat-api-production", ("listenerArn",))
    assert "+- replace  chat-api-production  [aws:lb/listenerRule:ListenerRule]  (replace: listenerArn changed)" in render_diff(diff)


# --- propagation: inputs that take a created or replaced resource's outputs ----

NEW_VPC = {"cluster.vpcCidr": "10.1.0.0/16"}


def _unknown(change):
    return {f.path for f in change.fields if f.unknown}


def test_a_new_vpc_cidr_replaces_what_takes_the_vpcs_ids(run_stack):
    base, head = run_stack("demo"), run_stack("demo", NEW_VPC)
    diff = diff_plans(base, head)
    touched = {(c.type, c.name): c for c in diff.changes}
    cluster = touched[("eks:index:Cluster", "cluster")]
    assert cluster.action == "replace" and cluster.replace_because == ("vpcId",)
    assert _unknown(cluster) == {"vpcId", "publicSubnetIds", "privateSubnetIds"}
    nodes = touched[("eks:index:ManagedNodeGroup", "cluster-nodes")]
    assert (nodes.action, nodes.replace_because, _unknown(nodes)) == ("replace", ("subnetIds",), {"subnetIds"})
    # Transitively: the replaced cluster's OIDC provider is new, so the roles it trusts change.
    assert touched[("aws:iam/role:Role", "cluster-vpc-cni")].action == "update"
    vpc_id = base.one("awsx:ec2:Vpc").outputs["vpcId"]
    assert head.one("awsx:ec2:Vpc").outputs["vpcId"] == vpc_id, "the mocks keep the id: only propagation shows the change"
    shown = render_diff(diff)
    assert f"        vpcId: {vpc_id} → output<string>" in shown
    assert "+- replace  cluster  [eks:index:Cluster]  (replace: vpcId changed)" in shown
    assert "5 to replace (4 by propagation)" in shown.splitlines()[-1]


def test_a_replaced_target_group_changes_the_listener_rule_and_the_binding_carrying_its_arn(run_stack):
    diff = diff_plans(run_stack("demo"), run_stack("demo", NEW_VPC))
    touched = {(c.type, c.name): c for c in diff.changes}
    group = touched[("aws:lb/targetGroup:TargetGroup", "edge-chat-api-stable")]
    assert (group.action, group.replace_because) == ("replace", ("vpcId",))
    rule = touched[(LISTENER_RULE, "chat-api-production")]
    assert (rule.action, _unknown(rule)) == ("update", {"actions[0].forward.targetGroups[0].arn"})
    binding = touched[("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding", "chat-api")]
    assert (binding.action, _unknown(binding)) == ("update", {"spec.targetGroupARN"})
    fields = next(c for c in json.loads(diff_json(diff))["changes"] if c["urn"] == binding.urn)["fields"]
    assert fields == [{"path": "spec.targetGroupARN", "before": binding.fields[0].before, "after": None, "unknown": True}]


def test_a_new_service_port_keeps_the_target_group_and_propagates_nothing(run_stack):
    # The target group reaches the pods through their TLS proxy's port, which the service's port does not move.
    diff = diff_plans(run_stack("demo"), run_stack("demo", {"services.chat-api.port": 9000}))
    assert {(c.action, c.type) for c in diff.changes} == {("update", "kubernetes:apps/v1:Deployment"), ("update", "kubernetes:core/v1:ConfigMap")}
    assert not any(f.unknown for c in diff.changes for f in c.fields)


@pytest.mark.parametrize(
    "stack, base, head",
    [
        ("staging", IN_FLIGHT, {**IN_FLIGHT, "services.chat-api.rollout.canary.weight": 25}),
        ("production", {}, {"services.chat-api.rollout.blueGreen.active": "green"}),
        ("staging", {}, IN_FLIGHT),
    ],
)
def test_release_steps_propagate_nothing(run_stack, stack, base, head):
    diff = diff_plans(run_stack(stack, base), run_stack(stack, head))
    assert diff.changes and not any(f.unknown for c in diff.changes for f in c.fields)
    assert "by propagation" not in render_diff(diff)


# --- named lists ---------------------------------------------------------------


@pytest.mark.parametrize("router", ROUTE)
def test_the_tester_route_reads_as_one_added_route(run_stack, router):
    # Without stickiness a canary at 0 % adds the testers' route before the split, and a canary
    # destination (at 0 %) to the split: the routes after it keep their names.
    idle = {"services.chat-api.router": router, "services.chat-api.rollout.canary.stickiness": False}
    head = run_stack("staging", {**idle, "services.chat-api.rollout.canary.tag": "v2.0.0"})
    diff = diff_plans(run_stack("staging", idle), head)
    [change] = [c for c in diff.changes if c.type == ROUTE[router]]
    routes = {"istio": "http", "gateway-api": "rules"}[router]
    testers = head.one(ROUTE[router]).inputs["spec"][routes][0]
    assert testers["name"] == "testers"
    assert [(f.before, f.after) for f in change.fields if f.path.startswith(f"spec.{routes}[testers]")] == [(None, testers)]
    assert {f.path.split("]")[0] + "]" for f in change.fields} == {f"spec.{routes}[testers]", f"spec.{routes}[split]"}
    assert not any(f.path.startswith(f"spec.{routes}[split]") and f.before is not None for f in change.fields), "stable keeps its route"
    assert f"        spec.{routes}[testers]: + {{" in render_diff(diff)


def test_a_removed_container_reads_as_one_removal(run_stack):
    diff = diff_plans(run_stack("demo"), run_stack("demo", {"services.chat-api.rollout.strategy": "canary", "mesh.enabled": True}))
    deployment = next(c for c in diff.changes if c.type == "kubernetes:apps/v1:Deployment")
    proxy = [f for f in deployment.fields if f.path.startswith("spec.template.spec.initContainers")]
    assert [(f.path, f.before["name"], f.after) for f in proxy] == [("spec.template.spec.initContainers[tls-proxy]", "tls-proxy", None)]
    assert "        spec.template.spec.initContainers[tls-proxy]: - {" in render_diff(diff)

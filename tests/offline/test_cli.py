import json

from offline.__main__ import main


def test_plan_prints_the_resource_tree_and_outputs(capsys):
    assert main(["plan", "demo"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Offline plan of stack demo: 79 resources")
    assert "├── cluster  [carepath:cluster:Cluster]" in out
    assert "authenticationMode: API" in out
    assert "imageTagMutability: IMMUTABLE" in out
    assert "  kubeconfig: [secret]" in out


def test_plan_shows_each_service_with_its_router_and_listener_rule(capsys):
    assert main(["plan", "demo"]) == 0
    out = capsys.readouterr().out
    assert "└── chat-api  [carepath:services:Service]" in out
    assert "chat-api  [carepath:router:AlbRouter]" in out
    rule = out[out.index("chat-api-production  [aws:lb/listenerRule:ListenerRule]"):].splitlines()[1:4]
    assert [line.split(":")[0].strip(" │") for line in rule] == ["priority", "conditions", "actions"]
    assert rule[0].endswith("priority: 50000") and '"pathPattern": {"values": ["/*"]}' in rule[1]
    assert '  repositoryUrls: {"chat-api": "123456789012.dkr.ecr.us-east-1.amazonaws.com/carepath-chat-api"}' in out


def test_a_new_service_is_one_override(capsys):
    triage_api = '{"tag": "v0.3.0", "pathPrefix": "/triage", "rollout": {"strategy": "rolling"}}'
    assert main(["plan", "demo", "--set", f"services.triage-api={triage_api}"]) == 0
    out = capsys.readouterr().out
    assert "└── triage-api  [carepath:services:Service]" in out
    assert "name: carepath-triage-api" in out
    assert '"pathPattern": {"values": ["/triage", "/triage/*"]}' in out
    assert "triage-api-production  [aws:lb/listenerRule:ListenerRule]" in out


def test_plan_of_a_gateway_api_service_shows_its_route_gateway_and_crds(capsys):
    assert main(["plan", "staging", "--set", "services.chat-api.router=gateway-api"]) == 0
    out = capsys.readouterr().out
    assert "chat-api  [carepath:router:GatewayApiRouter]" in out
    assert "gateway-api-crds  [kubernetes:yaml/v2:ConfigFile]" in out
    assert "file: https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.4.0/standard-install.yaml" in out
    assert "spec.gatewayClassName: istio" in out
    route = out[out.index("chat-api  [kubernetes:gateway.networking.k8s.io/v1:HTTPRoute]"):].splitlines()[1:3]
    assert [line.split(":")[0].strip(" │") for line in route] == ["spec.parentRefs", "spec.rules"]


def test_plan_json_has_every_resource_with_its_parent_and_inputs(capsys):
    assert main(["plan", "production", "--json", "--set", "cluster.maxNodes=8"]) == 0
    document = json.loads(capsys.readouterr().out)
    by_name = {(r["type"], r["name"]): r for r in document["resources"]}
    nodes = by_name[("eks:index:ManagedNodeGroup", "cluster-nodes")]
    assert nodes["inputs"]["scalingConfig"]["maxSize"] == 8
    assert nodes["parent"] == by_name[("carepath:cluster:Cluster", "cluster")]["urn"]
    assert document["outputs"]["clusterName"] == "carepath-production"
    assert document["outputs"]["releases"]["chat-api"]["strategy"] == "blue-green"


def test_diff_prints_what_an_override_changes(capsys):
    assert main(["diff", "staging", "--set", "cluster.desiredNodes=4"]) == 0
    out = capsys.readouterr().out
    assert "~ update   cluster-nodes  [eks:index:ManagedNodeGroup]" in out
    assert "scalingConfig.desiredSize: 3 → 4" in out
    assert out.rstrip().endswith("Summary: 0 to create, 1 to update, 0 to replace, 0 to delete, 95 unchanged")


def test_diff_of_a_service_tag_names_its_deployment(capsys):
    assert main(["diff", "demo", "--set", "services.chat-api.tag=v1.5.0"]) == 0
    out = capsys.readouterr().out
    assert " ~ update   chat-api  [kubernetes:apps/v1:Deployment]" in out
    assert "spec.template.spec.containers[0].image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/carepath-chat-api:v1.4.0 → " in out
    assert "releases.chat-api.tracks.stable.tag: v1.4.0 → v1.5.0" in out


def test_bad_config_exits_2_listing_every_problem(capsys):
    assert main(["plan", "staging", "--set", "services.chat-api.rollout.strategy=canry", "--set", "services.chat-api.replica=3"]) == 2
    err = capsys.readouterr().err
    assert "carepath:services.chat-api.rollout.strategy: 'canry' is not one of rolling, canary, blue-green" in err
    assert "carepath:services.chat-api.replica: unknown key; did you mean 'replicas'?" in err


def test_a_pull_request_changing_only_the_canary_weight_names_exactly_one_resource(tmp_path, capsys):
    import yaml

    from offline.harness import stack_file

    document = yaml.safe_load(stack_file("staging").read_text())
    canary = document["config"]["carepath:services"]["chat-api"]["rollout"]["canary"]
    canary.update(tag="v2.0.0", weight=10, replicas=1)
    base = tmp_path / "base.yaml"  # the base branch's stack file, as the workflow extracts it
    base.write_text(yaml.safe_dump(document))
    # the head: this checkout's stack file with the pull request's one change in config
    head = {"services.chat-api.rollout.canary.tag": "v2.0.0", "services.chat-api.rollout.canary.weight": 25, "services.chat-api.rollout.canary.replicas": 1}
    assert main(["diff", "staging", "--base-config", str(base), "--json", *(f"--set={key}={value}" for key, value in head.items())]) == 0

    changes = json.loads(capsys.readouterr().out)["changes"]
    assert [(c["action"], c["type"], c["name"]) for c in changes] == [("update", "kubernetes:networking.istio.io/v1:VirtualService", "chat-api")]

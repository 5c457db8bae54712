import json

from offline.__main__ import main


def test_plan_prints_the_resource_tree_and_outputs(capsys):
    assert main(["plan", "demo"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Offline plan of stack demo: 44 resources")
    assert "├── cluster  [carepath:cluster:Cluster]" in out
    assert "authenticationMode: API" in out
    assert "imageTagMutability: IMMUTABLE" in out
    assert "  kubeconfig: [secret]" in out


def test_plan_json_has_every_resource_with_its_parent_and_inputs(capsys):
    assert main(["plan", "production", "--json", "--set", "cluster.maxNodes=8"]) == 0
    document = json.loads(capsys.readouterr().out)
    by_name = {(r["type"], r["name"]): r for r in document["resources"]}
    nodes = by_name[("eks:index:ManagedNodeGroup", "cluster-nodes")]
    assert nodes["inputs"]["scalingConfig"]["maxSize"] == 8
    assert nodes["parent"] == by_name[("carepath:cluster:Cluster", "cluster")]["urn"]
    assert document["outputs"]["clusterName"] == "carepath-production"


def test_diff_prints_what_an_override_changes(capsys):
    assert main(["diff", "staging", "--set", "cluster.desiredNodes=4"]) == 0
    out = capsys.readouterr().out
    assert "~ update   cluster-nodes  [eks:index:ManagedNodeGroup]" in out
    assert "scalingConfig.desiredSize: 3 → 4" in out
    assert out.rstrip().endswith("Summary: 0 to create, 1 to update, 0 to replace, 0 to delete, 58 unchanged")


def test_bad_config_exits_2_listing_every_problem(capsys):
    assert main(["plan", "staging", "--set", "rollout.strategy=canry", "--set", "chatApi.replica=3"]) == 2
    err = capsys.readouterr().err
    assert "carepath:rollout.strategy: 'canry' is not one of rolling, canary, blue-green" in err
    assert "carepath:chatApi.replica: unknown key; did you mean 'replicas'?" in err


def test_a_pull_request_changing_only_the_canary_weight_names_exactly_one_resource(tmp_path, capsys):
    import yaml

    from offline.harness import stack_file

    document = yaml.safe_load(stack_file("staging").read_text())
    canary = document["config"]["carepath:rollout"]["canary"]
    canary.update(tag="v2.0.0", weight=10, replicas=1)
    base = tmp_path / "base.yaml"  # the base branch's stack file, as the workflow extracts it
    base.write_text(yaml.safe_dump(document))
    # the head: this checkout's stack file with the pull request's one change in config
    assert main(["diff", "staging", "--base-config", str(base), "--json", "--set", "rollout.canary.tag=v2.0.0", "--set", "rollout.canary.weight=25", "--set", "rollout.canary.replicas=1"]) == 0
    import json

    changes = json.loads(capsys.readouterr().out)["changes"]
    assert [(c["action"], c["type"], c["name"]) for c in changes] == [("update", "kubernetes:networking.istio.io/v1:VirtualService", "chat-api")]

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
    assert "spec.template.spec.containers[chat-api].image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/carepath-chat-api:v1.4.0 → " in out
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


def test_an_index_in_a_key_reaches_the_list_it_names(capsys):
    # the README's own receiver key: a list item, not an unknown key `receivers[0]`
    assert main(["plan", "production", "--set", "monitoring.receivers[0].name=oncall"]) == 2
    err = capsys.readouterr().err
    assert "carepath:monitoring.receivers[0].kind is required" in err and "unknown key" not in err


def test_make_set_keeps_a_list_with_spaces_whole(capsys):
    assert main(["plan", "staging", "--set-words", "services.chat-api.rollout.canary.steps=[5, 50, 100] services.chat-api.tag=v1.4.0"]) == 0
    assert main(["plan", "staging", "--set-words", "services.chat-api.rollout.canary.steps=[5, 50, 90]"]) == 2
    assert "carepath:services.chat-api.rollout.canary.steps" in capsys.readouterr().err


def test_a_number_with_a_leading_zero_stays_a_string_as_in_pulumi(capsys):
    assert main(["plan", "demo", "--json", "--set", "services.chat-api.tag=010"]) == 0
    assert "carepath-chat-api:010" in capsys.readouterr().out


def test_values_with_slashes_and_equals_signs_reach_the_settings(capsys):
    # `[/]` is a list of one plain item, `v1=2` the value after the first `=`: both reach the settings, which name them
    assert main(["plan", "demo", "--set", "services.chat-api.rollout.canary.mirror.paths=[/]", "--set", "services.chat-api.tag=v1=2"]) == 2
    err = capsys.readouterr().err
    assert "carepath:services.chat-api.rollout.canary.mirror.paths[0]: '/' matches every path" in err
    assert "carepath:services.chat-api.tag: 'v1=2' is not a valid image tag" in err


REFUSED = [  # option, text, what the one line says
    ("--set", "services.chat-api.tag.x=1", "services.chat-api.tag.x: carepath:services.chat-api.tag is a string, not a mapping: it has no key 'x'"),
    ("--set", "services.chat-api.tag[0]=1", "services.chat-api.tag[0]: carepath:services.chat-api.tag is a string, not a list: it has no index [0]"),
    ("--set", "services[0]=1", "services[0]: carepath:services is a mapping, not a list: it has no index [0]"),
    ("--set", "services.chat-api.rollout.canary.mirror.paths[1]=/a", "[1] is past the end of carepath:services.chat-api.rollout.canary.mirror.paths"),
    ("--set", "services.chat-api.replicas[-1]=1", "services.chat-api.replicas[-1]: [-1] is a negative index; lists count from [0]"),
    ("--set", "services.chat-api[0=1", "services.chat-api[0: an unbalanced '[' or an index that is not a number"),
    ("--set", "services.chat-api.tag", "services.chat-api.tag: expected key=value"),
    ("--set", "services.x={bad", "services.x: {bad is neither JSON"),
    ("--unset", "services..tag", "services..tag: an empty name at character 10"),
    ("--set-words", "services.chat-api.rollout.canary.steps=[5, 50", "a bracket is left open"),
]


def test_a_key_pulumi_would_refuse_exits_2_with_one_line_naming_it(capsys):
    for option, text, problem in REFUSED:
        assert main(["plan", "demo", option, text]) == 2, text
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1 and captured.err.startswith("error: "), captured.err
        assert problem in captured.err, captured.err


def test_make_plan_json_prints_only_json_on_stdout_or_into_out(tmp_path):
    import os
    import subprocess

    from offline.harness import ROOT

    env = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "SET", "UNSET", "OUT")}
    run = subprocess.run(["make", "plan-json", "STACK=demo", "SET=services.chat-api.rollout.canary.steps=[5, 50, 100]"], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert json.loads(run.stdout)["resources"]
    out = tmp_path / "plan.json"
    run = subprocess.run(["make", "plan-json", "STACK=demo", f"OUT={out}"], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert run.stdout == "" and json.loads(out.read_text())["resources"]


STRICT_REFUSALS = [
    ("config:\n  carepath:services:\n    chat-api:\n      tag: v1\n     replicas: 2\n",
     "Pulumi.demo.yaml:5:6: expected <block end>, but found '<block mapping start>' (while parsing a block mapping at line 3)"),
    ("config:\n  carepath:services:\n    chat-api:\n      tag: v1.4.0\n      tag: v1.5.0\n",
     "Pulumi.demo.yaml:5:7: duplicated key carepath:services.chat-api.tag (first at line 4)"),
    ("config:\n  carepath:services:\n    chat-api:\n      replicas: 010\n",
     'Pulumi.demo.yaml:4:17: carepath:services.chat-api.replicas: 010 has a leading zero: Pulumi reads it as the octal number 8, YAML 1.2 as 10; '
     'write the number without it, or quote it ("010") for the text'),
    ("config:\n  carepath:services:\n    chat-api:\n      startupSeconds: 1:30\n",
     'Pulumi.demo.yaml:4:23: carepath:services.chat-api.startupSeconds: 1:30 reads as the text "1:30" to Pulumi but as 90 to YAML 1.1 readers; '
     'quote it ("1:30") for the text, or write 90'),
    ("config:\n  carepath:monitoring:\n    enabled: on\n",
     'Pulumi.demo.yaml:3:14: carepath:monitoring.enabled: on reads as the text "on" to Pulumi but as true to YAML 1.1 readers; '
     'quote it ("on") for the text, or write true'),
]


def test_a_stack_file_the_strict_reader_refuses_exits_2_with_one_line_and_no_plan(tmp_path, monkeypatch, capsys):
    from offline import harness

    monkeypatch.setattr(harness, "ROOT", tmp_path)  # the plan reads Pulumi.demo.yaml from here
    monkeypatch.chdir(tmp_path)
    for text, says in STRICT_REFUSALS:
        (tmp_path / "Pulumi.demo.yaml").write_text(text)
        for command in (["plan", "demo"], ["plan", "demo", "--json"], ["diff", "demo"]):
            assert main(command) == 2, command
            out, err = capsys.readouterr()
            assert (out, err.splitlines()) == ("", [says]), command
    (tmp_path / "Pulumi.demo.yaml").unlink()
    assert main(["plan", "demo"]) == 2
    assert capsys.readouterr().err.splitlines() == ["Pulumi.demo.yaml: no such stack file"]


def test_a_base_config_that_is_missing_or_refused_exits_2_naming_it_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["diff", "staging", "--base-config", "base.yaml"]) == 2
    assert capsys.readouterr().err.splitlines() == ["base.yaml: no such stack file"]
    (tmp_path / "base.yaml").write_text("config:\n  aws:region: us-east-1\n  aws:region: eu-west-1\n")
    assert main(["diff", "staging", "--base-config", "base.yaml", "--json"]) == 2
    out, err = capsys.readouterr()
    assert (out, err.splitlines()) == ("", ["base.yaml:3:3: duplicated key aws:region (first at line 2)"])


def test_a_refused_stack_file_is_one_line_from_the_process_too_never_a_traceback(tmp_path):
    import subprocess
    import sys

    from offline.harness import ROOT

    (tmp_path / "base.yaml").write_text("config:\n  carepath:services: [1, 2\n")
    run = subprocess.run([sys.executable, "-m", "offline", "diff", "demo", "--base-config", "base.yaml"], cwd=tmp_path,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert (run.returncode, run.stdout, run.stderr) == (2, "", "base.yaml:3:1: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence at line 2)\n")

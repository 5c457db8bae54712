import pytest

from core.settings import SettingsError
from offline.harness import ProgramFailed, apply_overrides, parse_value, run_program, runtime_config


@pytest.mark.parametrize(
    "text, value",
    [("25", 25), ("-3", -3), ("true", True), ("false", False), ("v2.0.0", "v2.0.0"), ("[5, 50, 100]", [5, 50, 100]), ("1.34", "1.34")],
)
def test_values_are_typed_as_pulumi_config_set_path_types_them(text, value):
    assert parse_value(text) == value


def test_overrides_set_nested_keys_and_unset_removes_them():
    base = {"carepath:rollout": {"strategy": "canary", "canary": {"weight": 0}}, "aws:region": "us-east-1"}
    result = apply_overrides(base, {"rollout.canary.weight": 25, "rollout.canary.tag": "v2.0.0", "aws:region": "eu-west-1"}, ["rollout.strategy"])
    assert result == {"carepath:rollout": {"canary": {"weight": 25, "tag": "v2.0.0"}}, "aws:region": "eu-west-1"}
    assert base["carepath:rollout"] == {"strategy": "canary", "canary": {"weight": 0}}, "the stack config is not mutated"


def test_runtime_config_is_strings_and_json_with_secure_values_masked():
    values, secret_keys = runtime_config(
        {"aws:region": "us-east-1", "carepath:chatApi": {"tag": "v1"}, "carepath:secrets": {"oncall": {"secure": "AAAB"}}}
    )
    assert values == {
        "aws:region": "us-east-1",
        "carepath:chatApi": '{"tag": "v1"}',
        "carepath:secrets": '{"oncall": "offline-placeholder"}',
    }
    assert secret_keys == ["carepath:secrets"]


def test_runs_are_isolated_and_repeatable(run_stack):
    from offline import harness

    first = harness.run_stack("demo")
    harness.run_stack("production")
    again = harness.run_stack("demo")
    assert [(r.urn, r.inputs) for r in first.resources] == [(r.urn, r.inputs) for r in again.resources]
    assert first.outputs == again.outputs


def test_a_failing_program_reports_what_it_registered():
    import pulumi

    def program():
        pulumi.ComponentResource("carepath:test:Partial", "partial")
        raise RuntimeError("boom")

    with pytest.raises(ProgramFailed) as caught:
        run_program("demo", {}, program)
    assert isinstance(caught.value.cause, RuntimeError)
    assert [r.type for r in caught.value.plan.managed] == ["carepath:test:Partial"]


def test_unknown_stack_is_a_clear_error():
    from offline import harness

    with pytest.raises(FileNotFoundError, match="no stack file Pulumi.qa.yaml; stacks here: demo, production, staging"):
        harness.run_stack("qa")


def test_bad_config_fails_with_the_settings_error(run_stack):
    with pytest.raises(ProgramFailed) as caught:
        run_stack("demo", {"rollout.strategy": "canry"})
    assert isinstance(caught.value.cause, SettingsError)

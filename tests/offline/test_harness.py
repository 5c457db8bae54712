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
    chat_api = {"tag": "v1.4.0", "rollout": {"strategy": "canary", "canary": {"weight": 0}}}
    base = {"carepath:services": {"chat-api": chat_api}, "aws:region": "us-east-1"}
    triage_api = {"tag": "v0.3.0", "rollout": {"strategy": "rolling"}}
    result = apply_overrides(
        base,
        {"services.chat-api.rollout.canary.weight": 25, "services.triage-api": triage_api, "aws:region": "eu-west-1"},
        ["services.chat-api.tag", "services.db-api.tag"],
    )
    assert result == {
        "carepath:services": {"chat-api": {"rollout": {"strategy": "canary", "canary": {"weight": 25}}}, "triage-api": triage_api},
        "aws:region": "eu-west-1",
    }
    assert base["carepath:services"]["chat-api"] == {"tag": "v1.4.0", "rollout": {"strategy": "canary", "canary": {"weight": 0}}}, "the stack config is not mutated"


def test_runtime_config_is_strings_and_json_with_secure_values_masked():
    values, secret_keys = runtime_config(
        {"aws:region": "us-east-1", "carepath:services": {"chat-api": {"tag": "v1"}}, "carepath:secrets": {"oncall": {"secure": "AAAB"}}}
    )
    assert values == {
        "aws:region": "us-east-1",
        "carepath:services": '{"chat-api": {"tag": "v1"}}',
        "carepath:secrets": '{"oncall": "offline-placeholder"}',
    }
    assert secret_keys == ["carepath:secrets"]


def test_a_stack_files_carepath_config_is_its_sections_without_namespace():
    from offline.harness import carepath_config, load_stack_config

    config = carepath_config("staging")
    assert set(config) == {key.removeprefix("carepath:") for key in load_stack_config("staging") if key.startswith("carepath:")}
    assert "aws:region" not in config and "region" not in config
    assert config["services"]["chat-api"]["rollout"]["strategy"] == "canary"


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


def test_bad_config_fails_with_the_settings_error_naming_the_full_key(run_stack):
    with pytest.raises(ProgramFailed) as caught:
        run_stack("demo", {"services.chat-api.rollout.strategy": "canry"})
    assert isinstance(caught.value.cause, SettingsError)
    assert "carepath:services.chat-api.rollout.strategy: 'canry'" in str(caught.value.cause)
    assert caught.value.plan.managed == [], "bad config fails before any resource"


def test_an_override_value_is_copied_so_later_overrides_never_edit_the_callers():
    triage_api = {"tag": "v0.3.0", "rollout": {"strategy": "canary", "canary": {"weight": 0}}}
    apply_overrides({}, {"services.triage-api": triage_api, "services.triage-api.rollout.canary.weight": 50})
    assert triage_api["rollout"]["canary"]["weight"] == 0


def test_a_misspelled_provider_key_fails_the_program_with_the_closest_key(run_stack):
    with pytest.raises(ProgramFailed) as caught:
        run_stack("staging", {"aws:regoin": "eu-west-1"})
    assert isinstance(caught.value.cause, SettingsError)
    assert "aws:regoin: unknown key of the aws provider; did you mean aws:region?" in caught.value.cause.problems
    assert caught.value.plan.managed == [], "bad config fails before any resource"


CANARY_ON_ROLLING = {"services.chat-api.rollout.canary": {"steps": [10, 100]}}
UNUSED_CANARY = (
    "carepath:services.chat-api.rollout.canary (steps): no effect on the rolling strategy, which reads none of it; "
    "it applies with carepath:services.chat-api.rollout.strategy: canary"
)


def test_the_programs_warnings_are_kept_with_the_plan(run_stack):
    assert run_stack("demo", CANARY_ON_ROLLING).warnings == (UNUSED_CANARY,)
    assert run_stack("demo").warnings == ()


def test_the_offline_cli_says_warnings_on_stderr_and_keeps_json_on_stdout(capsys):
    import json

    from offline.__main__ import main

    assert main(["plan", "demo", "--json", "--set", 'services.chat-api.rollout.canary={"steps": [10, 100]}']) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["resources"], "stdout is the plan, as JSON"
    assert err.splitlines() == [f"warning: {UNUSED_CANARY}"]


def test_each_input_records_the_resources_whose_outputs_it_takes(run_component):
    """What the diff's propagation reads: the SDK names a local component's child, never the
    component, both for a value taken from the component and for `depends_on` on it."""
    import pulumi
    import pulumi_aws as aws

    class Holder(pulumi.ComponentResource):
        def __init__(self) -> None:
            super().__init__("test:index:Holder", "holder")
            self.role = aws.iam.Role("inner", assume_role_policy="{}", opts=pulumi.ResourceOptions(parent=self))
            self.role_name = self.role.name.apply(lambda name: name)
            self.register_outputs({"roleName": self.role_name})

    def build() -> None:
        holder = Holder()
        aws.iam.RolePolicyAttachment("taking", role=holder.role_name, policy_arn="arn:aws:iam::aws:policy/ReadOnlyAccess")
        aws.iam.RolePolicyAttachment(
            "waiting", role="fixed", policy_arn="arn:aws:iam::aws:policy/ReadOnlyAccess", opts=pulumi.ResourceOptions(depends_on=[holder])
        )

    plan = run_component(build)
    inner = plan.one("aws:iam/role:Role", "inner").urn
    taking, waiting = (plan.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", name) for name in ("taking", "waiting"))
    assert dict(taking.dependencies) == {"role": (inner,)}
    assert dict(waiting.dependencies) == {} and waiting.options["dependsOn"] == [inner]


def test_a_stack_without_a_stack_file_is_a_stack_file_error_listing_the_stacks(tmp_path):
    from offline import harness
    from offline.stack_yaml import StackFileError

    with pytest.raises(StackFileError, match=r"Pulumi\.qa\.yaml: no such stack file \(stacks here: demo, production, staging\)$"):
        harness.run_stack("qa")
    with pytest.raises(StackFileError, match=r"Pulumi\.qa\.yaml: no such stack file$"):
        harness.load_stack_config("qa", tmp_path / "Pulumi.qa.yaml")


def test_the_plan_reads_the_stack_file_strictly(tmp_path):
    from offline import harness
    from offline.stack_yaml import StackFileError

    path = tmp_path / "Pulumi.demo.yaml"
    path.write_text(harness.stack_file("demo").read_text().replace("  aws:region: us-east-1\n", "  aws:region: us-east-1\n  aws:region: eu-west-1\n"))
    with pytest.raises(StackFileError) as caught:
        harness.run_stack("demo", stack_file_path=path)
    assert caught.value.problem == "duplicated key aws:region (first at line 3)" and caught.value.line == 4

"""The CLI as an operator meets it: stacks, refusals (exit 2, one clean line), help per
command, an invalid stack file, one line per success, and state that persists."""

from __future__ import annotations

import shutil

import pytest

from release.stackfile import StackFile
from tests.release.cli.conftest import ROOT, tracks


@pytest.mark.parametrize(
    ("args", "offline", "says"),
    [
        (("status", "nosuch"), True, "no stack 'nosuch': no Pulumi.nosuch.yaml in"),
        (("advance", "production"), True, "service chat-api releases blue-green: `advance` is for canary services"),
        (("switch", "staging"), True, "`switch` is for blue-green services"),
        (("promote", "staging"), True, "stack staging, service chat-api: no canary in flight to promote"),
        (("abort", "production"), True, "stack production, service chat-api: no release in flight to abort"),
        (("start", "staging"), True, "the following arguments are required: --tag"),
        (("status", "staging", "--reset"), False, "--reset starts an offline rehearsal over: use it with --offline"),
        (("start", "staging", "--service", "triage-api", "--tag", "v2.0.0"), True, "stack staging has no service 'triage-api' (its services: chat-api)"),
        (("status", "production", "--service", "triage-api"), True, "stack production has no service 'triage-api' (its services: chat-api)"),
        (("deploy", "staging", "--service", "chat-api"), True, "unrecognized arguments: --service chat-api"),
    ],
    ids=[
        "unknown stack", "advance blue-green", "switch canary", "promote nothing", "abort nothing", "start without tag", "reset online",
        "unknown service", "status of an unknown service", "deploy of a service",
    ],
)
def test_bad_input_or_a_command_the_stack_does_not_allow_exits_2_with_one_clean_line(project_at, args, offline, says):
    project = project_at("staging and production")
    before = {stack: project.stack_file(stack).config() for stack in ("staging", "production")}
    result = project.cli(*args, offline=offline)
    assert result.code == 2, str(result)
    assert "Traceback" not in result.err, str(result)
    lines = result.err.strip().splitlines()
    assert says in lines[-1], result.err
    if "required" not in says and "unrecognized" not in says:  # argparse's own errors come after its usage lines
        assert len(lines) == 1, result.err
    if args[1] == "nosuch":
        assert "(stacks: demo, " in lines[0] and "production" in lines[0] and "staging" in lines[0], lines[0]
    assert result.out == ""
    for stack, config in before.items():
        assert project.stack_file(stack).config() == config, "a refused command writes nothing"


def test_help_is_per_command(project):
    start = project.cli("start", "--help", offline=False)
    assert start.code == 0 and "--tag" in start.out and "--weight" not in start.out, start.out
    advance = project.cli("advance", "--help", offline=False)
    assert advance.code == 0 and "--weight" in advance.out and "--tag" not in advance.out, advance.out
    assert "--service SERVICE" in start.out and "(default:chat-api)" in "".join(start.out.split()), start.out
    status = project.cli("status", "--help", offline=False)
    assert "default: every service of the stack" in " ".join(status.out.split()), status.out
    assert "--service" not in project.cli("deploy", "--help", offline=False).out, "a deploy is the whole stack's"


def test_a_copied_stack_file_is_a_stack(project):
    shutil.copyfile(ROOT / "Pulumi.staging.yaml", project.path / "Pulumi.qa.yaml")
    status = project.status("qa")
    assert status.code == 0, str(status)
    assert status.first_line == "stack qa, service chat-api: steady: stable v1.4.0 100 %", status.out


def test_an_invalid_stack_file_is_listed_and_status_still_shows_what_is_applied(project_at):
    project = project_at("staging and production")
    project.stack_file("staging").write({"services.chat-api.rollout.canary.weight": 250})

    status = project.status("staging")
    assert status.code == 2, str(status)
    assert "carepath:services.chat-api.rollout.canary.weight" in status.err and "Traceback" not in status.err, str(status)
    assert "THE STACK FILE DOES NOT VALIDATE" in status.first_line, status.out
    assert "  applied:    stable v1.4.0 100 %" in status.out.splitlines(), status.out

    advance = project.cli("advance", "staging")
    assert advance.code == 2, str(advance)
    assert "carepath:services.chat-api.rollout.canary.weight" in advance.err and "Traceback" not in advance.err, str(advance)
    assert project.audit("staging") == []


def test_each_command_persists_its_state_says_one_line_and_reset_starts_over(project):
    steps = [
        (("start", "staging", "--tag", "v2.0.0"), "staging/chat-api: canary v2.0.0 at 1 %", {"stable": ("v1.4.0", 99), "canary": ("v2.0.0", 1)}),
        (("advance", "staging"), "staging/chat-api: canary v2.0.0 to 5 %", {"stable": ("v1.4.0", 95), "canary": ("v2.0.0", 5)}),
        (("abort", "staging"), "staging/chat-api: all traffic back on stable v1.4.0; canary v2.0.0 removed", {"stable": ("v1.4.0", 100)}),
        (("advance", "staging", "--reset"), None, None),
        (("start", "staging", "--tag", "v3.0.0", "--reset"), "staging/chat-api: canary v3.0.0 at 1 %", {"stable": ("v1.4.0", 99), "canary": ("v3.0.0", 1)}),
    ]
    for args, line, traffic in steps:
        result = project.cli(*args)
        if line is None:  # after a reset, nothing is in flight to advance
            assert result.code == 2 and "no canary in flight to advance" in result.err, str(result)
            continue
        assert result.code == 0, str(result)
        assert result.out.splitlines() == [line], result.out
        state = project.state("staging")
        assert state.in_step and tracks(state.applied) == traffic
    state = project.state("staging")
    assert len(state.runs()) == 1, "the reset started the audit log over"
    assert len(project.git("staging", "log", "--format=%H").split()) == 2, "and the ledger: its first commit, and the start"


def test_keys_with_no_effect_are_warned_of_on_stderr_and_the_command_goes_ahead(project):
    StackFile(project.path / "Pulumi.demo.yaml").write({"services.chat-api.rollout.canary": {"steps": [10, 100]}})
    status = project.status("demo")
    assert status.code == 0, str(status)
    assert status.err.splitlines() == [
        "warning: carepath:services.chat-api.rollout.canary (steps): no effect on the rolling strategy, which reads none of it; "
        "it applies with carepath:services.chat-api.rollout.strategy: canary"
    ], str(status)
    assert "warning" not in status.out


def test_a_stack_file_the_strict_reader_refuses_exits_2_with_one_line_naming_it(project):
    """The project's file is read before a workspace copies it (nothing is created); a
    workspace's copy, which the driver reads at every command, is read as strictly."""
    path = project.path / "Pulumi.staging.yaml"
    original = path.read_text()
    path.write_text(original.replace("      replicas: 2\n", "      replicas: 2\n      replicas: 3\n"))
    line = path.read_text().splitlines().index("      replicas: 3") + 1
    for args in (("status", "staging"), ("start", "staging", "--tag", "v2.0.0")):
        result = project.cli(*args)
        assert (result.code, result.out) == (2, ""), str(result)
        assert result.err.splitlines() == [f"Pulumi.staging.yaml:{line}:7: duplicated key carepath:services.chat-api.replicas (first at line {line - 1})"], str(result)
    assert not project.workspace("staging").exists(), "a refused file is never copied"

    path.write_text(original)
    assert project.cli("start", "staging", "--tag", "v2.0.0").code == 0
    copy = project.workspace("staging") / "Pulumi.staging.yaml"
    text = copy.read_text()
    assert text.count("value: canary\n") == 1, text
    copy.write_text(text.replace("value: canary\n", "value: on\n"))
    line, column = next((number, len(row) - 1) for number, row in enumerate(copy.read_text().splitlines(), 1) if row.endswith("value: on"))
    advance = project.cli("advance", "staging")
    assert (advance.code, advance.out) == (2, ""), str(advance)
    assert advance.err.splitlines() == [
        f'.carepath/offline/staging/Pulumi.staging.yaml:{line}:{column}: carepath:services.chat-api.rollout.canary.header.value: on reads as the text "on" '
        'to Pulumi but as true to YAML 1.1 readers; quote it ("on") for the text, or write true'
    ], str(advance)

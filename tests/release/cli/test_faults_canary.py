"""Faults at each action of a canary release (staging), through the CLI."""

from __future__ import annotations

import pytest

from tests.release.cli.conftest import FAULTS, FaultRow, fault_at_action_then_next_command, tracks

STABLE = {"stable": ("v1.4.0", 100)}
AT_1 = {"stable": ("v1.4.0", 99), "canary": ("v2.0.0", 1)}

ROWS = [
    FaultRow(
        "start", None, "staging", ("start", "staging", "--tag", "v2.0.0"), "start",
        decided=AT_1, serving=STABLE, unjudged=False,
        next=("advance", "staging"), next_action="reapply",
        after=AT_1, says="nothing else done",
    ),
    FaultRow(
        "advance", "staging at 1 %", "staging", ("advance", "staging"), "advance",
        decided={"stable": ("v1.4.0", 95), "canary": ("v2.0.0", 5)}, serving=AT_1, unjudged=True,
        next=("advance", "staging"), next_action="reapply",
        after={"stable": ("v1.4.0", 95), "canary": ("v2.0.0", 5)}, says="nothing else done",
    ),
    FaultRow(
        "promote", "staging at 1 %", "staging", ("promote", "staging"), "promote",
        decided={"stable": ("v2.0.0", 100)}, serving=AT_1, unjudged=True,
        next=("start", "staging", "--tag", "v3.0.0"), next_action="reapply",
        after={"stable": ("v2.0.0", 100)}, says="nothing else done",
    ),
    FaultRow(
        # The operator retries the abort: the stack file already holds it, so it is re-applied.
        "abort", "staging at 1 %", "staging", ("abort", "staging"), "abort",
        decided=STABLE, serving=AT_1, unjudged=True,
        next=("abort", "staging"), next_action="reapply",
        after=STABLE, says="stack file re-applied (it already holds the last decision)",
    ),
]


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_a_fault_at_a_canary_action_leaves_the_decision_in_the_stack_file_and_the_next_command_catches_up(project, project_at, row, fault):
    fault_at_action_then_next_command(project_at(row.checkpoint) if row.checkpoint else project, row, fault)


def test_sigterm_at_a_canary_advance_ends_it_as_ctrl_c_would(project_at):
    fault_at_action_then_next_command(project_at("staging at 1 %"), ROWS[1], "SIGTERM")


def test_run_stops_when_up_fails_at_a_weight_step_and_a_rerun_resumes_it(project, fake_prometheus):
    prometheus = fake_prometheus("healthy")  # every check passes: the canary advances
    result = project.cli("run", "fasterrors", "--tag", "v2.0.0", "--prometheus", prometheus.url, fault="up-fails-after:1")
    assert result.code == 1, str(result)
    assert result.out.strip().splitlines()[-1].startswith("v2.0.0 on fasterrors/chat-api: stopped (offline fault up-fails-after:1: update 2 failed"), str(result)

    state = project.state("fasterrors")
    assert tracks(state.wanted) == {"stable": ("v1.4.0", 95), "canary": ("v2.0.0", 5)}, "the step's decision is in the stack file"
    assert tracks(state.applied) == {"stable": ("v1.4.0", 99), "canary": ("v2.0.0", 1)}, "traffic stays where it safely was"
    run = state.runs()[-1]
    events = state.events(run)
    assert events[-3:] == [("advance", "started"), ("advance", "failed"), ("release", "ended")], events
    assert state.audit[-1]["outcome"] == "stopped"
    assert all(entry.get("run") == run for entry in state.audit)
    assert state.lease is None

    status = project.status("fasterrors")
    assert "NOT IN STEP" in status.first_line and "NO DRIVER IS JUDGING IT" in status.first_line, status.out

    resumed = project.cli("run", "fasterrors", "--tag", "v2.0.0", "--prometheus", prometheus.url)
    assert resumed.code == 0, str(resumed)
    assert "re-applying the stack file" in resumed.out.splitlines()[0]
    assert "resuming v2.0.0 at 5 %" in resumed.out
    assert resumed.out.strip().splitlines()[-1] == "v2.0.0 on fasterrors/chat-api: promoted"
    after = project.state("fasterrors")
    assert after.in_step and tracks(after.applied) == {"stable": ("v2.0.0", 100)}


def test_run_abort_on_failure_with_up_still_failing_leaves_status_saying_so_and_abort_finishes_it(project, fake_prometheus):
    prometheus = fake_prometheus("healthy")
    result = project.cli("run", "fasterrors", "--tag", "v2.0.0", "--prometheus", prometheus.url, "--abort-on-failure", fault="up-fails-after:1")
    assert result.code == 1, str(result)
    assert "v2.0.0 on fasterrors/chat-api: stopped" in result.out, str(result)
    assert "Traceback" not in result.err

    state = project.state("fasterrors")
    assert tracks(state.wanted) == STABLE, "the abort's write is in the stack file"
    assert "tag" not in state.service["rollout"]["canary"] and "inFlight" not in state.service["rollout"]
    assert tracks(state.applied) == {"stable": ("v1.4.0", 99), "canary": ("v2.0.0", 1)}, "no update succeeded since the start"
    events = state.events(state.runs()[-1])
    assert events[-5:] == [("advance", "started"), ("advance", "failed"), ("abort", "started"), ("abort", "failed"), ("release", "ended")], events

    status = project.status("fasterrors")
    assert "NOT IN STEP" in status.first_line and "NO DRIVER IS JUDGING IT" in status.first_line, status.out

    aborted = project.cli("abort", "fasterrors")
    assert aborted.code == 0, f"an abort after a failed abort must take the canary's 1 % away: {aborted}"
    after = project.state("fasterrors")
    assert after.in_step and tracks(after.applied) == STABLE
    status = project.status("fasterrors")
    assert status.first_line.startswith("stack fasterrors, service chat-api: steady"), status.out

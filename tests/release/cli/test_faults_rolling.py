"""Faults at each action of a rolling release (demo: v1.4.0), through the CLI."""

from __future__ import annotations

import pytest

from tests.release.cli.conftest import FAULTS, FaultRow, fault_at_action_then_next_command

OLD = {"stable": ("v1.4.0", 100)}
NEW = {"stable": ("v2.0.0", 100)}

ROWS = [
    FaultRow(
        # Rolling has no command that completes a started release but `run`: the operator aborts.
        "start", None, "demo", ("start", "demo", "--tag", "v2.0.0"), "start",
        decided=NEW, serving=OLD, unjudged=False,
        next=("abort", "demo"), next_action="abort",
        after=OLD, says="rolling back to v1.4.0", reapplies=False,
    ),
    FaultRow(
        # The operator retries the abort: the stack file already holds it, so it is re-applied.
        "abort", "demo started", "demo", ("abort", "demo"), "abort",
        decided=OLD, serving=NEW, unjudged=True,
        next=("abort", "demo"), next_action="reapply",
        after=OLD, says="stack file re-applied (it already holds the last decision)",
    ),
    FaultRow(
        # After a failed abort, `start` of a new release finishes the abort and stops there.
        "abort-then-start", "demo started", "demo", ("abort", "demo"), "abort",
        decided=OLD, serving=NEW, unjudged=True,
        next=("start", "demo", "--tag", "v3.0.0"), next_action="reapply",
        after=OLD, says="nothing else done",
    ),
]


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("row", ROWS[:2], ids=lambda row: row.id)
def test_a_fault_at_a_rolling_action_leaves_the_decision_in_the_stack_file_and_the_next_command_catches_up(project, project_at, row, fault):
    fault_at_action_then_next_command(project_at(row.checkpoint) if row.checkpoint else project, row, fault)


def test_after_a_failed_rolling_abort_a_new_start_finishes_the_abort_first(project_at):
    fault_at_action_then_next_command(project_at("demo started"), ROWS[2], "up-fails")


def test_sigterm_at_a_rolling_start_ends_it_as_ctrl_c_would(project):
    fault_at_action_then_next_command(project, ROWS[0], "SIGTERM")

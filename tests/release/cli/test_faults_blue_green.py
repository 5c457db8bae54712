"""Faults at each action of a blue-green release (production: blue serves v1.4.0), through the CLI."""

from __future__ import annotations

import pytest

from tests.release.cli.conftest import FAULTS, FaultRow, fault_at_action_then_next_command

BLUE = {"blue": ("v1.4.0", 100), "green": ("v1.4.0", 0)}
GREEN_IDLE = {"blue": ("v1.4.0", 100), "green": ("v2.0.0", 0)}
GREEN_SERVES = {"blue": ("v1.4.0", 0), "green": ("v2.0.0", 100)}

ROWS = [
    FaultRow(
        "start", None, "production", ("start", "production", "--tag", "v2.0.0"), "start",
        decided=GREEN_IDLE, serving=BLUE, unjudged=False,
        next=("switch", "production"), next_action="reapply",
        after=GREEN_IDLE, says="nothing else done",
    ),
    FaultRow(
        # A retried `switch` finishes the failed one and does nothing more: two switches at once
        # would send production back to blue.
        "switch", "production started", "production", ("switch", "production"), "switch",
        decided=GREEN_SERVES, serving=GREEN_IDLE, unjudged=False,
        next=("switch", "production"), next_action="reapply",
        after=GREEN_SERVES, says="nothing else done",
    ),
    FaultRow(
        # The operator retries the abort: the stack file already holds it, so it is re-applied.
        "abort", "production switched", "production", ("abort", "production"), "abort",
        decided=GREEN_IDLE, serving=GREEN_SERVES, unjudged=True,
        next=("abort", "production"), next_action="reapply",
        after=GREEN_IDLE, says="stack file re-applied (it already holds the last decision)",
    ),
]


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_a_fault_at_a_blue_green_action_leaves_the_decision_in_the_stack_file_and_the_next_command_catches_up(project, project_at, row, fault):
    fault_at_action_then_next_command(project_at(row.checkpoint) if row.checkpoint else project, row, fault)


def test_sigterm_at_a_blue_green_switch_ends_it_as_ctrl_c_would(project_at):
    fault_at_action_then_next_command(project_at("production started"), ROWS[1], "SIGTERM")

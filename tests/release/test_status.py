"""`status` of a service: its first line says when the stack file and the cluster disagree, and
when a candidate takes patient traffic with no driver judging it."""

from __future__ import annotations

from typing import Optional

import pytest

from core import actions
from core.release import ReleaseState, release_state
from core.stack_config import carepath_sections
from offline.harness import load_stack_config
from release.lease import Lease
from release.stackfile import apply_changes
from release.status import candidate_share, headline, report
from tests.conftest import settings_from

NOW = 1_790_000_000.0
RELEASE_ID = "a1b2c3d4e5f6"
LEASE = Lease(stack="staging", service="chat-api", run="7e1f0a2b3c4d", holder="alice", host="release-runner-7", pid=4242, command="run v2.0.0", started=NOW - 120, expires=NOW + 180)


def state(stack: str, *steps: str, first_weight: int = 25) -> ReleaseState:
    """chat-api's release state in the repository's stack file after `steps` (start, switch, ...)."""
    config = carepath_sections(load_stack_config(stack))
    for step in steps:
        settings = settings_from(config, stack)
        if step == "start":
            action = actions.start(settings, "chat-api", "v2.0.0", RELEASE_ID, "2026-11-28T10:02:11Z", first_weight)
        else:
            action = getattr(actions, step)(settings, "chat-api")
        config = apply_changes(config, action.changes)
    return release_state(settings_from(config, stack), "chat-api")


STEADY = state("staging")
CANARY = state("staging", "start")


def first_line(wanted: Optional[ReleaseState], applied: Optional[ReleaseState], lease: Optional[Lease] = None, stack: str = "staging") -> str:
    return headline(stack, "chat-api", wanted, applied, lease, NOW)


def test_in_step_and_steady():
    lines = report("staging", "chat-api", STEADY, STEADY, None, NOW)
    assert lines == ["stack staging, service chat-api: steady: stable v1.4.0 100 %", "  stack file: stable v1.4.0 100 %", "  applied:    stable v1.4.0 100 %"]


def test_a_stack_file_ahead_of_the_cluster_is_not_in_step():
    lines = report("staging", "chat-api", CANARY, STEADY, None, NOW)
    assert lines[0].startswith("stack staging, service chat-api: NOT IN STEP")
    assert "NO DRIVER" not in lines[0], "the cluster serves no candidate yet"
    assert lines[1] == f"  stack file: canary v2.0.0 25 % +testers, stable v1.4.0 75 %; release v2.0.0 (id {RELEASE_ID}) in flight"
    assert "    differs: canary: absent -> v2.0.0 x1 25 % in carepath-staging" in lines
    assert f"    differs: in flight: none -> id={RELEASE_ID} previous=v1.4.0 tag=v2.0.0" in lines


def test_a_cluster_ahead_of_the_stack_file_with_an_unjudged_canary_says_both():
    line = first_line(STEADY, CANARY)
    assert "NOT IN STEP" in line and "v2.0.0 takes 25 % of patient traffic and NO DRIVER IS JUDGING IT" in line


def test_a_canary_taking_traffic_with_no_lease_is_unjudged():
    line = first_line(CANARY, CANARY)
    assert "NO DRIVER IS JUDGING IT" in line and "v2.0.0" in line and "25 %" in line
    assert "`run staging --service chat-api --tag v2.0.0` resumes the release, `abort staging --service chat-api` ends it" in line


def test_a_canary_taking_traffic_with_a_live_lease_names_its_holder():
    lines = report("staging", "chat-api", CANARY, CANARY, LEASE, NOW)
    assert "release v2.0.0 in flight" in lines[0] and "held by alice on release-runner-7" in lines[0]
    assert "NO DRIVER" not in lines[0]
    assert lines[-1] == f"  lease:      {LEASE.describe(NOW)}"


def test_a_shadow_canary_is_in_flight_without_patient_traffic():
    shadow = state("staging", "start", first_weight=0)
    assert candidate_share(shadow) == ("v2.0.0", 0)
    line = first_line(shadow, shadow)
    assert "no patient traffic on it yet" in line and "NO DRIVER" not in line


def test_a_blue_green_candidate_takes_traffic_only_after_the_switch():
    before, after = state("production", "start"), state("production", "start", "switch")
    assert candidate_share(before) == ("v2.0.0", 0) and candidate_share(after) == ("v2.0.0", 100)
    assert "NO DRIVER" not in first_line(before, before, stack="production")
    assert "v2.0.0 takes 100 % of patient traffic and NO DRIVER IS JUDGING IT" in first_line(after, after, stack="production")


def test_a_rolling_update_in_flight_serves_all_traffic():
    rolling = state("demo", "start")
    assert "v2.0.0 takes 100 % of patient traffic and NO DRIVER IS JUDGING IT" in first_line(rolling, rolling, stack="demo")


def test_an_invalid_stack_file_is_said_first_with_what_the_cluster_has():
    lines = report("staging", "chat-api", None, STEADY, None, NOW)
    assert "THE STACK FILE DOES NOT VALIDATE" in lines[0] and STEADY.describe() in lines[0]
    assert lines[1:] == ["  stack file: does not validate", "  applied:    stable v1.4.0 100 %"]


def test_an_invalid_stack_file_with_an_unjudged_canary_says_both():
    line = first_line(None, CANARY)
    assert "THE STACK FILE DOES NOT VALIDATE" in line and "v2.0.0 takes 25 % of patient traffic and NO DRIVER IS JUDGING IT" in line
    assert "NO DRIVER" not in first_line(None, CANARY, LEASE)


def test_no_applied_state_is_said_first():
    lines = report("staging", "chat-api", STEADY, None, None, NOW)
    assert lines[0].startswith("stack staging, service chat-api: NO APPLIED STATE RECORDED") and lines[0].endswith("the stack file says stable v1.4.0 100 %")
    assert lines[2] == "  applied:    nothing recorded"


def test_neither_a_valid_stack_file_nor_an_applied_state():
    lines = report("staging", "chat-api", None, None, None, NOW)
    assert "THE STACK FILE DOES NOT VALIDATE" in lines[0] and "no recorded state" in lines[0]
    assert lines[1:] == ["  stack file: does not validate", "  applied:    nothing recorded"]


@pytest.mark.parametrize("wanted, applied", [(STEADY, STEADY), (CANARY, STEADY), (STEADY, CANARY), (CANARY, CANARY), (None, CANARY), (CANARY, None)])
def test_the_headline_is_the_first_line_of_the_report(wanted, applied):
    for lease in (None, LEASE):
        assert report("staging", "chat-api", wanted, applied, lease, NOW)[0] == headline("staging", "chat-api", wanted, applied, lease, NOW)

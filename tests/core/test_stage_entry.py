"""The entry rule of a promotion stage (`core.stage_entry`): the order of its gates, what an
override lifts, and what nothing lifts."""

from __future__ import annotations

import datetime

from hypothesis import given
from hypothesis import strategies as st

from core.settings.service import ApprovalSettings, FreezeSettings
from core.stage_entry import OVERRIDABLE, PreviousStage, entry

NOW = datetime.datetime(2026, 11, 28, 12, 0, tzinfo=datetime.timezone.utc)
OPEN = ApprovalSettings()
NEEDED = ApprovalSettings(required=True)
FROZEN = (FreezeSettings(name="year-end", start="2026-11-28 00:00", end="2026-11-29 00:00", time_zone="UTC"),)
THAWED = (FreezeSettings(name="year-end", start="2026-12-23 00:00", end="2027-01-04 09:00", time_zone="UTC"),)


def soaked(**changes: object) -> PreviousStage:
    fields = {"stack": "staging", "outcome": "promoted", "promoted_at": NOW - datetime.timedelta(hours=2), "watched": "healthy", "soak_seconds": 3600, **changes}
    return PreviousStage(**fields)  # type: ignore[arg-type]


def test_a_first_stage_with_no_gates_is_entered():
    assert entry("v2", None, (), OPEN, (), "tester", NOW).verdict == "enter"


def test_the_stage_before_must_have_promoted_the_tag():
    for outcome in (None, "rolled back", "switched back", "stopped"):
        decided = entry("v2", soaked(outcome=outcome, promoted_at=None), (), OPEN, (), "tester", NOW)
        assert (decided.verdict, decided.gate) == ("stop", "previous-stage"), outcome
    assert entry("v2", soaked(outcome="switched"), (), OPEN, (), "tester", NOW).verdict == "enter"


def test_a_soak_not_over_waits_until_it_ends_and_a_failed_watch_stops():
    young = soaked(promoted_at=NOW - datetime.timedelta(minutes=20))
    decided = entry("v2", young, (), OPEN, (), "tester", NOW)
    assert (decided.verdict, decided.gate, decided.until) == ("wait", "soak", NOW + datetime.timedelta(minutes=40))
    still_watched = entry("v2", soaked(watched=None), (), OPEN, (), "tester", NOW)
    assert (still_watched.verdict, still_watched.gate) == ("wait", "soak")
    for outcome in ("rolled back", "inconclusive", "superseded"):
        assert entry("v2", soaked(watched=outcome), (), OPEN, (), "tester", NOW).verdict == "stop"


def test_a_freeze_waits_until_it_thaws_and_an_override_lifts_it():
    decided = entry("v2", soaked(), FROZEN, OPEN, (), "tester", NOW)
    assert (decided.verdict, decided.gate, decided.until) == ("wait", "freeze", datetime.datetime(2026, 11, 29, tzinfo=datetime.timezone.utc))
    assert "year-end" in decided.reason
    assert entry("v2", soaked(), THAWED, OPEN, (), "tester", NOW).verdict == "enter"
    lifted = entry("v2", soaked(), FROZEN, OPEN, (), "tester", NOW, frozenset({"freeze"}))
    assert (lifted.verdict, lifted.overridden) == ("enter", ("freeze",))


def test_an_approval_counts_only_from_someone_else_and_a_listed_approver():
    assert entry("v2", None, (), NEEDED, (), "tester", NOW).gate == "approval"
    assert entry("v2", None, (), NEEDED, ("tester",), "tester", NOW).verdict == "wait", "four eyes"
    assert entry("v2", None, (), NEEDED, ("reviewer",), "tester", NOW).verdict == "enter"
    listed = ApprovalSettings(required=True, approvers=("alice",))
    assert entry("v2", None, (), listed, ("reviewer",), "tester", NOW).verdict == "wait"
    assert entry("v2", None, (), listed, ("alice",), "tester", NOW).verdict == "enter"
    assert entry("v2", None, (), listed, ("alice",), "alice", NOW).verdict == "wait", "a listed approver does not approve their own promotion"


@given(
    outcome=st.sampled_from([None, "promoted", "switched", "rolled back", "stopped"]),
    watched=st.sampled_from([None, "healthy", "unwatched", "skipped", "rolled back", "inconclusive"]),
    age=st.integers(0, 10_000),
    frozen=st.booleans(),
    approvals=st.lists(st.sampled_from(["tester", "reviewer", "alice"]), max_size=3),
    overrides=st.sets(st.sampled_from(OVERRIDABLE)),
)
def test_no_override_ever_lifts_an_approval_and_every_closed_gate_is_named(outcome, watched, age, frozen, approvals, overrides):
    previous = soaked(outcome=outcome, watched=watched, promoted_at=NOW - datetime.timedelta(seconds=age) if outcome else None)
    decided = entry("v2", previous, FROZEN if frozen else (), NEEDED, approvals, "tester", NOW, frozenset(overrides))
    if decided.verdict == "enter":
        assert any(a != "tester" for a in approvals), "entered without someone else's approval"
        assert not frozen or "freeze" in decided.overridden
        assert set(decided.overridden) <= overrides
    else:
        assert decided.gate is not None and decided.gate not in overrides and decided.reason

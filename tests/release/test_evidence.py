"""The promotion's evidence: the fold of a stage's events into its record, what `history`
prints, and the store on real git (a workspace without a remote; a bare `origin` and two clones)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from release.evidence import EvidenceError, EvidenceStore, history_lines, stage_record
from release.ledger import GitLedger
from tests.release.conftest import git

UTC = datetime.timezone.utc
EVIDENCE = "evidence/staging/chat-api.jsonl"
DEFAULTS: dict[str, dict[str, Any]] = {
    "requested": {"gate": "approval"},
    "approved": {"by": "bob", "reason": "change 42 signed off"},
    "entered": {"digest": "sha256:aaa", "previous_stage": "demo", "overrides": []},
    "verified": {"passed": True, "exit_code": 0, "seconds": 12.0, "url": "http://chat-api-canary", "header": "x-carepath-tester: 1", "output": "3 passed"},
    "released": {
        "outcome": "promoted", "message": "every critical gate accepts the candidate", "release": "rel-1", "strategy": "canary",
        "previous": "v1.9.0", "started": "2026-11-28T16:35:00Z", "report": "release-staging-v2.0.0.html",
    },
    "watch-started": {"until": "2026-11-28T16:50:00Z", "previous": "v1.9.0"},
    "watched": {"outcome": "healthy", "reasons": [], "seconds": 20.0},
    "stopped": {"reason": "frozen (year-end freeze until 2027-01-02)", "gate": "freeze"},
}


def event(kind: str, time: str, tag: str = "v2.0.0", stack: str = "staging", operator: str = "alice", **fields: Any) -> dict[str, Any]:
    """An event as the store writes it, at 2026-11-28T`time`Z."""
    return {
        "time": f"2026-11-28T{time}Z", "stack": stack, "service": "chat-api", "tag": tag, "event": kind,
        "operator": operator, "run": "run-1", **DEFAULTS[kind], **fields,
    }


def good_attempt(tag: str = "v2.0.0", stack: str = "staging", start: int = 30) -> list[dict[str, Any]]:
    return [
        event("requested", f"16:{start:02d}:00", tag, stack),
        event("approved", f"16:{start + 1:02d}:00", tag, stack, operator="bob"),
        event("entered", f"16:{start + 2:02d}:00", tag, stack, overrides=[{"gate": "freeze", "reason": "hotfix for CVE-2026-1"}]),
        event("verified", f"16:{start + 3:02d}:00", tag, stack),
        event("released", f"16:{start + 10:02d}:12", tag, stack, report=f"release-{stack}-{tag}.html"),
        event("watch-started", f"16:{start + 10:02d}:13", tag, stack),
        event("watched", f"16:{start + 10:02d}:33", tag, stack),
    ]


# --- the fold ------------------------------------------------------------------------------


def test_every_event_kind_lands_in_the_record() -> None:
    record = stage_record(good_attempt(), "staging", "v2.0.0")
    assert record is not None
    assert (record.stack, record.service, record.tag, record.digest) == ("staging", "chat-api", "v2.0.0", "sha256:aaa")
    assert record.requested == "2026-11-28T16:30:00Z" and record.entered == "2026-11-28T16:32:00Z"
    assert [(a.by, a.time, a.reason) for a in record.approvals] == [("bob", "2026-11-28T16:31:00Z", "change 42 signed off")]
    assert [(o.gate, o.reason, o.by, o.time) for o in record.overrides] == [("freeze", "hotfix for CVE-2026-1", "alice", "2026-11-28T16:32:00Z")]
    assert record.verification is not None and record.verification.passed and record.verification.url == "http://chat-api-canary"
    assert record.released is not None
    assert (record.released.outcome, record.released.release, record.released.previous, record.released.report) == (
        "promoted", "rel-1", "v1.9.0", "release-staging-v2.0.0.html",
    )
    assert record.watch_until == "2026-11-28T16:50:00Z"
    assert record.watched is not None and (record.watched.outcome, record.watched.seconds) == ("healthy", 20.0)
    assert record.stopped is None and record.attempts == 1 and len(record.events) == 7
    assert record.promoted and record.through
    assert record.promoted_at == datetime.datetime(2026, 11, 28, 16, 40, 12, tzinfo=UTC)
    assert record.describe() == "promoted 16:40:12Z (canary), watched 20 s: healthy"


def test_a_rollback_by_the_watch_undoes_the_promotion() -> None:
    events = good_attempt()[:-1] + [
        event("watched", "16:42:01", outcome="rolled back", reasons=["analysis: triage-success 0.85 against 0.97"], seconds=108.0),
        event("stopped", "16:42:02", reason="rolled back by its watch", gate=None),
    ]
    record = stage_record(events, "staging", "v2.0.0")
    assert record is not None and record.released is not None and record.released.outcome == "promoted"
    assert not record.promoted and not record.through and record.promoted_at is None
    assert record.describe() == (
        "promoted 16:40:12Z (canary), rolled back 16:42:01Z by its watch after 1 min 48 s: analysis: triage-success 0.85 against 0.97; "
        "stopped 16:42:02Z: rolled back by its watch"
    )


def test_a_second_attempt_starts_a_new_record_and_keeps_the_approvals() -> None:
    first = good_attempt()[:-1] + [event("watched", "16:42:01", outcome="rolled back", reasons=["regression"], seconds=108.0)]
    second = [
        event("entered", "17:00:00", digest="sha256:bbb", overrides=[]),
        event("verified", "17:01:00"),
    ]
    record = stage_record(first + second, "staging", "v2.0.0")
    assert record is not None
    assert record.attempts == 2 and record.entered == "2026-11-28T17:00:00Z" and record.digest == "sha256:bbb"
    assert record.released is None and record.watched is None and record.watch_until is None and record.overrides == ()
    assert [a.by for a in record.approvals] == ["bob"] and record.requested == "2026-11-28T16:30:00Z"
    assert not record.promoted
    assert record.describe() == "entered 17:00:00Z, verified in 12 s"


def test_a_release_the_judge_rolled_back_is_not_promoted() -> None:
    events = good_attempt()[2:4] + [event("released", "16:42:01", outcome="rolled back", message="analysis: triage-success 0.85 against 0.97")]
    record = stage_record(events, "staging", "v2.0.0")
    assert record is not None and not record.promoted and not record.through
    assert record.describe() == "rolled back 16:42:01Z (canary): analysis: triage-success 0.85 against 0.97"


def test_waiting_approved_verification_failed_and_stopped_say_so() -> None:
    def described(*events: dict[str, Any]) -> str:
        record = stage_record(events, "staging", "v2.0.0")
        assert record is not None
        return record.describe()

    assert described(event("requested", "16:30:00")) == "waiting for an approval since 16:30:00Z"
    assert described(event("requested", "16:30:00"), event("approved", "16:31:00")) == "approved 16:31:00Z by bob, not entered"
    assert described(
        event("entered", "16:32:00"), event("verified", "16:33:00", passed=False, exit_code=1, seconds=65.0),
        event("stopped", "16:33:01", reason="the verification suite failed", gate="verification"),
    ) == "verification failed 16:33:00Z (exit 1 after 1 min 05 s); stopped 16:33:01Z: the verification suite failed"
    assert described(event("stopped", "16:30:00")) == "stopped 16:30:00Z: frozen (year-end freeze until 2027-01-02)"
    assert described(event("entered", "16:32:00"), event("released", "16:40:12"), event("watch-started", "16:40:13")) == (
        "promoted 16:40:12Z (canary), watching until 16:50:00Z"
    )


@pytest.mark.parametrize(
    ("outcome", "reason", "said"),
    [("skipped", "soak overridden: hotfix", "watch skipped: soak overridden: hotfix"), ("unwatched", "no previous version to compare with", "not watched: no previous version to compare with")],
)
def test_a_watch_skipped_or_with_nothing_to_compare_lets_the_tag_through(outcome: str, reason: str, said: str) -> None:
    events = [event("entered", "16:32:00"), event("released", "16:40:12"), event("watched", "16:40:13", outcome=outcome, reasons=[reason], seconds=0.0)]
    record = stage_record(events, "staging", "v2.0.0")
    assert record is not None and record.promoted and record.through
    assert record.describe() == f"promoted 16:40:12Z (canary), {said}"


def test_a_time_on_another_day_shows_its_date() -> None:
    events = [event("requested", "23:59:00"), {**event("approved", "00:00:00"), "time": "2026-11-29T00:01:00Z"}]
    record = stage_record(events, "staging", "v2.0.0")
    assert record is not None and record.describe() == "approved 2026-11-29 00:01:00Z by bob, not entered"


def test_other_tags_and_stacks_are_not_this_record() -> None:
    events = good_attempt(tag="v1.9.0") + good_attempt(stack="demo")
    assert stage_record(events, "staging", "v2.0.0") is None
    record = stage_record(events, "staging", "v1.9.0")
    assert record is not None and len(record.events) == 7


KINDS = st.sampled_from(["requested", "approved", "entered", "verified", "released", "watch-started", "watched", "stopped"])


@given(before=st.lists(KINDS, max_size=8), attempt=st.lists(KINDS.filter(lambda k: k != "entered"), max_size=6))
def test_only_the_last_attempt_counts_but_approvals_from_any(before: list[str], attempt: list[str]) -> None:
    """Whatever happened before a stage's last `entered`, its record is that attempt's, with every approval."""
    earlier = [event(kind, f"16:{i:02d}:00", run="run-0") for i, kind in enumerate(before)]
    latest = [event("entered", "17:00:00")] + [event(kind, f"17:{i + 1:02d}:00") for i, kind in enumerate(attempt)]
    alone, after = stage_record(latest, "staging", "v2.0.0"), stage_record(earlier + latest, "staging", "v2.0.0")
    assert alone is not None and after is not None
    same = ("digest", "entered", "overrides", "verification", "released", "watch_until", "watched", "stopped")
    assert all(getattr(alone, field) == getattr(after, field) for field in same)
    assert len(after.approvals) == before.count("approved") + attempt.count("approved")
    assert after.through <= after.promoted and after.promoted == alone.promoted


# --- history -------------------------------------------------------------------------------


def test_history_lists_tags_newest_first_with_a_line_per_stage() -> None:
    old = good_attempt(tag="v1.9.0", stack="demo", start=0) + good_attempt(tag="v1.9.0", start=10)
    new = good_attempt(stack="demo", start=20) + good_attempt(start=30)
    production = [
        event("requested", "16:45:00", stack="production"),
        event("stopped", "16:45:01", stack="production", reason="waiting for an approval: `approve production --tag v2.0.0`", gate="approval"),
    ]
    by_stage = {"demo": [e for e in old + new if e["stack"] == "demo"], "staging": [e for e in old + new if e["stack"] == "staging"], "production": production}
    assert history_lines("chat-api", ["demo", "staging", "production"], by_stage) == [
        "chat-api: demo -> staging -> production",
        "v2.0.0  sha256:aaa  (latest 2026-11-28 16:45:01Z)",
        "  demo        2026-11-28  promoted 16:30:12Z (canary), watched 20 s: healthy  [report release-demo-v2.0.0.html]",
        "      override freeze by alice 16:22:00Z: hotfix for CVE-2026-1",
        "      approved by bob 16:21:00Z: change 42 signed off",
        "  staging     2026-11-28  promoted 16:40:12Z (canary), watched 20 s: healthy  [report release-staging-v2.0.0.html]",
        "      override freeze by alice 16:32:00Z: hotfix for CVE-2026-1",
        "      approved by bob 16:31:00Z: change 42 signed off",
        "  production  2026-11-28  waiting for an approval since 16:45:00Z; stopped 16:45:01Z: waiting for an approval: `approve production --tag v2.0.0`",
        "v1.9.0  sha256:aaa  (latest 2026-11-28 16:20:33Z)",
        "  demo        2026-11-28  promoted 16:10:12Z (canary), watched 20 s: healthy  [report release-demo-v1.9.0.html]",
        "      override freeze by alice 16:02:00Z: hotfix for CVE-2026-1",
        "      approved by bob 16:01:00Z: change 42 signed off",
        "  staging     2026-11-28  promoted 16:20:12Z (canary), watched 20 s: healthy  [report release-staging-v1.9.0.html]",
        "      override freeze by alice 16:12:00Z: hotfix for CVE-2026-1",
        "      approved by bob 16:11:00Z: change 42 signed off",
        "  production  never entered",
    ]


def test_history_names_a_second_attempt_and_a_digest_that_differs() -> None:
    demo = [event("entered", "16:00:00", stack="demo"), event("released", "16:05:00", stack="demo")]
    staging = [
        event("entered", "16:10:00", digest="sha256:bbb"),
        event("released", "16:15:00", outcome="rolled back", message="regression", report=None),
        event("entered", "16:20:00", digest="sha256:bbb"),
    ]
    lines = history_lines("chat-api", ["demo", "staging"], {"demo": demo, "staging": staging})
    assert lines[1] == "v2.0.0  sha256:aaa  (latest 2026-11-28 16:20:00Z)"
    assert lines[3] == "  staging  2026-11-28  entered 16:20:00Z  [attempt 2, digest sha256:bbb DIFFERS]"


def test_history_marks_the_promoters_own_approval_as_not_counted() -> None:
    staging = [
        event("approved", "16:00:00", operator="alice", by="alice", reason="mine"),
        event("approved", "16:01:00", operator="bob", by="bob", reason="checked"),
        event("entered", "16:02:00", operator="alice"),
    ]
    lines = history_lines("chat-api", ["staging"], {"staging": staging})
    assert "      approved by alice 16:00:00Z: mine (not counted: the promoter's own)" in lines
    assert "      approved by bob 16:01:00Z: checked" in lines


def test_history_without_evidence_says_so() -> None:
    assert history_lines("chat-api", ["demo", "staging"], {}) == [
        "chat-api: demo -> staging", "no evidence yet: no tag has been through any stage",
    ]


# --- the store on git ----------------------------------------------------------------------

class Clock:
    """Each call one second later than the last."""

    def __init__(self) -> None:
        self.moment = datetime.datetime(2026, 11, 28, 16, 40, 12, tzinfo=UTC)

    def __call__(self) -> datetime.datetime:
        self.moment += datetime.timedelta(seconds=1)
        return self.moment


@pytest.fixture
def workspace(tmp_path: Path, hermetic_git: None) -> Path:
    """An offline stack's workspace: a repository without a remote whose first commit is the stack file."""
    workspace = tmp_path / "offline" / "staging"
    workspace.mkdir(parents=True)
    (workspace / "Pulumi.staging.yaml").write_text("config: {}\n")
    GitLedger.init(workspace, workspace / "Pulumi.staging.yaml", "staging: rehearsal")
    return workspace


def test_each_append_is_one_commit_of_the_evidence_file_alone(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPATH_OPERATOR", "alice")
    (workspace / "notes.txt").write_text("not the evidence's\n")
    store = EvidenceStore(workspace, "staging", "chat-api", now=Clock())
    entered = store.append("entered", "v2.0.0", "run-1", digest="sha256:aaa", previous_stage="demo", overrides=[{"gate": "soak", "reason": "hotfix"}])
    store.append("approved", "v1.9.0", "run-2", by="bob", reason="late sign-off")
    assert entered == {
        "time": "2026-11-28T16:40:13Z", "stack": "staging", "service": "chat-api", "tag": "v2.0.0", "event": "entered",
        "operator": "alice", "run": "run-1", "digest": "sha256:aaa", "previous_stage": "demo", "overrides": [{"gate": "soak", "reason": "hotfix"}],
    }
    assert store.path == workspace / EVIDENCE
    assert (workspace / EVIDENCE).read_text().splitlines()[0] == json.dumps(entered, sort_keys=True)
    assert git(workspace, "rev-list", "--count", "HEAD") == "3"
    for commit in ("HEAD", "HEAD~1"):
        assert git(workspace, "show", "--name-only", "--format=", commit) == EVIDENCE
    assert git(workspace, "log", "-1", "--format=%B", "HEAD~1") == (
        'evidence staging/chat-api v2.0.0: entered\n\ndigest sha256:aaa; previous_stage demo; overrides [{"gate": "soak", "reason": "hotfix"}]\n\n'
        "run run-1, operator alice"
    )
    assert git(workspace, "status", "--porcelain") == "?? notes.txt"
    assert [e["event"] for e in store.events()] == ["entered", "approved"]
    assert store.events("v1.9.0") == [{
        "time": "2026-11-28T16:40:14Z", "stack": "staging", "service": "chat-api", "tag": "v1.9.0", "event": "approved",
        "operator": "alice", "run": "run-2", "by": "bob", "reason": "late sign-off",
    }]


def test_a_verification_keeps_the_last_lines_of_its_output(workspace: Path) -> None:
    store = EvidenceStore(workspace, "staging", "chat-api")
    output = "\n".join(f"line {n}" for n in range(1, 101))
    entry = store.append("verified", "v2.0.0", "run-1", passed=False, exit_code=1, seconds=3.5, url="http://x", header="x-carepath-tester: 1", output=output)
    assert entry["output"].splitlines() == [f"line {n}" for n in range(61, 101)]


@pytest.mark.parametrize(
    ("kind", "fields", "said"),
    [
        ("promoted", {}, "unknown evidence event 'promoted'"),
        ("approved", {"by": "bob"}, "missing reason"),
        ("stopped", {"reason": "x", "gate": None, "why": "y"}, "unexpected why"),
        ("watched", {"outcome": "fine", "reasons": [], "seconds": 1.0}, "outcome 'fine' is not one of healthy, unwatched, skipped, rolled back"),
        ("entered", {"digest": None, "previous_stage": None, "overrides": [{"gate": "freeze", "reason": " "}]}, "needs a gate"),
    ],
)
def test_an_event_the_evidence_does_not_take_writes_nothing(workspace: Path, kind: str, fields: dict[str, Any], said: str) -> None:
    store = EvidenceStore(workspace, "staging", "chat-api")
    with pytest.raises(EvidenceError, match=said):
        store.append(kind, "v2.0.0", "run-1", **fields)
    assert not store.path.exists() and git(workspace, "rev-list", "--count", "HEAD") == "1"


def test_a_broken_line_is_named_with_its_file_and_number(workspace: Path) -> None:
    store = EvidenceStore(workspace, "staging", "chat-api")
    store.append("stopped", "v2.0.0", "run-1", reason="frozen", gate="freeze")
    with store.path.open("a") as file:
        file.write("{not json\n")
    with pytest.raises(EvidenceError, match=r"chat-api.jsonl:2: not a JSON line"):
        store.events()


@pytest.fixture
def clones(tmp_path: Path, hermetic_git: None) -> tuple[Path, Path]:
    """A bare `origin` with a stack file, and two clones of it (a driver and a second machine)."""
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", "origin.git")
    git(tmp_path, "clone", "--quiet", "origin.git", "seed")
    seed = tmp_path / "seed"
    (seed / "Pulumi.staging.yaml").write_text("config: {}\n")
    git(seed, "add", ".")
    git(seed, "-c", "user.name=seed", "-c", "user.email=seed@example.org", "commit", "--quiet", "-m", "staging stack")
    git(seed, "push", "--quiet", "origin", "HEAD:main")
    for name in ("one", "two"):
        git(tmp_path, "clone", "--quiet", "origin.git", name)
    return tmp_path / "one", tmp_path / "two"


def test_two_clones_see_each_others_events(clones: tuple[Path, Path]) -> None:
    one, two = (EvidenceStore(clone, "staging", "chat-api", now=Clock()) for clone in clones)
    one.append("requested", "v2.0.0", "run-1", gate="approval")
    assert [e["event"] for e in two.events()] == ["requested"]
    two.append("approved", "v2.0.0", "run-2", by="bob", reason="signed off")
    assert [e["event"] for e in one.events("v2.0.0")] == ["requested", "approved"]
    origin = clones[0].parent / "origin.git"
    assert git(origin, "log", "--format=%s", "main") == "evidence staging/chat-api v2.0.0: approved\nevidence staging/chat-api v2.0.0: requested\nstaging stack"


def test_an_append_that_raced_another_rebases_and_both_lines_land(clones: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    one, two = (EvidenceStore(clone, "staging", "chat-api", now=Clock()) for clone in clones)
    one.append("requested", "v2.0.0", "run-1", gate="approval")
    two.events()
    one.append("approved", "v2.0.0", "run-1", by="bob", reason="signed off")
    monkeypatch.setattr(two.ledger, "sync", lambda: None)  # `two` synced before `one` pushed: its push is refused, then rebased
    two.append("stopped", "v2.0.0", "run-2", reason="superseded by run-1", gate=None)
    origin = clones[0].parent / "origin.git"
    lines = [json.loads(line)["event"] for line in git(origin, "show", f"main:{EVIDENCE}").splitlines()]
    assert lines == ["requested", "approved", "stopped"]
    assert git(clones[1], "status", "--porcelain") == ""


def test_the_evidence_and_the_stack_files_ledger_share_the_repository(clones: tuple[Path, Path]) -> None:
    one = clones[0]
    EvidenceStore(one, "staging", "chat-api").append("stopped", "v2.0.0", "run-1", reason="frozen", gate="freeze")
    (one / "Pulumi.staging.yaml").write_text("config: {a: 1}\n")
    GitLedger(one, one / "Pulumi.staging.yaml").record("staging: a")
    origin = one.parent / "origin.git"
    assert git(origin, "show", "--name-only", "--format=", "main") == "Pulumi.staging.yaml"
    assert git(origin, "show", "--name-only", "--format=", "main~1") == EVIDENCE

"""The promotion's evidence: what happened to each tag at each stage, kept in git.

Every stage (stack) of a service's promotion path keeps one append-only file of JSON lines,
`evidence/<stack>/<service>.jsonl`, beside the stack file: in the project's repository for a
real stack, in the offline stack's workspace for a rehearsal. Each event is one line and one
commit (pushed, when the repository has a remote), so the evidence travels with the release
ledger and `git log evidence/` is its history. Lines are only ever added: two drivers that
append at once both land, one after the other (the file merges by union).

The fold (`stage_record`, `history_lines`) is pure: the store reads and writes, the rest reads
what it returns.
"""

from __future__ import annotations

import datetime
import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from core.stage_entry import OVERRIDABLE, PROMOTED, SOAKED
from release.audit import who
from release.ledger import GitLedger, git_env, run_git

# Each event's own fields, on top of time, stack, service, tag, event, operator and run.
FIELDS: dict[str, tuple[str, ...]] = {
    "requested": ("gate",),
    "approved": ("by", "reason"),
    "entered": ("digest", "previous_stage", "overrides"),
    "verified": ("passed", "exit_code", "seconds", "url", "header", "output"),
    "released": ("outcome", "message", "release", "strategy", "previous", "started", "report"),
    "watch-started": ("until", "previous"),
    "watched": ("outcome", "reasons", "seconds"),
    "stopped": ("reason", "gate"),
}
RELEASE_OUTCOMES = ("promoted", "switched", "rolled back", "switched back", "stopped")
WATCH_OUTCOMES = (*SOAKED, "rolled back", "inconclusive", "superseded")
OUTPUT_LINES = 40  # of a verification suite's output: where it failed, not its whole log
ATTRIBUTES = "/evidence/**/*.jsonl merge=union"


def stamp(moment: datetime.datetime) -> str:
    """A UTC time as the evidence writes it: 2026-11-28T16:40:12Z."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).astimezone(datetime.timezone.utc)


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class EvidenceError(ValueError):
    """An event the evidence does not take, or a file it cannot read; the message says which."""


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _checked(event: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The event's fields as they are written, or EvidenceError saying what is wrong."""
    if event not in FIELDS:
        raise EvidenceError(f"unknown evidence event {event!r}; one of {', '.join(FIELDS)}")
    missing, extra = set(FIELDS[event]) - set(fields), set(fields) - set(FIELDS[event])
    if missing or extra:
        raise EvidenceError(
            f"evidence event {event!r} takes {', '.join(FIELDS[event])}"
            + (f"; missing {', '.join(sorted(missing))}" if missing else "")
            + (f"; unexpected {', '.join(sorted(extra))}" if extra else "")
        )
    allowed = {("released", "outcome"): RELEASE_OUTCOMES, ("watched", "outcome"): WATCH_OUTCOMES}
    for (kind, key), values in allowed.items():
        if kind == event and fields[key] not in values:
            raise EvidenceError(f"evidence event {event!r}: {key} {fields[key]!r} is not one of {', '.join(values)}")
    for override in fields.get("overrides", []) if event == "entered" else []:
        if override.get("gate") not in OVERRIDABLE or not str(override.get("reason") or "").strip():
            raise EvidenceError(f"evidence event 'entered': override {override!r} needs a gate ({', '.join(OVERRIDABLE)}) and a reason")
    written = {key: stamp(value) if isinstance(value, datetime.datetime) else value for key, value in fields.items()}
    if event == "verified":
        written["output"] = "\n".join(str(fields["output"]).splitlines()[-OUTPUT_LINES:])
    return written


def _summary(fields: Mapping[str, Any]) -> str:
    """One line of an event's fields, for its commit message."""
    def short(value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
        return textwrap.shorten(text, 80, placeholder=" …") or '""'

    return "; ".join(f"{key} {short(value)}" for key, value in fields.items())


class EvidenceStore:
    """One stage's evidence file of one service, and its git ledger.

    `append`, `events` and `sync` hold the repository's ledger lock (the stack file's ledger
    takes the same one): call them outside a `GitLedger.locked()` block of that repository."""

    def __init__(
        self, repo: Path, stack: str, service: str, remote: Optional[str] = "origin",
        now: Callable[[], datetime.datetime] = _utc_now,
    ):
        self.repo, self.stack, self.service, self.now = repo, stack, service, now
        self.path = repo / "evidence" / stack / f"{service}.jsonl"
        self.ledger = GitLedger(repo, self.path, remote=remote)
        self._merge_by_union()

    def append(self, event: str, tag: str, run: str, **fields: Any) -> dict[str, Any]:
        """Write one event (its own fields as listed in FIELDS), commit it and push it; the entry."""
        own = _checked(event, fields)
        with self.ledger.locked():
            self.ledger.sync()
            entry = {
                "time": stamp(self.now()), "stack": self.stack, "service": self.service, "tag": tag,
                "event": event, "operator": who(), "run": run, **own,
            }
            self.path.parent.mkdir(parents=True, exist_ok=True)
            before = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
            with self.path.open("a", encoding="utf-8") as file:
                file.write(("\n" if before and not before.endswith("\n") else "") + json.dumps(entry, sort_keys=True) + "\n")
            self.ledger.record(
                f"evidence {self.stack}/{self.service} {tag}: {event}\n\n{_summary(own)}\n\nrun {run}, operator {entry['operator']}"
            )
        return entry

    def events(self, tag: Optional[str] = None) -> list[dict[str, Any]]:
        """Every event (or `tag`'s), what others pushed included, in file order."""
        self.sync()
        if not self.path.exists():
            return []
        entries = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as error:
                raise EvidenceError(f"{self.path}:{number}: not a JSON line ({error.msg}); the evidence is append-only, restore it from git") from None
            if tag is None or entry.get("tag") == tag:
                entries.append(entry)
        return entries

    def sync(self) -> None:
        with self.ledger.locked():
            self.ledger.sync()

    def _merge_by_union(self) -> None:
        """Two appends that raced both land: git merges evidence files by keeping both sides' lines
        (set in this clone's own attributes, so no tracked file changes)."""
        where = run_git(self.repo, git_env(self.repo), "rev-parse", "--git-path", "info/attributes").stdout.strip()
        attributes = self.repo / where
        present = attributes.read_text(encoding="utf-8").splitlines() if attributes.exists() else []
        if ATTRIBUTES not in present:
            attributes.parent.mkdir(parents=True, exist_ok=True)
            attributes.write_text("".join(f"{line}\n" for line in [*present, ATTRIBUTES]), encoding="utf-8")


# --- the fold ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Approval:
    by: str
    time: str
    reason: str


@dataclass(frozen=True)
class Override:
    gate: str
    reason: str
    by: str
    time: str


@dataclass(frozen=True)
class Verification:
    passed: bool
    time: str
    exit_code: Optional[int]
    seconds: float
    url: str
    header: str
    output: str


@dataclass(frozen=True)
class Released:
    outcome: str
    time: str
    message: str
    release: Optional[str]
    strategy: str
    previous: Optional[str]
    started: Optional[str]
    report: Optional[str]


@dataclass(frozen=True)
class Watched:
    outcome: str
    time: str
    reasons: tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class Stopped:
    reason: str
    gate: Optional[str]
    time: str


@dataclass(frozen=True)
class StageRecord:
    """One stage's record of one tag: its latest attempt (from its last `entered` on, or every
    event when it never entered), with the approvals of any attempt. `events` holds all of the
    tag's events at this stage, every attempt's, in file order."""

    stack: str
    service: str
    tag: str
    digest: Optional[str]
    requested: Optional[str]  # when an approval was first asked for
    approvals: tuple[Approval, ...]
    entered: Optional[str]
    overrides: tuple[Override, ...]
    verification: Optional[Verification]
    released: Optional[Released]
    watch_until: Optional[str]
    watched: Optional[Watched]
    stopped: Optional[Stopped]
    events: tuple[Mapping[str, Any], ...] = field(default=(), compare=False)  # the raw lines: not part of its value, nor its hash

    @property
    def promoted(self) -> bool:
        """Released to every patient here, and not rolled back since by its watch."""
        return (
            self.released is not None and self.released.outcome in PROMOTED
            and not (self.watched is not None and self.watched.outcome == "rolled back")
        )

    @property
    def promoted_at(self) -> Optional[datetime.datetime]:
        return parse_time(self.released.time) if self.promoted and self.released is not None else None

    @property
    def through(self) -> bool:
        """Promoted, and its watch ended healthy (or had no previous version to compare with, or was
        skipped by a soak override): the next stage may take the tag."""
        return self.promoted and self.watched is not None and self.watched.outcome in SOAKED

    @property
    def attempts(self) -> int:
        return sum(1 for e in self.events if e.get("event") == "entered")

    @property
    def start(self) -> Optional[str]:
        """The first time this record speaks of: its times on that day are shown without the date."""
        times = [t for t in (self.requested, self.entered) if t] + [str(e["time"]) for e in self.events if "time" in e]
        return min(times, default=None)

    def describe(self) -> str:
        """One line: where the tag stands here and why."""
        at = _clock(self.start)
        parts: list[str] = []
        released, watched, verification = self.released, self.watched, self.verification
        if released is not None and released.outcome in PROMOTED:
            parts.append(f"{released.outcome} {at(released.time)} ({released.strategy})")
            if watched is not None:
                reasons = f": {'; '.join(watched.reasons)}" if watched.reasons else ""
                if watched.outcome == "healthy":
                    parts.append(f"watched {duration(watched.seconds)}: healthy")
                elif watched.outcome in SOAKED:
                    parts.append(f"{'not watched' if watched.outcome == 'unwatched' else 'watch ' + watched.outcome}{reasons}")
                elif watched.outcome == "rolled back":
                    parts.append(f"rolled back {at(watched.time)} by its watch after {duration(watched.seconds)}{reasons}")
                else:
                    parts.append(f"watch {watched.outcome} after {duration(watched.seconds)}{reasons}")
            elif self.watch_until is not None:
                parts.append(f"watching until {at(self.watch_until)}")
        elif released is not None:
            parts.append(f"{released.outcome} {at(released.time)} ({released.strategy})" + (f": {released.message}" if released.message else ""))
        elif verification is not None and not verification.passed:
            code = f"exit {verification.exit_code}" if verification.exit_code is not None else "no exit code"
            parts.append(f"verification failed {at(verification.time)} ({code} after {duration(verification.seconds)})")
        elif self.entered is not None:
            parts.append(f"entered {at(self.entered)}" + (f", verified in {duration(verification.seconds)}" if verification is not None else ""))
        elif self.requested is not None and not self.approvals:
            parts.append(f"waiting for an approval since {at(self.requested)}")
        elif self.approvals:
            parts.append(f"approved {at(self.approvals[-1].time)} by {self.approvals[-1].by}, not entered")
        line = ", ".join(parts)
        if self.stopped is not None:
            line += ("; " if line else "") + f"stopped {at(self.stopped.time)}: {self.stopped.reason}"
        return line or "no decision recorded"


def _clock(start: Optional[str]) -> Callable[[str], str]:
    """Times as 16:40:12Z on `start`'s day, with their date on any other."""
    day = start[:10] if start else ""

    def at(time: str) -> str:
        return time[11:] if time[:10] == day else time.replace("T", " ")

    return at


def stage_record(events: Sequence[Mapping[str, Any]], stack: str, tag: str) -> Optional[StageRecord]:
    """The record of `tag` at `stack` from that stage's events; None when it has none of that tag."""
    mine = tuple(e for e in events if e.get("tag") == tag and e.get("stack") == stack)
    if not mine:
        return None
    entries = [i for i, e in enumerate(mine) if e["event"] == "entered"]
    latest = mine[entries[-1]:] if entries else mine
    requested = next((str(e["time"]) for e in mine if e["event"] == "requested"), None)
    approvals = tuple(Approval(str(e["by"]), str(e["time"]), str(e["reason"])) for e in mine if e["event"] == "approved")

    def last(kind: str) -> Optional[Mapping[str, Any]]:
        return next((e for e in reversed(latest) if e["event"] == kind), None)

    entered, verified, released = last("entered"), last("verified"), last("released")
    watch, watched, stopped = last("watch-started"), last("watched"), last("stopped")
    return StageRecord(
        stack=stack, service=str(mine[0].get("service", "")), tag=tag,
        digest=entered.get("digest") if entered else None,
        requested=requested,
        approvals=approvals,
        entered=str(entered["time"]) if entered else None,
        overrides=tuple(
            Override(str(o["gate"]), str(o["reason"]), str(entered["operator"]), str(entered["time"])) for o in entered.get("overrides", [])
        ) if entered else (),
        verification=Verification(
            bool(verified["passed"]), str(verified["time"]), verified.get("exit_code"), float(verified.get("seconds", 0.0)),
            str(verified.get("url", "")), str(verified.get("header", "")), str(verified.get("output", "")),
        ) if verified else None,
        released=Released(
            str(released["outcome"]), str(released["time"]), str(released.get("message", "")), released.get("release"),
            str(released.get("strategy", "")), released.get("previous"), released.get("started"), released.get("report"),
        ) if released else None,
        watch_until=str(watch["until"]) if watch else None,
        watched=Watched(
            str(watched["outcome"]), str(watched["time"]), tuple(str(r) for r in watched.get("reasons", [])), float(watched.get("seconds", 0.0)),
        ) if watched else None,
        stopped=Stopped(str(stopped["reason"]), stopped.get("gate"), str(stopped["time"])) if stopped else None,
        events=mine,
    )


def history_lines(service: str, stages: Sequence[str], events_by_stage: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """What `history --service S` prints: the path, then every tag that reached it, newest first
    (by its latest event), each with its digest and one line per stage in path order."""
    latest: dict[str, str] = {}
    for stack in stages:
        for event in events_by_stage.get(stack, ()):
            tag, time = str(event.get("tag")), str(event.get("time", ""))
            latest[tag] = max(latest.get(tag, ""), time)
    lines = [f"{service}: {' -> '.join(stages)}"]
    if not latest:
        return [*lines, "no evidence yet: no tag has been through any stage"]
    width = max(len(s) for s in stages)
    # newest first; a tie keeps the order the tags first appeared in
    for tag in sorted(latest, key=lambda t: latest[t], reverse=True):
        records = {stack: stage_record(events_by_stage.get(stack, ()), stack, tag) for stack in stages}
        digest = next((r.digest for r in records.values() if r is not None and r.digest), None)
        lines.append(f"{tag}  {digest or 'digest unknown'}  (latest {latest[tag].replace('T', ' ')})")
        for stack, record in records.items():
            if record is None:
                lines.append(f"  {stack:<{width}}  never entered")
                continue
            notes = [f"attempt {record.attempts}"] if record.attempts > 1 else []
            if record.digest and digest and record.digest != digest:
                notes.append(f"digest {record.digest} DIFFERS")
            if record.released is not None and record.released.report:
                notes.append(f"report {record.released.report}")
            day = (record.start or "")[:10]
            lines.append(f"  {stack:<{width}}  {day}  {record.describe()}" + (f"  [{', '.join(notes)}]" if notes else ""))
            at = _clock(record.start)
            lines += [f"      override {o.gate} by {o.by} {at(o.time)}: {o.reason}" for o in record.overrides]
            promoter = next((str(e.get("operator")) for e in reversed(record.events) if e.get("event") == "entered"), None)
            own = " (not counted: the promoter's own)"  # four eyes: the entry rule ignores it
            lines += [f"      approved by {a.by} {at(a.time)}: {a.reason}" + (own if a.by == promoter else "") for a in record.approvals]
    return lines


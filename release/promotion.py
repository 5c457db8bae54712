"""One tag through a service's promotion path (`core.promotion`): demo -> staging -> production.

`Promotion.run` takes the tag stage by stage. Each stage is a release like any other, with that
stack's own strategy, judge, lease and ledger (`release.driver`); what the path adds is around it:

- **entry** (`core.stage_entry`): the stage before released this tag and its judge promoted it, it
  soaked there healthy, no freeze window is open, an approval was given where one is needed. A
  closed gate that opens by itself (a soak, a freeze) is waited for, up to `max_wait`; an
  approval is polled for as long. Past that the path stops with exit code 4 ("not yet"), and a
  rerun picks up where it stood. The image must be the one the stage before released: the tag's
  digest in this stage's registry must match (a tag pushed again is a different image);
- **verification** before patients: a stage's `verify.command` runs against the candidate on the
  canary's tester header (the canary at 0 %) or blue/green's test listener (the idle colour),
  with the URL and the header in its environment; a failure aborts the release there, before any
  patient request reaches the candidate;
- **the watch** after promotion (`Driver.watch`): for `PromotionPath.window_seconds` the judge
  compares the new version with the replaced one's numbers from before the release; a regression
  rolls the stage back by itself and stops the path. The soak of a stage that another follows is
  that watched time;
- **evidence** (`release.evidence`): every step appended to the stage's record in git, beside its
  stack file: the digest, the times, the judge's outcome and reasons, approvals, overrides, the
  report. A rerun reads it to resume: a stage the tag is through is skipped, a release in flight
  resumed, a watch resumed from the promotion's time.

A tag whose last attempt at a stage failed (rolled back, a failed suite, a watch that rolled
back) is not tried there again unless asked (`retry`): the evidence says why it failed.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager, Mapping, Optional, Sequence

from core.promotion import PromotionPath, Stage
from core.settings import ServiceSettings
from core.stage_entry import PROMOTED, Entry, PreviousStage, entry
from release.driver import Driver
from release.evidence import EvidenceStore, StageRecord, stage_record
from release.record import ReleaseRun

FAILED_WATCH = ("rolled back", "inconclusive", "superseded")
# Writes a stage's report for its run (and the path's page) and names its file; (None, None): the path's page only.
Reports = Callable[[Optional[str], Optional[ReleaseRun]], Optional[str]]
OUTPUT_LINES = 40


@dataclass(frozen=True)
class Outcome:
    """How the path ended: 0 through, 1 stopped (a failure or a closed gate for good), 4 waiting
    for a gate past the longest wait (rerun later: it resumes)."""

    code: int
    message: str


@dataclass(frozen=True)
class SuiteResult:
    passed: bool
    exit_code: Optional[int]
    seconds: float
    output: str


@dataclass
class StageHandle:
    """One stage opened for acting, its lease held: its driver, where a verification suite reaches
    its candidate (URL, header), what to call once it is promoted (a rehearsal's hook) and where
    its report goes."""

    driver: Driver
    target: Callable[[], tuple[str, str]]
    on_promoted: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class Options:
    overrides: Mapping[str, str] = field(default_factory=dict)  # gate -> the reason
    max_wait: float = 3600.0
    poll_seconds: float = 10.0
    retry: bool = False
    first: Optional[str] = None  # start at this stage (a hotfix: with the previous-stage override)
    last: Optional[str] = None  # stop after this stage
    report_dir: Optional[Path] = None
    project: Path = Path(".")


def run_suite(command: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float) -> SuiteResult:
    """The verification command (no shell), its output's tail. `python` / `python3` as its program
    is this interpreter, the project's virtualenv, so a suite needs no second setup."""
    argv = [sys.executable if command[0] in ("python", "python3") else command[0], *command[1:]]
    started = time.monotonic()
    try:
        done = subprocess.run(argv, cwd=cwd, env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as expired:
        captured = expired.stdout
        output = captured.decode(errors="replace") if isinstance(captured, bytes) else (captured or "")
        return SuiteResult(False, None, time.monotonic() - started, _tail(output + f"\n(timed out after {timeout:.0f} s)"))
    except OSError as error:
        return SuiteResult(False, None, time.monotonic() - started, f"could not run {argv[0]}: {error}")
    return SuiteResult(done.returncode == 0, done.returncode, time.monotonic() - started, _tail(done.stdout))


def _tail(output: str) -> str:
    return "\n".join(output.rstrip().splitlines()[-OUTPUT_LINES:])


def _utc(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)


def _seconds(iso: str) -> float:
    return datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()


def replaced_version(config: ServiceSettings) -> Optional[str]:
    """The version a release of the service replaces: the one in flight's record, else what serves."""
    rollout = config.rollout
    if rollout.in_flight is not None:
        return rollout.in_flight.previous
    if rollout.strategy == "blue-green":
        return getattr(rollout.blue_green, rollout.blue_green.active).tag
    return config.tag


def failed_attempt(record: StageRecord) -> Optional[str]:
    """Why the record's last attempt failed (None: it did not, or is still going)."""
    if record.verification is not None and not record.verification.passed:
        return "its verification suite failed"
    if record.released is not None and record.released.outcome not in PROMOTED:
        return f"its release ended {record.released.outcome}" + (f" ({record.released.message})" if record.released.message else "")
    if record.watched is not None and record.watched.outcome in FAILED_WATCH:
        return f"its watch ended {record.watched.outcome}" + (f" ({'; '.join(record.watched.reasons)})" if record.watched.reasons else "")
    return None


class Promotion:
    def __init__(
        self,
        path: PromotionPath,
        tag: str,
        run_id: str,
        operator: str,
        evidence: Callable[[str], EvidenceStore],
        open_stage: Callable[[str], ContextManager[StageHandle]],
        options: Options = Options(),
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        show: Callable[[str], None] = print,
        suite: Callable[[Sequence[str], Mapping[str, str], Path, float], SuiteResult] = run_suite,
        reports: Optional[Reports] = None,
    ):
        self.path, self.tag, self.run_id, self.operator = path, tag, run_id, operator
        self.evidence, self.open_stage, self.options = evidence, open_stage, options
        self.wall_clock, self.sleep, self.show, self.suite = wall_clock, sleep, show, suite
        self.reports: Reports = reports or (lambda stack, run: None)

    @property
    def service(self) -> str:
        return self.path.service

    def stages(self) -> tuple[Stage, ...]:
        names = self.path.names
        first = names.index(self.options.first) if self.options.first else 0
        last = names.index(self.options.last) + 1 if self.options.last else len(names)
        return self.path.stages[first:last]

    def record(self, stack: str) -> Optional[StageRecord]:
        return stage_record(self.evidence(stack).events(self.tag), stack, self.tag)

    def _append(self, stack: str, event: str, **fields: object) -> None:
        self.evidence(stack).append(event, self.tag, self.run_id, **fields)

    def run(self) -> Outcome:
        stages = self.stages()
        for stage in stages:
            outcome = self._stage(stage)
            if outcome is not None:
                self.reports(None, None)
                return outcome
        self.reports(None, None)
        return Outcome(0, f"{self.tag} is through {' -> '.join(s.stack for s in stages)}")

    # --- one stage -------------------------------------------------------------------

    def _stage(self, stage: Stage) -> Optional[Outcome]:
        where = f"{stage.stack}/{self.service}"
        record = self.record(stage.stack)
        if record is not None and record.through:
            self.show(f"{where}: {self.tag} is through already ({record.describe()})")
            return None
        failed = failed_attempt(record) if record is not None else None
        if failed is not None and not self.options.retry:
            return self._stop(stage, None, f"{self.tag}'s last attempt on {stage.stack} failed: {failed}; --retry tries it there again")
        needs_entry = record is None or record.entered is None or failed is not None
        decision: Optional[Entry] = None
        if needs_entry:
            waited = self._wait_for_entry(stage)
            if isinstance(waited, Outcome):
                return waited
            decision = waited
        with self.open_stage(stage.stack) as handle:
            if needs_entry:
                refused = self._enter(stage, handle, decision)
                if refused is not None:
                    return refused
            record = self.record(stage.stack)
            assert record is not None
            if record.released is None:
                stopped = self._release(stage, handle, record)
                if stopped is not None:
                    return stopped
                record = self.record(stage.stack)
                assert record is not None
            return self._watch(stage, handle, record)

    def _previous(self, stage: Stage) -> Optional[PreviousStage]:
        before = self.path.previous(stage.stack)
        if before is None:
            return None
        record = self.record(before.stack)
        watched = record.watched.outcome if record is not None and record.watched is not None else None
        released = record.released if record is not None else None
        promoted_at = record.promoted_at if record is not None else None
        return PreviousStage(before.stack, released.outcome if released else None, promoted_at, watched, before.promotion.soak_seconds)

    def _wait_for_entry(self, stage: Stage) -> Entry | Outcome:
        """The entry decision once it says enter; waits while a gate may open within `max_wait`."""
        deadline = self.wall_clock() + self.options.max_wait
        said = ""
        requested = False
        while True:
            now = self.wall_clock()
            record = self.record(stage.stack)  # after a sync: an approval given meanwhile counts
            approvals = [a.by for a in record.approvals] if record is not None else []
            decision = entry(
                self.tag, self._previous(stage), stage.promotion.freeze, stage.promotion.approval, approvals, self.operator, _utc(now), frozenset(self.options.overrides),
            )
            if decision.verdict == "enter":
                return decision
            if decision.verdict == "stop":
                return self._stop(stage, decision.gate, decision.reason)
            if decision.gate == "approval" and not requested and (record is None or record.requested is None):
                self._append(stage.stack, "requested", gate="approval")
                requested = True
            opens = decision.until.timestamp() if decision.until is not None else None
            if (opens is not None and opens > deadline) or (opens is None and now >= deadline):
                message = f"{stage.stack}/{self.service}: waiting: {decision.reason}" + (
                    f"; that is after the longest wait ({self.options.max_wait:.0f} s)" if opens is not None else f"; waited {self.options.max_wait:.0f} s"
                ) + "; run promote-through again later, it resumes here"
                self._append(stage.stack, "stopped", reason=f"waiting: {decision.reason}", gate=decision.gate)
                return Outcome(4, message)
            if decision.reason != said:
                until = f" (until {decision.until:%Y-%m-%d %H:%M:%SZ})" if decision.until else ""
                self.show(f"{stage.stack}/{self.service}: waiting: {decision.reason}{until}")
                said = decision.reason
            self.sleep(max(0.0, min(self.options.poll_seconds, (opens - now) if opens is not None else self.options.poll_seconds, deadline - now)))

    def _stop(self, stage: Stage, gate: Optional[str], reason: str) -> Outcome:
        self._append(stage.stack, "stopped", reason=reason, gate=gate)
        return Outcome(1, f"{stage.stack}/{self.service}: stopped: {reason}")

    def _enter(self, stage: Stage, handle: StageHandle, decision: Optional[Entry]) -> Optional[Outcome]:
        """Vet the image in this stage's registry, check it is the digest the stage before
        released, and record the entry with the overrides it took."""
        driver = handle.driver
        driver.reconcile()
        in_flight = driver.config().rollout.in_flight
        if in_flight is not None and in_flight.tag != self.tag:
            return self._stop(stage, None, f"{in_flight.tag} is in flight on {stage.stack} (release {in_flight.id}): finish or abort it first")
        report = driver.vet(self.tag)
        before = self.path.previous(stage.stack)
        earlier = self.record(before.stack) if before is not None else None
        if earlier is not None and earlier.digest and report.digest and earlier.digest != report.digest:
            said = f"{self.tag} is {report.digest} here but {earlier.digest} on {before.stack if before else '?'}"
            return self._stop(stage, "digest", f"{said}: the tag was pushed again; promote the new image from the first stage")
        overridden = decision.overridden if decision is not None else ()
        overrides = [{"gate": gate, "reason": self.options.overrides[gate]} for gate in overridden]
        self._append(stage.stack, "entered", digest=report.digest, previous_stage=before.stack if before else None, overrides=overrides)
        for override in overrides:
            self.show(f"{stage.stack}/{self.service}: override of {override['gate']}: {override['reason']} (recorded)")
        return None

    def _release(self, stage: Stage, handle: StageHandle, record: StageRecord) -> Optional[Outcome]:
        driver = handle.driver
        config = driver.config()
        in_flight = config.rollout.in_flight
        if in_flight is not None and in_flight.tag != self.tag:
            return self._stop(stage, None, f"{in_flight.tag} is in flight on {stage.stack} (release {in_flight.id}): finish or abort it first")
        previous = replaced_version(config)
        verify = stage.promotion.verify
        if verify is not None and (record.verification is None or not record.verification.passed):
            if in_flight is None:
                driver.start(self.tag, first_weight=0)  # canary: testers only; blue/green: the idle colour
            failed = self._verify(stage, handle, verify.command, verify.timeout_seconds)
            if failed is not None:
                driver.abort(f"verification failed: {failed}")
                return self._stop(stage, "verify", f"the verification suite failed before any patient traffic: {failed}")
        in_flight = driver.config().rollout.in_flight
        started = in_flight.started if in_flight is not None else _utc(self.wall_clock()).strftime("%Y-%m-%dT%H:%M:%SZ")
        run = driver.run(self.tag, keep_replaced=True)
        self._append(
            stage.stack, "released", outcome=run.outcome, message=run.message, release=run.release_id, strategy=run.strategy,
            previous=previous, started=started, report=self.reports(stage.stack, run),
        )
        if run.outcome not in PROMOTED:
            return Outcome(1, f"{stage.stack}/{self.service}: {self.tag} {run.outcome}" + (f": {run.message}" if run.message else "") + "; the path stops here")
        handle.on_promoted()
        return None

    def _verify(self, stage: Stage, handle: StageHandle, command: Sequence[str], timeout: float) -> Optional[str]:
        """Run the stage's suite against the candidate; why it failed, or None."""
        url, header = handle.target()
        if not url:
            result = SuiteResult(False, None, 0.0, "no address reaches the candidate on this stack (an offline stack without a rehearsal)")
        else:
            env = {
                "CAREPATH_VERIFY_URL": url.rstrip("/"), "CAREPATH_VERIFY_HEADER": header, "CAREPATH_VERIFY_TAG": self.tag,
                "CAREPATH_VERIFY_STACK": stage.stack, "CAREPATH_VERIFY_SERVICE": self.service,
            }
            self.show(f"{stage.stack}/{self.service}: verification: {' '.join(command)} against {url}" + (f" with {header}" if header else ""))
            result = self.suite(command, env, self.options.project, timeout)
        self._append(stage.stack, "verified", passed=result.passed, exit_code=result.exit_code, seconds=round(result.seconds, 1), url=url, header=header, output=result.output)
        if result.passed:
            self.show(f"{stage.stack}/{self.service}: verification passed in {result.seconds:.0f} s")
            return None
        last = result.output.strip().splitlines()[-1] if result.output.strip() else "no output"
        self.show(f"{stage.stack}/{self.service}: verification failed (exit {result.exit_code}):\n{result.output}")
        return f"exit {result.exit_code}: {last}"

    def _watch(self, stage: Stage, handle: StageHandle, record: StageRecord) -> Optional[Outcome]:
        driver = handle.driver
        released = record.released
        assert released is not None and record.promoted_at is not None
        if record.watched is not None:
            return None
        following = self.path.next(stage.stack)
        if "soak" in self.options.overrides and following is not None:
            driver.complete_kept(f"soak overridden: {self.options.overrides['soak']}")
            self._append(stage.stack, "watched", outcome="skipped", reasons=[f"soak overridden: {self.options.overrides['soak']}"], seconds=0.0)
            return None
        promoted_at = record.promoted_at.timestamp()
        until = promoted_at + self.path.window_seconds(stage.stack)
        if record.watch_until is None:
            self._append(stage.stack, "watch-started", until=_utc(until).strftime("%Y-%m-%dT%H:%M:%SZ"), previous=released.previous)
        self.show(f"{stage.stack}/{self.service}: watching {self.tag} against {released.previous} until {_utc(until):%H:%M:%SZ}")
        watched = driver.watch(self.tag, released.previous, promoted_at, until, _seconds(released.started) if released.started else promoted_at)
        self._append(stage.stack, "watched", outcome=watched.outcome, reasons=list(watched.reasons), seconds=round(watched.seconds, 1))
        if watched.outcome in FAILED_WATCH:
            said = "; ".join(watched.reasons)
            return Outcome(1, f"{stage.stack}/{self.service}: the watch after promotion ended {watched.outcome}" + (f": {said}" if said else "") + "; the path stops here")
        self.show(f"{stage.stack}/{self.service}: {self.tag} watched {watched.seconds:.0f} s: {watched.outcome}")
        return None

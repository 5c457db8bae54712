"""The release driver: metric-gated progressive delivery of one service through Pulumi.

A `Driver` releases one service of a stack (`service`, default chat-api): its settings
(`services.<service>`), its signals, its plan and its release state are that service's.
It changes only the stack file and runs `up`, so Pulumi stays the one owner of every
weight. The state of a release has two halves, and the driver keeps them apart:

- the stack file says what was decided: each action (`core.actions`) is one atomic
  rewrite of it, committed to the ledger (`release.ledger`: the stack file in git) with
  the decision and its evidence, and the release in flight is recorded in it
  (`services.<service>.rollout.inFlight`), so a rerun of `run` resumes it;
- the stack's `releases` output says what was applied, per service: Pulumi records it
  only when an update succeeds. Before acting, the driver compares the two for its
  service (`reconcile`): a stack file ahead of the cluster (an update that failed,
  Ctrl-C, a killed driver) is re-applied first, and said so. Another service's release
  in flight is not the driver's business: it is neither drift nor something to re-apply.

Every write checks the release lease first (`release.lease`: one driver per stack and
service) and, after syncing the ledger, that nobody else moved the service's release
keys (`Drift`). Drivers of two services can run at once: their writes to the stack file
take turns (`Ledger.locked`, and the stack file's own lock), and so do their updates
(Pulumi's stack lock, waited for). `deploy` is the stack's, not a service's: it refuses
when the release of any service would move.

One judge (`release.judge`, over the signal catalogue of `core.signals`) for every
strategy; what differs is who is compared with whom (`Comparison`):

- canary: the `canary` track against `stable`, live, from the reference's baseline
  (`rollout.analysis.baselineSeconds` of stable before the release). Each `interval`,
  judge, then hold, advance, roll back or promote. Weights follow the ladder
  `rollout.canary.steps`, sized by the traffic (`core.release.next_weight`); a step
  advances after `minStepRequests` canary requests while the evidence favours the
  canary, and the canary is promoted from the last step once every critical gate
  accepts it. With `rollout.canary.mirror`, a shadow step of weight 0 opens the release.
- blue-green: deploy the candidate to the idle colour, smoke-test it through the test
  listener, capture the active colour's baseline (none: the release stops, never judged
  against nothing), switch, and judge the new colour against it for at least
  `bakeSeconds` until every critical gate accepts; switch back on a rollback.
- rolling: capture the running version's baseline, set the tag, and judge the new
  version against the old one by `version` label while both serve, then against the
  baseline; roll back to the previous tag on a rollback.

Before a release starts (`start`, and `run` of a release not yet in flight) the candidate
image is vetted (`vet`, the rule `core.images.vet` over the `Images` port): the tag must be in
the service's ECR repository and its scan finished with no finding at or above the service's
`imageScan.blockAt`; otherwise `ImageRefused`, listing the findings, before anything is
written. A resumed release is not vetted again: its image was, when it started.

Faults: no usable data for a critical signal, NaN, or a failed or malformed metrics
answer holds (inconclusive, never a pass); `maxInconclusiveSeconds` of it aborts with
that reason. A failed `up` stops with the error and leaves traffic where it is (or
aborts, with `abort_on_failure`); a held stack lock stops with a clear message. Every
action goes to the audit log when it starts and when it ends (applied, failed,
interrupted), every line tagged with the run id and the release id.
"""

from __future__ import annotations

import datetime
import math
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from core import actions
from core.actions import Action, Refused
from core.images import ImageReport, Vetting, vet
from core.paths import UNSET
from core.release import DEFAULT_SERVICE, idle_colour, next_weight, plan_release, release_state, release_states
from core.settings import COLOURS, ServiceSettings, Settings
from core.signals import Signal, catalogue
from release.audit import AuditLog, who
from release.judge import CANDIDATE, REFERENCE, Check, Decision, JudgeState, Ratio, Reading, judge, since
from release.judge import start as judging_from
from release.lease import LeaseLost
from release.ledger import Ledger, NoLedger
from release.pacing import Pacing, Progress, after_check
from release.ports import Images, ImagesError, Metrics, MetricsError, Stack, StackError
from release.record import Observation, ReleaseRun
from release.stackfile import apply_changes, settings_of

Clock = Callable[[], float]
Sleep = Callable[[float], None]
HISTORY_STEP = 60.0  # the baseline's resolution: at least two scrapes per point


@dataclass(frozen=True)
class Comparison:
    """Who is judged against whom: the label that tells versions apart, and its two values."""

    by: str
    candidate: str
    reference: str

    @property
    def groups(self) -> dict[str, str]:
        return {CANDIDATE: self.candidate, REFERENCE: self.reference}


class _Unguarded:
    """No lease (a driver in a test, or a caller that guards the stack itself)."""

    def check(self) -> None:
        return None


@dataclass(frozen=True)
class Watch:
    """How a watch after a promotion ended."""

    outcome: str  # healthy | rolled back | inconclusive | superseded | unwatched
    reasons: tuple[str, ...]
    seconds: float


class ImageRefused(Refused):
    """The candidate image is not in the service's repository, could not be vetted, or its
    scan has findings at or above the service's threshold; nothing was written."""


class Drift(StackError):
    """The stack file's release keys changed under a release (a merge, a hand edit, another
    driver): the driver stops before writing over them."""


class Driver:
    def __init__(
        self,
        stack: Stack,
        metrics: Metrics,
        audit: AuditLog,
        images: Images,
        service: str = DEFAULT_SERVICE,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        show: Callable[[str], None] = print,
        abort_on_failure: bool = False,
        http_get: Optional[Callable[[str], int]] = None,
        wall_clock: Clock = time.time,
        history_step: float = HISTORY_STEP,
        lease: Any = None,
        ledger: Optional[Ledger] = None,
        run_id: Optional[str] = None,
        test_url: Optional[str] = None,
    ):
        self.stack, self.metrics, self.audit, self.images, self.service = stack, metrics, audit, images, service
        self.clock, self.sleep, self.show, self.wall_clock = clock, sleep, show, wall_clock
        self.abort_on_failure = abort_on_failure
        self.http_get = http_get or http_status
        self.history_step = history_step
        self.lease = lease or _Unguarded()
        self.ledger = ledger or NoLedger()
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._test_url = test_url
        self.release_id: Optional[str] = None

    # --- state: the stack file, and what the last successful update applied ----------

    @property
    def where(self) -> str:
        """How the driver's lines name what it releases: `staging/chat-api`."""
        return f"{self.stack.name}/{self.service}"

    def settings(self) -> Settings:
        return settings_of(self.stack.config(), self.stack.name)

    def config(self, settings: Optional[Settings] = None) -> ServiceSettings:
        """The service's settings (of `settings`, or of the stack file as it is now)."""
        return (settings or self.settings()).service(self.service)

    def signals(self) -> tuple[Signal, ...]:
        return catalogue(self.service, self.config().rollout.analysis.signals)

    def _record(self, action: str, whole_stack: bool = False, **details: Any) -> None:
        details["run"] = self.run_id
        if not whole_stack:
            details["service"] = self.service
        if self.release_id:
            details["release"] = self.release_id
        self.audit.record(action, **details)

    def _adopt_release(self, settings: Settings) -> None:
        """A command acting on a release in flight logs under that release's id."""
        in_flight = self.config(settings).rollout.in_flight
        self.release_id = self.release_id or (in_flight.id if in_flight else None)

    def differences(self) -> list[str]:
        """How the stack file's release state of the service differs from the applied one (empty:
        in step). Other services' states are theirs: a release of theirs in flight is no drift."""
        applied = self.stack.applied().get(self.service)
        wanted = release_state(self.settings(), self.service)
        if applied is None:
            return ["applied: no release state recorded (the last update predates it, or none succeeded)"]
        return applied.differences(wanted)

    def reconcile(self) -> Optional[str]:
        """Bring the stack to a state the driver can vouch for before acting: when the stack file
        says other than what the last successful update applied (an update that failed or was
        interrupted, a driver killed mid-action), re-apply the stack file. Returns what was done."""
        self.ledger.sync()
        self._adopt_release(self.settings())
        differences = self.differences()
        if not differences:
            return None
        said = "the stack file differs from what the last successful update applied (" + "; ".join(differences) + "): re-applying the stack file"
        self.show(f"{self.where}: {said}")
        self._apply(Action("reapply", {}, "stack file re-applied"), drift_check=False, differences=differences)
        return said

    def _apply(self, action: Action, drift_check: bool = True, whole_stack: bool = False, **evidence: Any) -> None:
        """One action: its keys in one write of the stack file, a ledger commit, one `up`, each
        step audited (started, then applied, failed or interrupted). The ledger is held from
        its sync to the commit, so a driver of another service neither writes in between nor
        has its write committed under this decision. `whole_stack`: the stack's action
        (deploy), not the service's."""
        with self.ledger.locked():
            self.lease.check()
            if drift_check:
                self.ledger.sync()
                drift = self.differences()
                if drift:
                    raise Drift(
                        f"the stack file's release keys of {self.service} changed under this release (" + "; ".join(drift) + "): "
                        "stopping before writing over them; traffic stays where it is"
                    )
            config = apply_changes(self.stack.config(), action.changes)
            settings_of(config, self.stack.name)  # no command leaves a config that does not validate
            self.stack.write(action.changes)
            commit = self.ledger.record(self._commit_message(action, evidence, whole_stack))
        changes = {path: ("(removed)" if value is UNSET else value) for path, value in action.changes.items()}
        self._record(action.name, whole_stack, event="started", summary=action.summary, changes=changes, commit=commit, **evidence)
        try:
            self.stack.up()
        except StackError as error:
            self._record(action.name, whole_stack, event="failed", error=str(error))
            raise
        except KeyboardInterrupt:
            self._record(action.name, whole_stack, event="interrupted")
            raise
        self._record(action.name, whole_stack, event="applied")
        self.show(f"{self.stack.name if whole_stack else self.where}: {action.summary}")

    def _commit_message(self, action: Action, evidence: dict[str, Any], whole_stack: bool) -> str:
        ids = f"action {action.name}; run {self.run_id}" + (f"; release {self.release_id}" if self.release_id else "") + f"; by {who()}"
        lines = [f"release {self.stack.name if whole_stack else self.where}: {action.summary}", "", ids]
        lines += [f"{key}: {value}" for key, value in evidence.items()]
        return "\n".join(lines)

    # --- one action each (a command runs `reconcile` first; `run` calls them mid-release) ---

    def vet(self, tag: str) -> ImageReport:
        """`vet_image` of the service's candidate, its answer recorded in the audit log."""
        try:
            report = vet_image(self.images, self.settings(), self.service, tag)
        except ImageRefused as refused:
            self._record("vet", event="refused", tag=tag, reason=str(refused))
            raise
        self._record("vet", event="passed", tag=tag, image=report.image, digest=report.digest, scan=report.scan_status)
        return report

    def start(self, tag: str, first_weight: Optional[int] = None) -> None:
        """canary: the first step (`first_weight`, default the ladder's first; 0 with a mirror, or
        for testers only: the header route reaches the canary, patients do not); blue-green: the
        candidate on the idle colour; rolling: the new tag. Only on a vetted image."""
        self.release_id = self.release_id or uuid.uuid4().hex[:12]  # the vetting is the release's first audit line
        self.vet(tag)
        self._start(tag, first_weight)

    def _start(self, tag: str, first_weight: Optional[int] = None) -> None:
        settings = self.settings()
        rollout = self.config(settings).rollout
        first = 0 if rollout.canary.mirror else (rollout.canary.steps[0] if first_weight is None else first_weight)
        self.release_id = self.release_id or uuid.uuid4().hex[:12]
        started = datetime.datetime.fromtimestamp(self.wall_clock(), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._apply(actions.start(settings, self.service, tag, self.release_id, started, first), tag=tag, strategy=rollout.strategy)

    def advance(self, weight: Optional[int] = None, **evidence: Any) -> int:
        """The next canary step, or `weight`; returns the new weight. When the step needs more
        canary pods, they come first, in an update of their own (it waits for them to be ready);
        the weight step itself then changes only the route."""
        settings = self.settings()
        step = actions.advance(settings, self.service, weight)
        target = int(step.changes[actions.key(self.service, "rollout.canary.weight")])
        scale = actions.scale_canary(settings, self.service, target)
        if scale is not None:
            self._apply(scale, **evidence)
        self._apply(step, **evidence)
        return target

    def promote(self, **evidence: Any) -> None:
        self._apply(actions.promote(self.settings(), self.service), **evidence)

    def switch(self, **evidence: Any) -> None:
        self._apply(actions.switch(self.settings(), self.service), **evidence)

    def abort(self, reason: str = "requested") -> None:
        """Back to the version the release replaces. No re-apply first and no drift check: the
        abort's own write and update bring the stack to the safe state whatever it was. With no
        release left in the stack file but a cluster behind it (an abort, or a promotion, whose
        update failed or was interrupted), it finishes that decision: the file is the ledger, and
        undoing a decided promotion is a release of the old version."""
        self.ledger.sync()
        settings = self.settings()
        self._adopt_release(settings)
        try:
            action = actions.abort(settings, self.service)
        except Refused:
            differences = self.differences()
            if not differences:
                raise
            self.show(f"{self.where}: nothing left in flight in the stack file, but the cluster is behind it (" + "; ".join(differences) + "): re-applying the stack file")
            action = Action("reapply", {}, "stack file re-applied (it already holds the last decision)")
        self._apply(action, drift_check=False, reason=reason)

    def deploy(self) -> str:
        """`up` of the stack file as it is, unless it would move the release of any service:
        release keys (tags, weights, the active colour, the release record) change only through
        the actions above, which apply them themselves. A service with no applied state yet (a
        new one) is deployed. Returns what happened; raises Drift when refused."""
        applied = self.stack.applied()
        wanted = release_states(self.settings())
        moved = {service: applied[service].differences(state) for service, state in wanted.items() if service in applied}
        refused = [f"{service} ({'; '.join(lines)})" for service, lines in moved.items() if lines]
        if refused:
            raise Drift(
                "not deployed: the stack file would move the release of " + ", ".join(refused) + "; "
                "release keys change only through `python -m release` (the release workflow), which applies them itself"
            )
        self._apply(Action("deploy", {}, "stack file deployed"), drift_check=False, whole_stack=True)
        states = "; ".join(f"{service} {state.describe()}" for service, state in release_states(self.settings()).items())
        return f"stack {self.stack.name}: deployed; release states unchanged: {states}"

    # --- run: the whole release -------------------------------------------------

    def run(self, tag: str, keep_replaced: bool = False) -> ReleaseRun:
        """The whole release, or the rest of the one in flight for `tag` (its record in the stack
        file says where it stands). `keep_replaced`: a blue/green or rolling release that passes
        stays in flight, the replaced version kept (blue/green: its colour at full size) for a
        watch after it (`watch`), which completes it or rolls it back; a canary has nothing to keep."""
        self.reconcile()
        settings = self.settings()
        rollout = self.config(settings).rollout
        in_flight = rollout.in_flight
        if in_flight is not None and in_flight.tag != tag:
            raise Refused(
                f"stack {settings.stack}, service {self.service}: {in_flight.tag} is in flight (release {in_flight.id}): "
                f"finish it with `run --tag {in_flight.tag}`, or abort it"
            )
        run = ReleaseRun(stack=self.stack.name, service=self.service, tag=tag, strategy=rollout.strategy)
        if in_flight is not None:
            run.release_id = in_flight.id
        self.release_id = run.release_id
        if in_flight is None:
            self.vet(tag)
        self._record("release", event="started", tag=tag, strategy=run.strategy, resumed=in_flight is not None)
        try:
            if run.strategy == "canary":
                self._run_canary(run)
            elif run.strategy == "blue-green":
                self._run_blue_green(run, keep_replaced)
            else:
                self._run_rolling(run, keep_replaced)
        except (StackError, LeaseLost) as error:
            run.outcome, run.message = "stopped", str(error)
        except KeyboardInterrupt:
            self._record("release", event="interrupted")
            raise
        self._record("release", event="ended", outcome=run.outcome, message=run.message)
        return run

    def _history(self, settings: Settings, comparison: Comparison, until: Optional[float] = None) -> dict[str, list[Reading]]:
        """The reference's readings before the release (up to `until`, else now), per
        `HISTORY_STEP`. Raises MetricsError."""
        analysis = self.config(settings).rollout.analysis
        return self.metrics.history(
            plan_release(settings, self.service).namespaces, self.signals(), comparison.by, comparison.reference,
            analysis.baseline_seconds, max(float(analysis.interval_seconds), self.history_step), self.wall_clock() if until is None else until,
        )

    def _check(
        self, state: JudgeState, previous: Check, signals: Sequence[Signal], beta: float, namespaces: Sequence[str], comparison: Comparison,
        release_seconds: float, interval_seconds: float, progress: float,
    ) -> tuple[Decision, JudgeState, Check, bool]:
        """One check: read the signals, judge what came since `previous`. A failed or malformed
        answer is inconclusive, never a pass. Returns the decision, the judge's state, the
        cumulative reading to difference the next check from, and whether the read failed."""
        try:
            cumulative = self.metrics.read(namespaces, signals, comparison.by, comparison.groups, release_seconds, interval_seconds)
            decision, state = judge(state, since(cumulative, previous, signals), signals, beta, progress)
            return decision, state, cumulative, False
        except MetricsError as error:
            return Decision("hold", (f"inconclusive: metrics unavailable: {error}",), (), inconclusive=True), state, previous, True

    def _analysis_loop(
        self,
        run: ReleaseRun,
        comparison: Comparison,
        history: dict[str, list[Reading]],
        phase: str,
        on_move: Optional[Callable[[str], None]] = None,
        progress: Callable[[], float] = lambda: 0.0,
        bake_seconds: Optional[float] = None,
    ) -> str:
        """Read, judge and act until a move of `release.pacing` ends it: "promote" (the canary's
        last step passed), "baked", "rollback" or "inconclusive". `on_move("advance")` and
        `on_move("promote")` carry a canary's moves out."""
        rollout = self.config().rollout
        analysis, signals = rollout.analysis, self.signals()
        pacing = Pacing(analysis.max_inconclusive_seconds, analysis.min_step_requests, rollout.canary.steps, bake_seconds)
        state = judging_from(signals, analysis.alpha, history)
        started = self.clock()
        previous: Check = {}
        paced = Progress()
        step = 1
        while True:
            self.lease.check()
            last = self.clock()
            self.sleep(analysis.interval_seconds)
            now = self.clock()
            plan = plan_release(self.settings(), self.service)
            decision, state, previous, failed = self._check(state, previous, signals, analysis.beta, plan.namespaces, comparison, now - started, now - last, progress())
            if failed:
                now = self.clock()  # a query that hung until its timeout counts towards the hold
            weights: dict[str, int] = dict(plan.weights)
            observation = Observation(now - started, step, weights, decision.verdict, decision.reasons, decision.gates, phase)
            run.observations.append(observation)
            self.show(_progress(observation))
            self._record("analysis", phase=phase, step=step, weights=weights, verdict=decision.verdict, reasons=list(decision.reasons), gates=[g.__dict__ for g in decision.gates])
            move, paced = after_check(pacing, paced, decision, last, now, now - started, dict(plan.weights).get("canary", 0))
            if move in ("rollback", "inconclusive", "baked"):
                return move
            if move in ("advance", "promote") and on_move is not None:
                on_move(move)
                if move == "promote":
                    return move
                step += 1

    def _failure_reason(self, verdict: str, run: ReleaseRun) -> str:
        if verdict == "inconclusive":
            return f"inconclusive for {self.config().rollout.analysis.max_inconclusive_seconds} s: " + run.last_reasons
        return "analysis: " + run.last_reasons

    def _evidence(self, run: ReleaseRun) -> dict[str, Any]:
        """What a decision rests on, for the ledger's commit message: the last check."""
        return {"evidence": _progress(run.observations[-1])} if run.observations else {}

    def _end(self, run: ReleaseRun, verdict: str, failed: str, passed: str, on_pass: Optional[Action] = None) -> None:
        """After the analysis: abort (back to the replaced version) on a rollback or a long
        inconclusive, else `on_pass`."""
        if verdict in ("rollback", "inconclusive"):
            run.message = self._failure_reason(verdict, run)
            self._apply(actions.abort(self.settings(), self.service), drift_check=False, reason=run.message, **self._evidence(run))
            run.outcome = failed
            return
        if on_pass is not None:
            self._apply(on_pass, **self._evidence(run))
        run.outcome = passed

    def _run_canary(self, run: ReleaseRun) -> None:
        settings = self.settings()
        comparison = Comparison("track", "canary", "stable")
        rollout = self.config(settings).rollout
        analysis = rollout.analysis
        try:
            history = self._history(settings, comparison)
        except MetricsError as error:
            self.show(f"no baseline for stable ({error}): judging against stable's live numbers only")
            history = {}
        rate = request_rate(history, max(float(analysis.interval_seconds), self.history_step))
        steps = rollout.canary.steps

        def weight_after(current: int) -> int:
            return next_weight(steps, current, rate, analysis.interval_seconds, analysis.min_step_requests, analysis.step_budget_seconds)

        canary = rollout.canary
        if canary.tag is None:
            self._start(run.tag, weight_after(0))
        elif canary.tag != run.tag:
            raise Refused(f"stack {settings.stack}, service {self.service}: another canary ({canary.tag}) is deployed: promote or abort it first")
        else:
            self.show(f"resuming {run.tag} at {canary.weight} %")
            if canary.weight == 0 and canary.mirror is None:
                # Parked for testers only (a verification suite ran on the header route): patients come now.
                self.advance(weight_after(0))

        def on_move(move: str) -> None:
            if move == "promote":
                self.promote(**self._evidence(run))
            else:
                self.advance(weight_after(self.config().rollout.canary.weight), **self._evidence(run))

        def progress() -> float:
            return self.config().rollout.canary.weight / 100

        verdict = self._guarded(lambda: self._analysis_loop(run, comparison, history, "canary", on_move, progress))
        self._end(run, verdict, "rolled back", "promoted")

    def _run_blue_green(self, run: ReleaseRun, keep_replaced: bool) -> None:
        settings = self.settings()
        if self.config(settings).rollout.in_flight is None:
            self._start(run.tag)
            settings = self.settings()
        rollout = self.config(settings).rollout
        candidate = next(c for c in COLOURS if getattr(rollout.blue_green, c).tag == run.tag)
        replaced = idle_colour(candidate)
        comparison = Comparison("track", candidate, replaced)
        switched = actions.switched(settings, self.service)
        if not switched:
            failures = self._smoke(settings)
            if failures:
                run.message = "smoke checks failed on the idle colour: " + "; ".join(failures)
                self._apply(actions.abort(settings, self.service), drift_check=False, reason=run.message)
                run.outcome = "stopped"
                return
        try:
            history = self._history(settings, comparison)
            missing = [s.name for s in self.signals() if s.critical and s.statistical and not history.get(s.name)]
        except MetricsError as error:
            history, missing = {}, [f"metrics unavailable: {error}"]
        if missing and not switched:
            run.outcome = "stopped"
            run.message = f"no baseline for {replaced} ({', '.join(missing)}): not switching to a colour that could not be judged; `run` again once Prometheus has it, or abort"
            self._record("baseline-missing", colour=replaced, missing=missing)
            return
        if switched:
            self.show(f"resuming {run.tag}: {candidate} serves production, baking")
        else:
            self.switch(**{"smoke": "passed"})
        bake = self._guarded(lambda: self._analysis_loop(run, comparison, history, "bake", bake_seconds=rollout.analysis.bake_seconds))
        self._end(run, bake, "switched back", "switched", None if keep_replaced else actions.complete(self.settings(), self.service))

    # --- after a promotion: the watch ---------------------------------------------

    def serves(self, tag: str) -> bool:
        """The stack file still has `tag` as the service's released version: a canary's stable with
        nothing in flight, or the blue/green or rolling release of `tag` kept in flight for its watch."""
        config = self.config()
        in_flight = config.rollout.in_flight
        if config.rollout.strategy == "canary":
            return in_flight is None and config.tag == tag
        return in_flight is not None and in_flight.tag == tag and (config.rollout.strategy != "blue-green" or actions.switched(self.settings(), self.service))

    def watch(self, tag: str, previous: Optional[str], promoted_at: float, until: float, baseline_end: float) -> Watch:
        """After a promotion, until `until` (wall-clock seconds): judge `tag` against `previous`'s
        numbers from before its release (Prometheus's history of its `version` label up to
        `baseline_end`), every interval, counting from `promoted_at`, so a watch resumed after a
        restart judges everything since the promotion at once. A rollback verdict rolls the stage
        back at once (`revert` after a canary; `abort` of a blue/green or rolling release kept in
        flight, which switches back to the colour kept for the window). No usable data for
        `maxInconclusiveSeconds` ends it "inconclusive" and the stage keeps the version: rolling
        back blind would be a decision without evidence. A stack file that no longer serves `tag`
        (a later release, a hand edit) ends it "superseded", untouched. It says "healthy" only once
        the window is over and at least two checks had data (one alone never decides: a watch
        resumed after its window judges it then, and a watch without data ends inconclusive). At
        the end a release kept in flight completes."""
        started = self.clock()
        if previous is None:
            return self._watched(tag, Watch("unwatched", ("no previous version to compare with",), 0.0), complete=True)
        settings = self.settings()
        analysis, signals = self.config(settings).rollout.analysis, self.signals()
        namespaces = plan_release(settings, self.service).namespaces
        comparison = Comparison("version", tag, previous)
        try:
            history = self._history(settings, comparison, until=baseline_end)
        except MetricsError as error:
            self.show(f"{self.where}: no recorded numbers for {previous} ({error}): the watch judges on what it reads")
            history = {}
        state = judging_from(signals, analysis.alpha, history)
        pacing = Pacing(analysis.max_inconclusive_seconds, analysis.min_step_requests, bake_seconds=math.inf)  # only a rollback or no data ends it early
        previous_check: Check = {}
        paced = Progress()
        self._record("watch", event="started", tag=tag, previous=previous, until=until)
        # A watch resumed after its window still judges it before it says healthy: two checks at least,
        # since the judge never decides on one check alone (a burst cannot).
        checks = 0
        while True:
            self.lease.check()
            if not self.serves(tag):
                return self._watched(tag, Watch("superseded", (f"the stack file no longer serves {tag}",), self.clock() - started))
            left = until - self.wall_clock()
            if left <= 0 and checks >= 2:
                return self._watched(tag, Watch("healthy", (), self.clock() - started), complete=True)
            last = self.clock()
            self.sleep(min(float(analysis.interval_seconds), left) if left > 0 else float(analysis.interval_seconds))
            now = self.clock()
            decision, state, previous_check, failed = self._check(state, previous_check, signals, analysis.beta, namespaces, comparison, self.wall_clock() - promoted_at, now - last, 1.0)
            if failed:
                now = self.clock()
            checks += 0 if decision.inconclusive else 1
            self._record("analysis", phase="watch", verdict=decision.verdict, reasons=list(decision.reasons), gates=[g.__dict__ for g in decision.gates])
            said = "regression" if decision.verdict == "rollback" else "no data" if decision.inconclusive else "healthy"
            self.show(f"{self.where}: watch {now - started:5.0f}s -> {said}" + (f" ({'; '.join(decision.reasons)})" if said != "healthy" else ""))
            move, paced = after_check(pacing, paced, decision, last, now, now - started, 100)
            if move == "rollback":
                reason = "watch: " + "; ".join(decision.reasons)
                settings = self.settings()
                kept = self.config(settings).rollout.in_flight is not None
                action = actions.abort(settings, self.service) if kept else actions.revert(settings, self.service, previous)
                self._apply(action, drift_check=False, reason=reason)
                return self._watched(tag, Watch("rolled back", decision.reasons, now - started))
            if move == "inconclusive":
                return self._watched(tag, Watch("inconclusive", decision.reasons, now - started))

    def complete_kept(self, reason: str) -> None:
        """End a release kept in flight after it passed (`run(keep_replaced=True)`): its record goes,
        blue/green's replaced colour shrinks to `idleReplicas`. Nothing kept: nothing to do."""
        if self.config().rollout.in_flight is not None:
            self._apply(actions.complete(self.settings(), self.service), reason=reason)

    def _watched(self, tag: str, result: Watch, complete: bool = False) -> Watch:
        if complete:
            self.complete_kept(f"watched {result.seconds:.0f} s: {result.outcome}")
        self._record("watch", event="ended", tag=tag, outcome=result.outcome, reasons=list(result.reasons))
        return result

    def _smoke(self, settings: Settings) -> list[str]:
        base = self.test_url(settings)
        if not base:
            self.show("smoke checks skipped: the stack has no test listener to reach (an offline stack); --test-url points them at a service")
            self._record("smoke", skipped="no test listener")
            return []
        failures = []
        for check in self.config(settings).rollout.analysis.smoke_checks:
            status = self.http_get(base + check.path)
            if status != check.status:
                failures.append(f"GET {check.path}: {status}, expected {check.status}")
        self._record("smoke", url=base, failures=failures)
        return failures

    def test_url(self, settings: Settings) -> str:
        """Where smoke checks go: `test_url` when given, else the service's rule on the test
        listener: the scheme of the stack's `url` output, on `edge.testPort`, under the service's
        `pathPrefix`, at its first host when it has hosts (its rule matches on the Host header,
        and under HTTPS the certificate names that host, so the host is the address, not a header
        beside the load balancer's name), else at the `url`'s own host. "" when the stack has no
        listener (an offline stack's outputs are mocks)."""
        if self._test_url is not None:
            return self._test_url.rstrip("/")
        if getattr(self.stack, "offline", False):
            return ""
        scheme, host, prefix = self._address(settings)
        return f"{scheme}://{host}:{settings.edge.test_port}{prefix}"

    def _address(self, settings: Settings) -> tuple[str, str, str]:
        """The service's address on the edge: the scheme of the stack's `url` output, its first host
        (else the `url`'s own host) and its `pathPrefix`."""
        config = self.config(settings)
        scheme, _, rest = str(self.stack.outputs().get("url", "")).partition("://")
        host = config.hosts[0] if config.hosts else rest.split("/")[0]
        return scheme, host, config.path_prefix or ""

    def verification_target(self, settings: Settings) -> tuple[str, str]:
        """Where a verification suite reaches the candidate before patients do, and the header it
        sends ("name: value", or ""): blue/green's test listener (`test_url`); for a canary, the
        service's public address (its first host, else the `url` output's, under its
        `pathPrefix`) with the testers' header. ("", ...) when the stack has no listener."""
        config = self.config(settings)
        if config.rollout.strategy == "blue-green":
            return self.test_url(settings), ""
        header = f"{config.rollout.canary.header.name}: {config.rollout.canary.header.value}"
        if getattr(self.stack, "offline", False):
            return "", header
        scheme, host, prefix = self._address(settings)
        return f"{scheme}://{host}{prefix}", header

    def _run_rolling(self, run: ReleaseRun, keep_replaced: bool) -> None:
        settings = self.settings()
        config = self.config(settings)
        in_flight = config.rollout.in_flight
        previous = in_flight.previous if in_flight and in_flight.previous else (config.tag or "")
        comparison = Comparison("version", run.tag, previous)
        try:
            history = self._history(settings, comparison)
        except MetricsError as error:
            self.show(f"no baseline for {previous} ({error}): judging against its live numbers while both serve")
            history = {}
        if in_flight is None:
            self._start(run.tag)
        else:
            self.show(f"resuming {run.tag} (replacing {previous}): baking")
        bake = self._guarded(lambda: self._analysis_loop(run, comparison, history, "bake", bake_seconds=config.rollout.analysis.bake_seconds))
        self._end(run, bake, "rolled back", "promoted", None if keep_replaced else actions.complete(self.settings(), self.service))

    def _guarded(self, loop: Callable[[], str]) -> str:
        """A failed `up` mid-release stops (traffic stays where it safely is) or, by flag, aborts."""
        try:
            return loop()
        except StackError as error:
            if self.abort_on_failure and not isinstance(error, Drift):
                self.abort(f"pulumi up failed: {error}")
            raise


def vet_image(images: Images, settings: Settings, service: str, tag: str) -> ImageReport:
    """The report of the service's image `tag`, when a release may start on it; else ImageRefused,
    saying why and listing every finding at or above the service's `imageScan.blockAt`."""
    repository, block_at = settings.repository(service), settings.service(service).image_scan.block_at
    try:
        report = images.describe(repository, tag)
    except ImagesError as error:
        vetting = Vetting(f"image {repository}:{tag} could not be vetted: {error}")
    else:
        vetting = vet(report, block_at)
        if vetting.passed:
            return report
    threshold = f" (threshold: carepath:services.{service}.imageScan.blockAt = {block_at})" if vetting.blocking else ""
    said = [f"stack {settings.stack}, service {service}: not started: {vetting.reason}{threshold}", *(f"  {f.describe()}" for f in vetting.blocking)]
    raise ImageRefused("\n".join(said))


def request_rate(history: dict[str, list[Reading]], step_seconds: float) -> float:
    """Requests per second before the release, from the `errors` signal's baseline (0: unknown,
    and `next_weight` then moves one step at a time)."""
    points = [r.total for r in history.get("errors", []) if isinstance(r, Ratio) and math.isfinite(r.total)]
    return sum(points) / (len(points) * step_seconds) if points else 0.0


def _progress(observation: Observation) -> str:
    parts = [f"{observation.phase} step {observation.step}", " / ".join(f"{t} {w}%" for t, w in observation.weights.items()), f"{observation.seconds:5.0f}s"]
    for gate in observation.gates:
        if gate.critical and gate.evidence is not None and gate.candidate is not None and gate.reference is not None:
            parts.append(f"{gate.gate} {gate.candidate:.3g}/{gate.reference:.3g} ({gate.evidence:+.1f})")
    verdict = observation.verdict + (f" ({'; '.join(observation.reasons)})" if observation.reasons else "")
    return " | ".join(parts) + f" -> {verdict}"


def http_status(url: str) -> int:
    """A GET's status code (0: no answer)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (the stack's own test listener)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0

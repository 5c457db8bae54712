"""The release driver: metric-gated progressive delivery through Pulumi.

It changes only the stack's config and runs `up`, so Pulumi stays the one owner
of every weight and the stack's config always says where a release stands:
rerunning `run` after Ctrl-C or a crash resumes from it.

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

Faults: no usable data for a critical signal, NaN, or a failed or malformed metrics
answer holds (inconclusive, never a pass); `maxInconclusiveSeconds` of it aborts with
that reason. A failed `up` stops with the error and leaves traffic where it is (or
aborts, with `abort_on_failure`); a held stack lock stops with a clear message. Every
decision goes to the audit log, tagged with the run's release id.
"""

from __future__ import annotations

import math
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Optional

from core.release import canary_move, canary_replicas, idle_colour, next_weight, plan_release
from core.settings import Settings, parse
from core.signals import Signal, catalogue
from release.audit import AuditLog
from release.judge import CANDIDATE, REFERENCE, Check, Decision, Ratio, Reading, judge, since, start
from release.ports import Metrics, MetricsError, Stack, StackError
from release.record import Observation, ReleaseRun

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


class Driver:
    def __init__(
        self,
        stack: Stack,
        metrics: Metrics,
        audit: AuditLog,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        show: Callable[[str], None] = print,
        abort_on_failure: bool = False,
        http_get: Optional[Callable[[str], int]] = None,
        wall_clock: Clock = time.time,
        history_step: float = HISTORY_STEP,
    ):
        self.stack, self.metrics, self.audit = stack, metrics, audit
        self.clock, self.sleep, self.show, self.wall_clock = clock, sleep, show, wall_clock
        self.abort_on_failure = abort_on_failure
        self.http_get = http_get or http_status
        self.history_step = history_step
        self.release_id: Optional[str] = None

    # --- state, read from the stack's config --------------------------------------

    def settings(self) -> Settings:
        return parse(self.stack.config(), self.stack.name, frozenset({"secrets"}))

    def signals(self) -> tuple[Signal, ...]:
        return catalogue(overrides=self.settings().rollout.analysis.signals)

    def _record(self, action: str, **details: Any) -> None:
        if self.release_id:
            details["release"] = self.release_id
        self.audit.record(action, **details)

    def _up(self, action: str, **details: Any) -> None:
        self._record(action, **details)
        try:
            self.stack.up()
        except StackError as error:
            self._record("up-failed", during=action, error=str(error))
            raise

    # --- canary ---------------------------------------------------------------

    def start(self, tag: str, first_weight: Optional[int] = None) -> None:
        """canary: the first step (`first_weight`, default the ladder's first); blue-green: the
        candidate on the idle colour; rolling: the new tag."""
        settings = self.settings()
        strategy = settings.rollout.strategy
        if strategy == "canary":
            # With a mirror, the release opens with a shadow step: weight 0, the canary judged on
            # copies of real requests (and testers') before any patient reaches it.
            first = 0 if settings.rollout.canary.mirror else (first_weight or settings.rollout.canary.steps[0])
            self.stack.set("rollout.canary.tag", tag)
            self.stack.set("rollout.canary.weight", first)
            # Pinned, so a later weight step changes only the VirtualService (see `advance`).
            self.stack.set("rollout.canary.replicas", canary_replicas(settings.chat_api.replicas, first))
            self._up("start", strategy=strategy, tag=tag, weight=first)
        elif strategy == "blue-green":
            idle = _idle(settings)
            self.stack.set(f"rollout.blueGreen.{idle}.tag", tag)
            # The candidate runs at full size: it is smoke-tested, then takes all traffic.
            self.stack.unset("rollout.blueGreen.idleReplicas")
            self._up("start", strategy=strategy, tag=tag, colour=idle)
        else:
            self.stack.set("chatApi.tag", tag)
            self._up("start", strategy=strategy, tag=tag, previous=settings.chat_api.tag)

    def advance(self, weight: Optional[int] = None) -> int:
        """The next canary step, or `weight` (promoting after the last); returns the new weight
        (0 once promoted).

        When the next weight needs more canary pods, they come first, in an update of their
        own (it waits for them to be ready); the weight step itself then changes only the
        VirtualService."""
        settings = self.settings()
        canary = settings.rollout.canary
        following = [step for step in canary.steps if step > canary.weight]
        if not following:
            self.promote()
            return 0
        weight = weight if weight in following else following[0]
        needed = canary_replicas(settings.chat_api.replicas, weight)
        if canary.replicas is None or canary.replicas < needed:
            self.stack.set("rollout.canary.replicas", needed)
            self._up("scale-canary", replicas=needed, for_weight=weight)
        self.stack.set("rollout.canary.weight", weight)
        self._up("advance", weight=weight, tag=canary.tag)
        return weight

    def promote(self) -> None:
        canary = self.settings().rollout.canary
        if canary.tag is None:
            raise StackError("no canary in flight to promote")
        self.stack.set("chatApi.tag", canary.tag)
        self.stack.unset("rollout.canary.tag")
        self.stack.unset("rollout.canary.replicas")
        self.stack.set("rollout.canary.weight", 0)
        self._up("promote", tag=canary.tag)

    def abort(self, reason: str = "requested") -> None:
        canary = self.settings().rollout.canary
        self.stack.unset("rollout.canary.tag")
        self.stack.unset("rollout.canary.replicas")
        self.stack.set("rollout.canary.weight", 0)
        self._up("abort", tag=canary.tag, reason=reason)

    # --- run: the whole release -------------------------------------------------

    def run(self, tag: str) -> ReleaseRun:
        settings = self.settings()
        run = ReleaseRun(stack=self.stack.name, tag=tag, strategy=settings.rollout.strategy)
        self.release_id = run.release_id
        self._record("release", tag=tag, strategy=run.strategy)
        try:
            if run.strategy == "canary":
                return self._run_canary(run)
            if run.strategy == "blue-green":
                return self._run_blue_green(run)
            return self._run_rolling(run)
        except StackError as error:
            self._record("stopped", error=str(error))
            run.outcome, run.message = "stopped", str(error)
            return run

    def _history(self, settings: Settings, comparison: Comparison) -> dict[str, list[Reading]]:
        """The reference's readings before the release, per `HISTORY_STEP`. Raises MetricsError."""
        analysis = settings.rollout.analysis
        return self.metrics.history(
            settings.namespace, self.signals(), comparison.by, comparison.reference,
            analysis.baseline_seconds, max(float(analysis.interval_seconds), self.history_step), self.wall_clock(),
        )

    def _analysis_loop(
        self,
        run: ReleaseRun,
        comparison: Comparison,
        history: dict[str, list[Reading]],
        phase: str,
        on_advance: Optional[Callable[[bool, bool], str]] = None,
        progress: Callable[[], float] = lambda: 0.0,
        bake_seconds: Optional[float] = None,
    ) -> str:
        """Read, judge and act until a verdict ends it: "advanced" (the last step passed),
        "baked" (`bake_seconds` passed and every critical gate accepts), "rollback" or
        "inconclusive" (no usable data for `maxInconclusiveSeconds`). On a passing check,
        `on_advance(accepted, filled)` (every critical gate accepts; the step has had
        `minStepRequests` candidate requests) answers "moved", "stay" or "done"."""
        settings = self.settings()
        analysis, signals = settings.rollout.analysis, self.signals()
        state = start(signals, analysis.alpha, history)
        started = self.clock()
        previous: Check = {}
        inconclusive_since: Optional[float] = None
        step, step_requests = 1, 0.0
        while True:
            last = self.clock()
            self.sleep(analysis.interval_seconds)
            now = self.clock()
            try:
                cumulative = self.metrics.read(settings.namespace, signals, comparison.by, comparison.groups, now - started, now - last)
                decision, state = judge(state, since(cumulative, previous, signals), signals, analysis.beta, progress())
                previous = cumulative
            except MetricsError as error:
                decision = Decision("hold", (f"inconclusive: metrics unavailable: {error}",), (), inconclusive=True)
            weights = dict(plan_release(self.settings()).weights)
            observation = Observation(now - started, step, weights, decision.verdict, decision.reasons, decision.gates, phase)
            run.observations.append(observation)
            self.show(_progress(observation))
            self._record("analysis", phase=phase, step=step, weights=weights, verdict=decision.verdict, reasons=list(decision.reasons), gates=[g.__dict__ for g in decision.gates])
            if decision.verdict == "rollback":
                return "rollback"
            if decision.inconclusive:
                inconclusive_since = last if inconclusive_since is None else inconclusive_since
                if now - inconclusive_since >= analysis.max_inconclusive_seconds:
                    return "inconclusive"
                continue
            inconclusive_since = None
            step_requests += decision.exposure
            if bake_seconds is not None:
                if now - started >= bake_seconds and decision.verdict == "promote":
                    return "baked"
                continue
            if on_advance is not None and decision.verdict in ("advance", "promote"):
                moved = on_advance(decision.verdict == "promote", step_requests >= analysis.min_step_requests)
                if moved == "done":
                    return "advanced"
                if moved == "moved":
                    step, step_requests = step + 1, 0.0

    def _failure_reason(self, verdict: str, run: ReleaseRun) -> str:
        settings = self.settings()
        if verdict == "inconclusive":
            return f"inconclusive for {settings.rollout.analysis.max_inconclusive_seconds} s: " + run.last_reasons
        return "analysis: " + run.last_reasons

    def _run_canary(self, run: ReleaseRun) -> ReleaseRun:
        settings = self.settings()
        tag = run.tag
        comparison = Comparison("track", "canary", "stable")
        analysis = settings.rollout.analysis
        try:
            history = self._history(settings, comparison)
        except MetricsError as error:
            self.show(f"no baseline for stable ({error}): judging against stable's live numbers only")
            history = {}
        rate = request_rate(history, max(float(analysis.interval_seconds), self.history_step))
        steps = settings.rollout.canary.steps

        def weight_after(current: int) -> int:
            return next_weight(steps, current, rate, analysis.interval_seconds, analysis.min_step_requests, analysis.step_budget_seconds)

        if settings.rollout.canary.tag != tag:
            if settings.rollout.canary.tag is not None:
                raise StackError(f"another canary ({settings.rollout.canary.tag}) is in flight: promote or abort it first")
            self.start(tag, weight_after(0))
        else:
            self.show(f"resuming {tag} at {settings.rollout.canary.weight} %")

        def on_advance(accepted: bool, filled: bool) -> str:
            current = self.settings().rollout.canary.weight
            move = canary_move(current, steps, accepted, filled)
            if move == "promote":
                self.promote()
                return "done"
            if move == "advance":
                self.advance(weight_after(current))
                return "moved"
            return "stay"

        def progress() -> float:
            return self.settings().rollout.canary.weight / 100

        verdict = self._guarded(lambda: self._analysis_loop(run, comparison, history, "canary", on_advance, progress))
        if verdict in ("rollback", "inconclusive"):
            run.message = self._failure_reason(verdict, run)
            self.abort(run.message)
            run.outcome = "rolled back"
        elif verdict == "advanced":
            run.outcome = "promoted"
        return run

    def _run_blue_green(self, run: ReleaseRun) -> ReleaseRun:
        settings = self.settings()
        idle = _idle(settings)
        active = settings.rollout.blue_green.active
        idle_replicas = settings.rollout.blue_green.idle_replicas  # restored once the release settles
        if getattr(settings.rollout.blue_green, idle).tag != run.tag:
            self.start(run.tag)
        failures = self._smoke(settings)
        if failures:
            run.outcome, run.message = "stopped", "smoke checks failed on the idle colour: " + "; ".join(failures)
            self._record("smoke-failed", colour=idle, failures=failures)
            return run
        comparison = Comparison("track", idle, active)
        try:
            history = self._history(settings, comparison)
            missing = [s.name for s in self.signals() if s.critical and s.statistical and not history.get(s.name)]
        except MetricsError as error:
            history, missing = {}, [f"metrics unavailable: {error}"]
        if missing:
            run.outcome = "stopped"
            run.message = f"no baseline for {active} ({', '.join(missing)}): not switching to a colour that could not be judged"
            self._record("baseline-missing", colour=active, missing=missing)
            return run
        self.stack.set("rollout.blueGreen.active", idle)
        self._up("switch", to=idle, tag=run.tag)
        bake = self._guarded(lambda: self._analysis_loop(run, comparison, history, "bake", bake_seconds=settings.rollout.analysis.bake_seconds))
        if bake in ("rollback", "inconclusive"):
            run.message = self._failure_reason(bake, run)
            self.stack.set("rollout.blueGreen.active", active)
            self._up("switch-back", to=active, reason=run.message)
            run.outcome = "switched back"
        else:
            run.outcome = "switched"
        if idle_replicas is not None:
            # Only now, with traffic settled, does the colour left idle shrink again.
            self.stack.set("rollout.blueGreen.idleReplicas", idle_replicas)
            self._up("scale-idle", replicas=idle_replicas)
        return run

    def _smoke(self, settings: Settings) -> list[str]:
        base = self.test_url(settings)
        failures = []
        for check in settings.rollout.analysis.smoke_checks:
            status = self.http_get(base + check.path)
            if status != check.status:
                failures.append(f"GET {check.path}: {status}, expected {check.status}")
        self._record("smoke", url=base, failures=failures)
        return failures

    def test_url(self, settings: Settings) -> str:
        """The test listener: the stack's `url` output on `edge.testPort`."""
        url = str(self.stack.outputs().get("url", ""))
        scheme, _, host = url.partition("://")
        return f"{scheme}://{host.split('/')[0]}:{settings.edge.test_port}"

    def _run_rolling(self, run: ReleaseRun) -> ReleaseRun:
        settings = self.settings()
        previous = settings.chat_api.tag or ""
        comparison = Comparison("version", run.tag, previous)
        try:
            history = self._history(settings, comparison)
        except MetricsError as error:
            self.show(f"no baseline for {previous} ({error}): judging against its live numbers while both serve")
            history = {}
        if previous != run.tag:
            self.start(run.tag)
        bake = self._guarded(lambda: self._analysis_loop(run, comparison, history, "bake", bake_seconds=settings.rollout.analysis.bake_seconds))
        if bake in ("rollback", "inconclusive"):
            run.message = self._failure_reason(bake, run)
            self.stack.set("chatApi.tag", previous)
            self._up("rollback", to=previous, reason=run.message)
            run.outcome = "rolled back"
        else:
            run.outcome = "promoted"
        return run

    def _guarded(self, loop: Callable[[], str]) -> str:
        """A failed `up` mid-release stops (traffic stays where it safely is) or aborts by flag."""
        try:
            return loop()
        except StackError:
            if self.abort_on_failure and self.settings().rollout.strategy == "canary":
                self.abort("pulumi up failed")
            raise


def _idle(settings: Settings) -> str:
    return idle_colour(settings.rollout.blue_green.active)


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

"""The release driver: metric-gated progressive delivery through Pulumi.

It changes only the stack's config and runs `up`, so Pulumi stays the one owner
of every weight and the stack's config always says where a release stands:
rerunning `run` after Ctrl-C or a crash resumes from it.

- canary: start at the first step (with `rollout.canary.mirror`, at a shadow step
  of weight 0 first); each `interval`, analyse (`release.analysis`) and advance,
  hold or abort; promote after the last step.
- blue-green: deploy the candidate to the idle colour, smoke-test it through the
  test listener, switch, bake while comparing it with the colour it replaced,
  switch back on failure.
- rolling: set the tag (Kubernetes rolls the pods), bake against the previous
  version's numbers, roll back to the previous tag on failure.

Faults: a failed metrics query holds (never advances blind) and `max_metric_errors`
in a row abort; a failed `up` stops with the error and leaves traffic where it
is (or aborts, with `abort_on_failure`); a held stack lock stops with a clear
message. Every decision goes to the audit log.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from core.settings import AnalysisSettings, Settings, parse
from core.release import canary_replicas, idle_colour, plan_release
from release.analysis import AnalysisState, Gates, TrackSample, analyse
from release.audit import AuditLog
from release.ports import Metrics, MetricsError, Stack, StackError

Clock = Callable[[], float]
Sleep = Callable[[float], None]


def gates_from(analysis: AnalysisSettings) -> Gates:
    return Gates(
        alpha=analysis.alpha,
        beta=analysis.beta,
        good_factor=analysis.good_factor,
        bad_factor=analysis.bad_factor,
        min_step_requests=analysis.min_step_requests,
        latency_tolerance=analysis.latency_tolerance,
        latency_breaches=analysis.latency_breaches,
    )


@dataclass
class Observation:
    """One analysis, for the progress line, the audit log and the report."""

    seconds: float
    step: int
    weights: dict[str, int]
    samples: dict[str, TrackSample]
    verdict: str
    reasons: tuple[str, ...]
    llr: Optional[float] = None


@dataclass
class ReleaseRun:
    outcome: str = "running"  # promoted | rolled back | switched | switched back | stopped
    observations: list[Observation] = field(default_factory=list)
    message: str = ""

    @property
    def last_reasons(self) -> str:
        """Why the last analysis decided as it did (no analysis: the metrics never answered)."""
        return "; ".join(self.observations[-1].reasons) if self.observations else "metrics unavailable"


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
    ):
        self.stack, self.metrics, self.audit = stack, metrics, audit
        self.clock, self.sleep, self.show = clock, sleep, show
        self.abort_on_failure = abort_on_failure
        self.http_get = http_get or _http_status

    # --- state, read from the stack's config --------------------------------------

    def settings(self) -> Settings:
        return parse(self.stack.config(), self.stack.name, frozenset({"secrets"}))

    def _up(self, action: str, **details: Any) -> None:
        self.audit.record(action, **details)
        try:
            self.stack.up()
        except StackError as error:
            self.audit.record("up-failed", during=action, error=str(error))
            raise

    # --- canary ---------------------------------------------------------------

    def start(self, tag: str) -> None:
        settings = self.settings()
        strategy = settings.rollout.strategy
        if strategy == "canary":
            # With a mirror, the release opens with a shadow step: weight 0, the canary judged on
            # copies of real requests (and testers') before any patient reaches it.
            first = 0 if settings.rollout.canary.mirror else settings.rollout.canary.steps[0]
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

    def advance(self) -> int:
        """The next canary step (promoting after the last); returns the new weight (0 once promoted).

        When the next weight needs more canary pods, they come first, in an update of their
        own (it waits for them to be ready); the weight step itself then changes only the
        VirtualService."""
        settings = self.settings()
        canary = settings.rollout.canary
        following = [step for step in canary.steps if step > canary.weight]
        if not following:
            self.promote()
            return 0
        weight = following[0]
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
        strategy = self.settings().rollout.strategy
        try:
            if strategy == "canary":
                return self._run_canary(tag)
            if strategy == "blue-green":
                return self._run_blue_green(tag)
            return self._run_rolling(tag)
        except StackError as error:
            self.audit.record("stopped", error=str(error))
            return ReleaseRun("stopped", message=str(error))

    def _analysis_loop(
        self,
        run: ReleaseRun,
        judge: Callable[[dict[str, TrackSample], AnalysisState], Any],
        on_advance: Optional[Callable[[], bool]],
        limit: Optional[float],
    ) -> str:
        """Sample, judge and act until a verdict ends it; returns "advanced", "rollback" or "baked".
        Stepping (`on_advance`, which returns False once the last step is done) runs until it ends;
        a bake (`limit` seconds) ends on the first pass after the limit."""
        settings = self.settings()
        analysis = settings.rollout.analysis
        started = step_started = self.clock()
        state, metric_errors, step = AnalysisState(), 0, 1
        while True:
            self.sleep(analysis.interval_seconds)
            now = self.clock()
            try:
                samples = self.metrics.sample(settings.namespace, now - started, now - step_started)
                metric_errors = 0
            except MetricsError as error:
                metric_errors += 1
                self.show(f"metrics unavailable ({metric_errors}/{analysis.max_metric_errors}): {error}; holding")
                self.audit.record("hold", reason=f"metrics unavailable: {error}", consecutive=metric_errors)
                if metric_errors >= analysis.max_metric_errors:
                    return "rollback"
                continue
            decision = judge(samples, state)
            state = decision.state
            settings = self.settings()
            observation = Observation(now - started, step, dict(plan_release(settings).weights), samples, decision.verdict, decision.reasons, decision.llr)
            run.observations.append(observation)
            self.show(_progress(observation, now - step_started))
            self.audit.record("analysis", step=step, weights=observation.weights, samples={t: s.__dict__ for t, s in samples.items()}, verdict=decision.verdict, reasons=list(decision.reasons), gates=decision.gates, llr=decision.llr)
            if decision.verdict == "rollback":
                return "rollback"
            # A bake ends on a pass only: too little data keeps it watching.
            if limit is not None and now - started >= limit and decision.verdict == "advance":
                return "baked"
            if decision.verdict == "advance" and on_advance is not None:
                if not on_advance():
                    return "advanced"
                step, step_started = step + 1, self.clock()

    def _run_canary(self, tag: str) -> ReleaseRun:
        settings = self.settings()
        if settings.rollout.canary.tag != tag:
            if settings.rollout.canary.tag is not None:
                raise StackError(f"another canary ({settings.rollout.canary.tag}) is in flight: promote or abort it first")
            self.start(tag)
        else:
            self.show(f"resuming {tag} at {settings.rollout.canary.weight} %")
        gates = gates_from(settings.rollout.analysis)
        run = ReleaseRun()

        def judge(samples: dict[str, TrackSample], state: AnalysisState):
            return analyse(samples.get("canary", TrackSample(0, 0)), samples.get("stable", TrackSample(0, 0)), gates, state)

        def on_advance() -> bool:
            return self.advance() != 0  # False once promoted

        verdict = self._guarded(lambda: self._analysis_loop(run, judge, on_advance, None), run)
        if verdict == "rollback":
            self.abort("analysis: " + run.last_reasons)
            run.outcome = "rolled back"
        elif verdict == "advanced":
            run.outcome = "promoted"
        return run

    def _baseline(self, track: str) -> TrackSample:
        """The serving version's numbers before a change, to judge its replacement against."""
        settings = self.settings()
        window = max(settings.rollout.analysis.bake_seconds, 60)
        try:
            return self.metrics.sample(settings.namespace, window, window).get(track, TrackSample(0, 0))
        except MetricsError:
            return TrackSample(0, 0)

    def _bake(self, run: ReleaseRun, track: str, baseline: TrackSample) -> str:
        settings = self.settings()
        gates = gates_from(settings.rollout.analysis)

        def judge(samples: dict[str, TrackSample], state: AnalysisState):
            return analyse(samples.get(track, TrackSample(0, 0)), baseline, gates, state)

        return self._guarded(lambda: self._analysis_loop(run, judge, None, settings.rollout.analysis.bake_seconds), run)

    def _run_blue_green(self, tag: str) -> ReleaseRun:
        settings = self.settings()
        idle = _idle(settings)
        active = settings.rollout.blue_green.active
        idle_replicas = settings.rollout.blue_green.idle_replicas  # restored once the release settles
        run = ReleaseRun()
        if getattr(settings.rollout.blue_green, idle).tag != tag:
            self.start(tag)
        failures = self._smoke(settings)
        if failures:
            run.outcome, run.message = "stopped", "smoke checks failed on the idle colour: " + "; ".join(failures)
            self.audit.record("smoke-failed", colour=idle, failures=failures)
            return run
        baseline = self._baseline(active)
        self.stack.set("rollout.blueGreen.active", idle)
        self._up("switch", to=idle, tag=tag)
        if self._bake(run, idle, baseline) == "rollback":
            self.stack.set("rollout.blueGreen.active", active)
            self._up("switch-back", to=active, reason=run.last_reasons)
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
        self.audit.record("smoke", url=base, failures=failures)
        return failures

    def test_url(self, settings: Settings) -> str:
        """The test listener: the stack's `url` output on `edge.testPort`."""
        url = str(self.stack.outputs().get("url", ""))
        scheme, _, host = url.partition("://")
        return f"{scheme}://{host.split('/')[0]}:{settings.edge.test_port}"

    def _run_rolling(self, tag: str) -> ReleaseRun:
        settings = self.settings()
        previous = settings.chat_api.tag
        run = ReleaseRun()
        baseline = self._baseline("stable")
        if previous != tag:
            self.start(tag)
        if self._bake(run, "stable", baseline) == "rollback":
            self.stack.set("chatApi.tag", previous)
            self._up("rollback", to=previous, reason=run.last_reasons)
            run.outcome = "rolled back"
        else:
            run.outcome = "promoted"
        return run

    def _guarded(self, loop: Callable[[], str], run: ReleaseRun) -> str:
        """A failed `up` mid-release stops (traffic stays where it safely is) or aborts by flag."""
        try:
            return loop()
        except StackError:
            if self.abort_on_failure and self.settings().rollout.strategy == "canary":
                self.abort("pulumi up failed")
            raise


def _idle(settings: Settings) -> str:
    return idle_colour(settings.rollout.blue_green.active)


def _progress(observation: Observation, in_step: float) -> str:
    parts = [f"step {observation.step}", " / ".join(f"{t} {w}%" for t, w in observation.weights.items()), f"{in_step:4.0f}s in step"]
    for track, sample in sorted(observation.samples.items()):
        ratio = sample.error_ratio
        p95 = f"{sample.p95_seconds:.2f}s" if sample.p95_seconds is not None else "-"
        parts.append(f"{track}: {sample.requests:.0f} req, {ratio * 100:.2f}% 5xx, p95 {p95}" if ratio is not None else f"{track}: no requests")
    verdict = f"{observation.verdict}" + (f" ({'; '.join(observation.reasons)})" if observation.reasons else "")
    return " | ".join(parts) + f" -> {verdict}"


def _http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (the stack's own test listener)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0

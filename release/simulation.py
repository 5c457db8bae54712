"""Simulated canary releases on a traffic model the judge does not assume, judged three ways:
this project's judge (`release.judge` over the signal catalogue) and Flagger's rule at
thresholds 1 and 5.

The traffic model (`Traffic`), per second and per track:

- requests: Poisson at `rps` x the track's weight;
- 5xx: binomial at the track's ratio; with `bursts`, half of them arrive in bursts of
  2-10 s (a pod restarting, a GPU stall) during which the ratio is 30x its mean and the
  answers that do come are 3x slower: counts are overdispersed and correlated in time;
  `leak` raises the candidate's ratio linearly to 10 % over ten minutes;
- request duration: log-normal (median 120 ms), read through Prometheus's default
  histogram buckets; time to first token, time per output token and output tokens through
  the OpenTelemetry GenAI buckets;
- business counters: a quarter of requests are triages (95 % succeed), one conversation
  per three requests (2 % complain), refusals and safety-filter hits 1 % of answers;
- metrics can be missing for the candidate's first minute, or NaN throughout.

Flagger as its scheduler behaves (fluxcd/flagger `pkg/controller/scheduler.go`,
`scheduler_metrics.go`): a tick every 60 s; a check fails when the canary's request
success rate over the last minute is under 99 %, its p99 (histogram_quantile over the
default buckets) over 500 ms, or a query has no value; failed checks are never reset;
the first tick after they reach the threshold rolls back; a passing tick advances the
weight, and a passing tick at the last step promotes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Optional, Sequence

import numpy as np

from core.release import next_weight
from core.signals import CHAT_API, Signal
from release.driver import HISTORY_STEP, request_rate
from release.judge import CANDIDATE, REFERENCE, Check, Histogram, Level, Ratio, Reading, judge, start
from release.pacing import Pacing, Progress, after_check

Outcome = Literal["promoted", "rolled back", "undecided"]
STEPS = (1, 5, 10, 25, 50, 75, 100)
PROMETHEUS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536)
LEAK_SECONDS, LEAK_TO = 600, 0.10


@dataclass(frozen=True)
class Behaviour:
    """One version's behaviour."""

    error_ratio: float = 0.005
    latency: float = 0.12  # median request duration, s
    ttft: float = 0.35
    tpot: float = 0.03
    output_tokens: float = 180.0
    triage_success: float = 0.95
    complaints: float = 0.02
    refusals: float = 0.01
    safety: float = 0.01


@dataclass(frozen=True)
class Scenario:
    name: str
    canary: Behaviour = Behaviour()
    stable: Behaviour = Behaviour()
    rps: float = 100.0
    bursts: bool = False
    leak: bool = False
    missing_seconds: int = 0  # the candidate's metrics appear only after this
    nan: bool = False  # Prometheus answers NaN for the candidate
    bad: bool = False  # a candidate that must not be promoted


def scenarios() -> list[Scenario]:
    """The bench's scenarios: as good as stable, worse by degrees, and the ways traffic and
    metrics break the easy assumptions."""
    worse = lambda factor: Behaviour(error_ratio=0.005 * factor)  # noqa: E731
    return [
        Scenario("good (as stable)"),
        Scenario("1.5x stable 5xx", worse(1.5)),
        Scenario("5x stable 5xx", worse(5), bad=True),
        Scenario("10x stable 5xx", worse(10), bad=True),
        Scenario("broken (50 % 5xx)", Behaviour(error_ratio=0.5), bad=True),
        Scenario("bursts, good", bursts=True),
        Scenario("bursts, 10x", worse(10), bursts=True, bad=True),
        Scenario("5 req/s, good", rps=5),
        Scenario("5 req/s, 10x", worse(10), rps=5, bad=True),
        Scenario("1000 req/s, good", rps=1000),
        Scenario("leak to 10 % in 10 min", leak=True, bad=True),
        Scenario("stable at 2 %, good", Behaviour(error_ratio=0.02), Behaviour(error_ratio=0.02)),
        Scenario("triage 95 -> 85 %", Behaviour(triage_success=0.85), bad=True),
        Scenario("first token +40 %", Behaviour(ttft=0.35 * 1.4), bad=True),
        Scenario("answers twice as long", Behaviour(output_tokens=360.0), bad=True),
        Scenario("canary metrics late 60 s", missing_seconds=60),
        Scenario("Prometheus answers NaN", nan=True, bad=True),
    ]


def _lognormal_shares(median: float, sigma: float, bounds: Sequence[float]) -> np.ndarray:
    """The share of a log-normal in each bucket (the last one open-ended)."""
    z = (np.log(np.asarray(bounds, dtype=float)) - math.log(median)) / sigma
    cdf = 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    return np.diff(np.concatenate(([0.0], cdf, [1.0])))


def _histogram(rng: np.random.Generator, count: int, median: float, sigma: float, bounds: Sequence[float]) -> np.ndarray:
    return rng.multinomial(count, _lognormal_shares(median, sigma, bounds)) if count else np.zeros(len(bounds) + 1, dtype=int)


def _cumulative(bounds: Sequence[float], counts: np.ndarray) -> Histogram:
    running = np.cumsum(counts)
    return Histogram(tuple(zip([*map(float, bounds), math.inf], map(float, running), strict=True)))


@dataclass
class _Track:
    behaviour: Behaviour
    burst_left: int = 0


@dataclass
class Traffic:
    """The traffic of one release: `interval(weights)` yields the next `seconds` of it."""

    scenario: Scenario
    rng: np.random.Generator
    now: int = 0
    tracks: dict[str, _Track] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tracks = {"stable": _Track(self.scenario.stable), "canary": _Track(self.scenario.canary)}

    def _ratio(self, track: str, second: int) -> float:
        base = self.tracks[track].behaviour.error_ratio
        if self.scenario.leak and track == "canary":
            return base + (LEAK_TO - base) * min(second / LEAK_SECONDS, 1.0)
        return base

    def _second(self, track: str, requests: int, second: int) -> tuple[int, bool]:
        """Failures in one second, and whether the track is in a burst."""
        state, ratio = self.tracks[track], self._ratio(track, second)
        if not self.scenario.bursts:
            return int(self.rng.binomial(requests, ratio)), False
        burst_ratio = min(30 * ratio, 1.0)
        if state.burst_left == 0 and self.rng.random() < 0.5 * ratio / burst_ratio / 6:  # 6 s mean length
            state.burst_left = int(self.rng.integers(2, 11))
        if state.burst_left:
            state.burst_left -= 1
            return int(self.rng.binomial(requests, burst_ratio)), True
        return int(self.rng.binomial(requests, 0.5 * ratio)), False

    def interval(self, weights: dict[str, float], seconds: int) -> dict[str, dict[str, Reading]]:
        """Per track, what Prometheus would answer for each signal over the next `seconds`."""
        readings: dict[str, dict[str, Reading]] = {}
        for track, weight in weights.items():
            b = self.tracks[track].behaviour
            per_second = self.rng.poisson(self.scenario.rps * weight / 100, seconds)
            failures = slow = 0
            for offset, n in enumerate(per_second):
                bad, burst = self._second(track, int(n), self.now + offset)
                failures += bad
                if burst:
                    slow += int(n) - bad
            n = int(per_second.sum())
            answers = n - failures
            latency = _histogram(self.rng, answers - slow, b.latency, 0.5, PROMETHEUS_BUCKETS) + _histogram(self.rng, slow, 3 * b.latency, 0.5, PROMETHEUS_BUCKETS)
            latency_histogram = _cumulative(PROMETHEUS_BUCKETS, latency)
            triages = int(self.rng.binomial(n, 0.25))
            conversations = int(self.rng.binomial(n, 1 / 3))
            readings[track] = {
                "errors": Ratio(failures, n),
                "latency-p50": latency_histogram,
                "latency-p95": latency_histogram,
                "latency-p99": latency_histogram,
                "time-to-first-token": _cumulative(TTFT_BUCKETS, _histogram(self.rng, answers, b.ttft, 0.35, TTFT_BUCKETS)),
                "time-per-output-token": _cumulative(TPOT_BUCKETS, _histogram(self.rng, answers, b.tpot, 0.3, TPOT_BUCKETS)),
                "output-tokens": _cumulative(TOKEN_BUCKETS, _histogram(self.rng, answers, b.output_tokens, 0.6, TOKEN_BUCKETS)),
                "triage-success": Ratio(int(self.rng.binomial(triages, 1 - b.triage_success)), triages),
                "complaints": Ratio(int(self.rng.binomial(conversations, b.complaints)), conversations),
                "refusals": Ratio(int(self.rng.binomial(answers, b.refusals)), answers),
                "safety-filter": Ratio(int(self.rng.binomial(answers, b.safety)), answers),
                "restarts": Level(0.0),
                "pods-not-ready": Level(0.0),
                "cpu": Level(0.3, 1.0),
                "memory": Level(6e8, 2**31),
            }
        self.now += seconds
        return readings


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    seconds: int  # to the final decision
    failed_by_canary: int  # canary requests that failed (5xx) before the decision
    reason: str = ""


def baseline(traffic: Traffic, seconds: int, interval: int) -> dict[str, list[Reading]]:
    """Stable alone, before the release: what the judge is primed with."""
    history: dict[str, list[Reading]] = {}
    for _ in range(seconds // interval):
        for signal, reading in traffic.interval({"stable": 100}, interval)["stable"].items():
            history.setdefault(signal, []).append(reading)
    return history


def _as_seen(scenario: Scenario, second: int, reading: Reading) -> Optional[Reading]:
    """The candidate's reading as Prometheus would answer it."""
    if second <= scenario.missing_seconds:
        return None
    if scenario.nan:
        return Ratio(math.nan, math.nan) if isinstance(reading, Ratio) else Level(math.nan)
    return reading


def ours(
    scenario: Scenario,
    seed: int,
    signals: Sequence[Signal] = CHAT_API,
    alpha: float = 0.05,
    beta: float = 0.01,
    interval: int = 10,
    steps: Sequence[int] = STEPS,
    min_step_requests: int = 50,
    step_budget: int = 60,
    max_inconclusive: int = 300,
    baseline_seconds: int = 1800,
    limit: int = 3600,
) -> Result:
    """The driver's canary release on simulated traffic: its judge and its moves (`release.pacing`)."""
    rng = np.random.default_rng(seed)
    traffic = Traffic(scenario, rng)
    history = baseline(traffic, baseline_seconds, max(interval, int(HISTORY_STEP)))
    state = start(signals, alpha, history)
    rps = request_rate(history, max(interval, HISTORY_STEP))
    traffic.now = failed = 0
    weight = next_weight(steps, 0, rps, interval, min_step_requests, step_budget)
    pacing, progress = Pacing(max_inconclusive, min_step_requests, steps), Progress()
    for second in range(interval, limit + 1, interval):
        readings = traffic.interval({"canary": weight, "stable": 100 - weight}, interval)
        failed += int(readings["canary"]["errors"].bad)  # type: ignore[union-attr]
        check: Check = {
            name: {
                k: v
                for k, v in ((CANDIDATE, _as_seen(scenario, second, readings["canary"][name])), (REFERENCE, readings["stable"][name]))
                if v is not None
            }
            for name in readings["canary"]
        }
        decision, state = judge(state, check, signals, beta, weight / 100)
        move, progress = after_check(pacing, progress, decision, second - interval, second, second, weight)
        if move in ("rollback", "inconclusive"):
            return Result("rolled back", second, failed, decision.reasons[0])
        if move == "promote":
            return Result("promoted", second, failed)
        if move == "advance":
            weight = next_weight(steps, weight, rps, interval, min_step_requests, step_budget)
    return Result("undecided", limit, failed)


def _quantile(histogram: Histogram, q: float) -> float:
    """Prometheus's histogram_quantile: linear within the bucket, the last finite bound beyond."""
    total = histogram.total
    if total <= 0:
        return math.nan
    rank, lower, below = q * total, 0.0, 0.0
    for le, count in histogram.buckets:
        if count >= rank:
            if math.isinf(le):
                return lower
            return lower + (le - lower) * (rank - below) / (count - below) if count > below else le
        lower, below = le, count
    return lower


def flagger(scenario: Scenario, seed: int, threshold: int, steps: Sequence[int] = STEPS, limit: int = 3600) -> Result:
    rng = np.random.default_rng(seed)
    traffic = Traffic(scenario, rng)
    step = failed_checks = failed = 0
    for second in range(60, limit + 1, 60):
        weight = steps[step]
        canary = traffic.interval({"canary": weight, "stable": 100 - weight}, 60)["canary"]
        errors, latency = canary["errors"], canary["latency-p99"]
        assert isinstance(errors, Ratio) and isinstance(latency, Histogram)
        failed += int(errors.bad)  # the canary served the minute up to this tick
        if failed_checks >= threshold:
            return Result("rolled back", second, failed)
        seen = _as_seen(scenario, second, errors)
        if seen is None or not isinstance(seen, Ratio) or not seen.total or math.isnan(seen.total):
            passed = False  # no value
        else:
            success = 1 - seen.bad / seen.total
            p99 = _quantile(latency, 0.99)
            passed = success >= 0.99 and not math.isnan(p99) and p99 <= 0.5
        if not passed:
            failed_checks += 1
            continue
        if step == len(steps) - 1:
            return Result("promoted", second, failed)
        step += 1
    return Result("undecided", limit, failed)


@dataclass(frozen=True)
class Summary:
    releases: int
    promoted: int
    rolled_back: int
    mean_failed: float
    mean_seconds_to_decision: float
    mean_seconds_to_promotion: Optional[float]

    @property
    def promotion_rate(self) -> float:
        return self.promoted / self.releases

    @property
    def rollback_rate(self) -> float:
        return self.rolled_back / self.releases


def summarise(results: Sequence[Result]) -> Summary:
    promoted = [r for r in results if r.outcome == "promoted"]
    return Summary(
        releases=len(results),
        promoted=len(promoted),
        rolled_back=sum(r.outcome == "rolled back" for r in results),
        mean_failed=sum(r.failed_by_canary for r in results) / len(results),
        mean_seconds_to_decision=sum(r.seconds for r in results) / len(results),
        mean_seconds_to_promotion=sum(r.seconds for r in promoted) / len(promoted) if promoted else None,
    )


def wald_floor(stable: float, canary: float, alpha: float = 0.05, beta: float = 0.05) -> float:
    """Expected failed requests before Wald's test that knew both ratios decides (its average
    sample number under the canary's ratio, times that ratio)."""
    upper, lower = math.log((1 - beta) / alpha), math.log(beta / (1 - alpha))
    drift = canary * math.log(canary / stable) + (1 - canary) * math.log((1 - canary) / (1 - stable))
    return canary * ((1 - beta) * upper + beta * lower) / drift

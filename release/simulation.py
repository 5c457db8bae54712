"""Seeded, second-by-second simulated canary releases, judged two ways:

- `ours`: the driver's loop, `release.analysis` every `interval` seconds;
- `flagger`: Flagger's documented default rule: every 60 s, the canary's success
  rate over the last minute must be >= 99 %; a passing check moves one step, a
  failing one counts, and 5 failed checks (`threshold: 5`, as in Flagger's
  tutorials) roll back.

Both see the same traffic: `rps` requests a second to the service, `weight` % of
them to the canary; each request fails with its track's error ratio. p95 latency
per check is the track's base p95 (1 s for stable) with 5 % noise.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal, Optional, Sequence

from release.analysis import AnalysisState, Gates, TrackSample, analyse

Outcome = Literal["promoted", "rolled back", "undecided"]
STEPS = (5, 10, 25, 50, 75, 100)


@dataclass(frozen=True)
class Scenario:
    name: str
    canary_error_ratio: float
    canary_latency_factor: float = 1.0
    stable_error_ratio: float = 0.005
    rps: int = 100


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    seconds: int  # to the final decision
    failed_by_canary: int  # canary requests that failed before the decision


def _traffic(rng: random.Random, scenario: Scenario, weight: int) -> tuple[int, int, int, int]:
    canary = round(scenario.rps * weight / 100)
    stable = scenario.rps - canary
    canary_errors = sum(rng.random() < scenario.canary_error_ratio for _ in range(canary))
    stable_errors = sum(rng.random() < scenario.stable_error_ratio for _ in range(stable))
    return canary, canary_errors, stable, stable_errors


def _p95(rng: random.Random, factor: float) -> float:
    return factor * (1 + rng.gauss(0, 0.05))


def ours(scenario: Scenario, seed: int, gates: Gates = Gates(), interval: int = 10, steps: Sequence[int] = STEPS, limit: int = 3600) -> Result:
    rng = random.Random(seed)
    step, state = 0, AnalysisState()
    canary_n = canary_e = stable_n = stable_e = step_n = failed = 0
    for second in range(1, limit + 1):
        c, ce, s, se = _traffic(rng, scenario, steps[step])
        canary_n, canary_e, stable_n, stable_e, step_n, failed = canary_n + c, canary_e + ce, stable_n + s, stable_e + se, step_n + c, failed + ce
        if second % interval:
            continue
        decision = analyse(
            TrackSample(canary_n, canary_e, step_n, _p95(rng, scenario.canary_latency_factor)),
            TrackSample(stable_n, stable_e, 0, _p95(rng, 1.0)),
            gates,
            state,
        )
        state = decision.state
        if decision.verdict == "rollback":
            return Result("rolled back", second, failed)
        if decision.verdict == "advance":
            if step == len(steps) - 1:
                return Result("promoted", second, failed)
            step, step_n = step + 1, 0
    return Result("undecided", limit, failed)


def flagger(scenario: Scenario, seed: int, steps: Sequence[int] = STEPS, interval: int = 60, threshold: int = 5, min_success: float = 0.99, limit: int = 3600) -> Result:
    rng = random.Random(seed)
    step = failures = failed = window_n = window_e = 0
    for second in range(1, limit + 1):
        c, ce, _, _ = _traffic(rng, scenario, steps[step])
        window_n, window_e, failed = window_n + c, window_e + ce, failed + ce
        if second % interval:
            continue
        success = 1 - window_e / window_n if window_n else 1.0
        window_n = window_e = 0
        if success >= min_success:
            if step == len(steps) - 1:
                return Result("promoted", second, failed)
            step += 1
        else:
            failures += 1
            if failures >= threshold:
                return Result("rolled back", second, failed)
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

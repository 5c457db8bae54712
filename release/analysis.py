"""Canary analysis: advance, hold or roll back, from request counts and latency (pure).

Errors are judged by Wald's sequential probability ratio test (SPRT) on the
canary's requests, against stable's error ratio as the reference:

    H0 (good): the canary fails at  p0 = good_factor x stable's ratio
    H1 (bad):  the canary fails at  p1 = bad_factor  x stable's ratio

Each canary request adds log(p1/p0) if it failed and log((1-p1)/(1-p0)) if not.
The sum crossing A = log((1-beta)/alpha) decides "bad" (roll back); crossing
B = log(beta/(1-alpha)) decides "good". A clearly bad canary crosses A after a
few dozen requests; a good one crosses B as soon as its requests allow, not after
a fixed interval. Evidence accumulates over the whole release (the canary's
version does not change between steps).

The bound, as configured by default (alpha 0.05, beta 0.01): a canary failing at
`bad_factor` times stable's ratio or worse is promoted with probability at most
beta / (1 - alpha) ~= 1.05 % (Wald's bound, for checks on every request; checking
every `interval` only overshoots the boundaries, which lowers both error rates).
A good canary (at stable's ratio) is rolled back with probability at most
alpha / (1 - beta) ~= 5.05 %. `make bench` measures both on simulated releases.

Beyond the SPRT: a step advances only with at least `min_step_requests` canary
requests in it (too little data is "inconclusive: hold", never a pass), and p95
latency must stay within `latency_tolerance` x stable's; `latency_breaches`
consecutive breaches roll back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Optional

Verdict = Literal["advance", "hold", "rollback"]


@dataclass(frozen=True)
class Gates:
    alpha: float = 0.05  # bound on rolling back a good canary
    beta: float = 0.01  # bound on promoting a bad canary
    good_factor: float = 2.0
    bad_factor: float = 5.0
    floor_ratio: float = 0.001  # stable's ratio is never taken below this (a flawless stable)
    min_step_requests: int = 50
    latency_tolerance: float = 1.25
    latency_breaches: int = 3

    @property
    def upper(self) -> float:
        return math.log((1 - self.beta) / self.alpha)

    @property
    def lower(self) -> float:
        return math.log(self.beta / (1 - self.alpha))


@dataclass(frozen=True)
class TrackSample:
    """What Prometheus says about one track: totals since the canary started, and in this step."""

    requests: float
    errors: float
    step_requests: float = 0.0
    p95_seconds: Optional[float] = None

    @property
    def error_ratio(self) -> Optional[float]:
        return self.errors / self.requests if self.requests > 0 else None


@dataclass(frozen=True)
class AnalysisState:
    latency_breaches: int = 0


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reasons: tuple[str, ...]
    llr: float
    gates: dict = field(default_factory=dict)  # gate -> passed (True/False) or None (not judged)
    state: AnalysisState = AnalysisState()


def reference_ratio(stable: TrackSample, gates: Gates) -> float:
    """Stable's error ratio, smoothed (one pseudo-failure in 2/floor requests) and floored."""
    prior = 2 / gates.floor_ratio
    smoothed = (stable.errors + 1) / (stable.requests + prior)
    return max(smoothed, gates.floor_ratio)


def log_likelihood_ratio(canary: TrackSample, stable: TrackSample, gates: Gates) -> float:
    reference = reference_ratio(stable, gates)
    p0 = min(gates.good_factor * reference, 0.99)
    p1 = min(gates.bad_factor * reference, 0.999)
    successes = canary.requests - canary.errors
    return canary.errors * math.log(p1 / p0) + successes * math.log((1 - p1) / (1 - p0))


def analyse(canary: TrackSample, stable: TrackSample, gates: Gates, state: AnalysisState = AnalysisState()) -> Decision:
    llr = log_likelihood_ratio(canary, stable, gates)
    reasons: list[str] = []
    errors_bad = llr >= gates.upper
    errors_good = llr <= gates.lower
    enough = canary.step_requests >= gates.min_step_requests

    latency_ok: Optional[bool] = None
    breaches = state.latency_breaches
    if canary.p95_seconds is not None and stable.p95_seconds is not None and enough:
        latency_ok = canary.p95_seconds <= stable.p95_seconds * gates.latency_tolerance
        breaches = 0 if latency_ok else breaches + 1
    gate_results = {
        "errors": False if errors_bad else (True if errors_good else None),
        "requests": enough,
        "latency": latency_ok,
    }
    next_state = AnalysisState(latency_breaches=breaches)

    if errors_bad:
        reasons.append(f"error evidence {llr:.2f} >= {gates.upper:.2f}: the canary fails more than {gates.bad_factor:g}x stable")
        return Decision("rollback", tuple(reasons), llr, gate_results, next_state)
    if breaches >= gates.latency_breaches:
        reasons.append(f"p95 above {gates.latency_tolerance:g}x stable's in {breaches} checks in a row")
        return Decision("rollback", tuple(reasons), llr, gate_results, next_state)
    if not enough:
        reasons.append(f"inconclusive: {canary.step_requests:.0f} of {gates.min_step_requests} canary requests in this step")
    if not errors_good and not errors_bad:
        reasons.append(f"error evidence {llr:.2f} not yet below {gates.lower:.2f}")
    if latency_ok is False:
        reasons.append(f"p95 {canary.p95_seconds:.3f}s above {gates.latency_tolerance:g}x stable's {stable.p95_seconds:.3f}s")
    if enough and errors_good and latency_ok is not False:
        return Decision("advance", ("all gates pass",), llr, gate_results, next_state)
    return Decision("hold", tuple(reasons), llr, gate_results, next_state)

"""Doubles for the driver's outside world: a clock, and metrics simulated from the stack's own weights."""

from __future__ import annotations

import random
from typing import Optional

import pytest

from core.release import plan_release
from core.settings import parse
from release.analysis import TrackSample
from release.ports import MetricsError
from release.simulation import Scenario, _traffic


class FakeTime:
    """A clock that moves only when the driver sleeps; `limit` sleeps end the run like Ctrl-C."""

    def __init__(self, limit: int = 10_000):
        self.now, self.sleeps, self.limit = 0.0, 0, limit

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        if self.sleeps > self.limit:
            raise KeyboardInterrupt
        self.now += seconds


class SimulatedMetrics:
    """Traffic at the stack's current weights (read from its config), accumulated as Prometheus
    would count it; tracks as the stack names them."""

    def __init__(self, stack, scenario: Scenario, seed: int = 7, failing: int = 0, empty: bool = False, candidate: str = "v2.0.0"):
        self.stack, self.scenario, self.rng, self.candidate = stack, scenario, random.Random(seed), candidate
        self.failing, self.empty = failing, empty
        self.totals: dict[str, list[float]] = {}
        self.step_requests: dict[str, float] = {}
        self.last_release = self.last_step = 0.0
        self.calls = 0

    def _tracks(self) -> dict[str, tuple[int, str]]:
        """Track -> (its share of traffic, its tag), as the stack's config has them now; a mirror adds
        its copies to the canary's requests (as the canary's own metrics count them)."""
        settings = parse(self.stack.config(), self.stack.name, frozenset({"secrets"}))
        plan = plan_release(settings)
        weights = dict(plan.weights)
        mirror = settings.rollout.canary.mirror
        if mirror and "canary" in weights:
            weights["canary"] += round(mirror.percent * weights["stable"] / 100)
        return {t.track: (weights.get(t.track, 0), t.tag) for t in plan.tracks}

    def sample(self, namespace: str, release_seconds: float, step_seconds: float) -> dict[str, TrackSample]:
        self.calls += 1
        if self.calls <= self.failing:
            raise MetricsError("connection refused")
        if self.empty:
            return {}
        if release_seconds < self.last_release:
            self.totals = {}
        if step_seconds < self.last_step:
            self.step_requests = {}
        elapsed = int(max(release_seconds - self.last_release, 0))
        self.last_release, self.last_step = release_seconds, step_seconds
        tracks = self._tracks()
        stable = Scenario("stable", self.scenario.stable_error_ratio)
        for track, (weight, tag) in tracks.items():
            # The candidate version behaves as the scenario says; every other version as stable does.
            scenario = self.scenario if tag == self.candidate else stable
            for _ in range(elapsed):
                n, e, _, _ = _traffic(self.rng, scenario, weight)
                total = self.totals.setdefault(track, [0.0, 0.0])
                total[0] += n
                total[1] += e
                self.step_requests[track] = self.step_requests.get(track, 0.0) + n
        p95 = {t: (self.scenario.canary_latency_factor if tag == self.candidate else 1.0) for t, (_, tag) in tracks.items()}
        return {t: TrackSample(v[0], v[1], self.step_requests.get(t, 0.0), p95.get(t, 1.0)) for t, v in self.totals.items() if v[0] > 0}


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()

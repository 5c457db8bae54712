"""Doubles for the driver's outside world: a clock, and metrics simulated from the stack's own weights."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pytest

from core.release import plan_release
from core.signals import Signal
from offline.harness import ROOT
from release.judge import Check, Histogram, Level, Ratio, Reading
from release.ports import MetricsError
from release.simulation import Behaviour, Scenario, Traffic, baseline
from release.stackfile import settings_of
from release.stacks import OfflineStack

GOOD = Scenario("good")
BAD = Scenario("bad", Behaviour(error_ratio=0.05))
BAD_MODEL = Scenario("bad model", Behaviour(triage_success=0.85))


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


def _plus(a: Reading, b: Reading) -> Reading:
    if isinstance(a, Ratio) and isinstance(b, Ratio):
        return Ratio(a.bad + b.bad, a.total + b.total)
    if isinstance(a, Histogram) and isinstance(b, Histogram):
        return Histogram(tuple((le, count + b.at_most(le)) for le, count in a.buckets))
    if isinstance(a, Level) and isinstance(b, Level):
        return Level(a.value + b.value, a.limit)
    raise TypeError((a, b))


class SimulatedMetrics:
    """One service's traffic at the stack's current weights (read from its config at every
    read), from the bench's traffic model: the candidate version behaves as the scenario's
    canary, every other version as its stable; a mirror adds its copies to the canary's
    requests. Each service's metrics are its own: two services of one stack are simulated by
    two of these. `failing` reads raise MetricsError first; `empty` answers nothing; `nan`
    answers NaN for the candidate."""

    def __init__(
        self, stack, scenario: Scenario, seed: int = 7, failing: int = 0, empty: bool = False, candidate: str = "v2.0.0", nan: bool = False,
        service: str = "chat-api",
    ):
        self.stack, self.scenario, self.candidate, self.service = stack, scenario, candidate, service
        self.failing, self.empty, self.nan = failing, empty, nan
        self.traffic = Traffic(scenario, np.random.default_rng(seed))
        self.totals: dict[str, dict[str, Reading]] = {}  # stack track -> signal -> since the loop started
        self.served: dict[str, float] = {}  # candidate requests, all loops
        self.last = 0.0
        self.calls = 0

    def _tracks(self) -> dict[str, tuple[int, str]]:
        settings = settings_of(self.stack.config(), self.stack.name)
        plan = plan_release(settings, self.service)
        weights = dict(plan.weights)
        mirror = settings.service(self.service).rollout.canary.mirror
        if mirror and "canary" in weights:
            weights["canary"] += round(mirror.percent * weights["stable"] / 100)
        return {t.track: (weights.get(t.track, 0), t.tag) for t in plan.tracks}

    def read(self, namespaces: Sequence[str], signals: Sequence[Signal], by: str, groups: Mapping[str, str], release_seconds: float, interval_seconds: float) -> Check:
        self.calls += 1
        if self.calls <= self.failing:
            raise MetricsError("connection refused")
        if self.empty:
            return {}
        if release_seconds < self.last:
            self.totals = {}
        elapsed, self.last = int(max(release_seconds - self.last, 0)), release_seconds
        tracks = self._tracks()
        for track, (weight, tag) in tracks.items():
            key = "canary" if tag == self.candidate else "stable"
            if elapsed and weight:
                readings = self.traffic.interval({key: weight}, elapsed)[key]
                totals = self.totals.setdefault(track, {})
                for name, reading in readings.items():
                    totals[name] = _plus(totals[name], reading) if name in totals else reading
                if key == "canary":
                    self.served[track] = self.served.get(track, 0.0) + readings["errors"].total  # type: ignore[union-attr]
        label = {track: (track if by == "track" else tag) for track, (_, tag) in tracks.items()}
        check: dict[str, dict[str, Reading]] = {}
        for signal in signals:
            check[signal.name] = {}
            for role, group in groups.items():
                track = next((t for t, value in label.items() if value == group and t in self.totals), None)
                if track is None:
                    continue
                reading = self.totals[track][signal.name]
                candidate = tracks[track][1] == self.candidate
                check[signal.name][role] = Level(math.nan) if (self.nan and candidate) else reading
        return check

    def history(self, namespaces: Sequence[str], signals: Sequence[Signal], by: str, group: str, seconds: float, step_seconds: float, now: float) -> dict[str, list[Reading]]:
        if self.empty or self.calls < self.failing:
            raise MetricsError("connection refused")
        reference = Traffic(Scenario("reference", self.scenario.stable, self.scenario.stable), self.traffic.rng)
        return baseline(reference, int(seconds), int(step_seconds))


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def offline(tmp_path):
    """Offline stacks of this repository's stack files, each with its workspace under tmp_path:
    `offline("staging", overrides, cls=...)`."""

    def make(name: str, overrides=None, cls: type = OfflineStack) -> OfflineStack:
        return cls(name, ROOT, overrides, workspace=tmp_path / "offline" / name)

    return make


@pytest.fixture
def hermetic_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real git in the tests, with no machine-wide config or identity leaking in."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        for key in ("NAME", "EMAIL"):
            monkeypatch.delenv(f"GIT_{role}_{key}", raising=False)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()

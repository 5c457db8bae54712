"""The bench's traffic model and its model of Flagger behave as documented, and the judge keeps
its stated bounds on a few seeded releases (the bench measures them on many)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from release.judge import Histogram
from release.simulation import Behaviour, Scenario, Traffic, _quantile, flagger, ours, scenarios, summarise, wald_floor

SEEDS = range(30)


def test_bursts_keep_the_mean_ratio_and_overdisperse_the_counts():
    steady, bursty = (Traffic(Scenario("s", bursts=b), np.random.default_rng(3)) for b in (False, True))
    counts = {name: [t.interval({"stable": 100}, 10)["stable"]["errors"] for _ in range(2000)] for name, t in (("steady", steady), ("bursty", bursty))}
    for readings in counts.values():
        assert sum(r.bad for r in readings) / sum(r.total for r in readings) == pytest.approx(0.005, rel=0.25)
    variance = {name: np.var([r.bad for r in readings]) / np.mean([r.bad for r in readings]) for name, readings in counts.items()}
    assert variance["steady"] < 1.5 < 10 < variance["bursty"]


def test_histogram_quantile_interpolates_as_prometheus_does():
    histogram = Histogram(((0.25, 50.0), (0.5, 90.0), (1.0, 100.0), (math.inf, 100.0)))
    assert _quantile(histogram, 0.5) == 0.25
    assert _quantile(histogram, 0.7) == pytest.approx(0.375)
    assert math.isnan(_quantile(Histogram(((math.inf, 0.0),)), 0.99))


def test_flagger_rolls_back_on_the_tick_after_the_threshold_and_counts_no_value_as_a_failure():
    broken = Scenario("broken", Behaviour(error_ratio=0.5))
    assert flagger(broken, 1, threshold=1).seconds == 120, "failed at 60 s, rolled back at the next tick"
    assert flagger(broken, 1, threshold=5).seconds == 360
    missing = flagger(Scenario("nan", nan=True), 1, threshold=5)
    assert missing.outcome == "rolled back"


def test_flagger_advances_only_on_passing_ticks_and_promotes_after_the_last_step():
    result = flagger(Scenario("good", rps=1000), 1, threshold=5)
    assert result.outcome == "promoted" and result.seconds == 60 * 7


def test_the_judge_keeps_its_bounds_and_beats_flagger_on_failed_requests():
    named = {s.name: s for s in scenarios()}
    good = summarise([ours(named["good (as stable)"], s) for s in SEEDS])
    bad = summarise([ours(named["10x stable 5xx"], s) for s in SEEDS])
    theirs = summarise([flagger(named["10x stable 5xx"], s, threshold=5) for s in SEEDS])
    assert good.rollback_rate <= 0.1 and bad.promotion_rate == 0
    assert bad.mean_failed <= 2 * wald_floor(0.005, 0.05) + 1
    assert bad.mean_failed * 3 < theirs.mean_failed


def test_a_model_that_only_answers_worse_is_rolled_back():
    named = {s.name: s for s in scenarios()}
    for name in ("triage 95 -> 85 %", "first token +40 %", "answers twice as long"):
        results = [ours(named[name], s) for s in range(5)]
        assert all(r.outcome == "rolled back" for r in results), name


def test_nan_is_never_promoted():
    results = [ours(Scenario("nan", nan=True), s) for s in range(3)]
    assert {r.outcome for r in results} == {"rolled back"} and all(r.reason.startswith("inconclusive") for r in results)


def test_the_wald_floor_matches_its_closed_form():
    assert wald_floor(0.005, 0.025) == pytest.approx(3.24, abs=0.05)
    assert wald_floor(0.005, 0.05) == pytest.approx(1.86, abs=0.05)

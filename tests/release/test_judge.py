"""The judge, as plain functions: gates, bounds, dispersion, inconclusive data, verdicts."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.signals import CHAT_API, Signal
from release.judge import (
    CANDIDATE,
    REFERENCE,
    Histogram,
    Level,
    Ratio,
    boundaries,
    censored_evidence,
    dispersion,
    judge,
    log_likelihood_ratio,
    since,
    start,
)

ERRORS = Signal("errors", "ratio", "5xx", "ratio", numerator="n", denominator="d", good=1.0, bad=5.0)
LATENCY = Signal("latency", "distribution", "p95", "s", query="q", quantile=0.95, good=1.25, bad=2.5)
TOKENS = Signal("tokens", "distribution", "length", "tokens", query="q", direction="either", quantile=0.9, good=1.25, bad=2.5)
RESTARTS = Signal("restarts", "count", "restarts", "restarts", query="q", judged="absolute", bound=2)
MEMORY = Signal("memory", "gauge", "memory", "bytes", query="q", limit="l", judged="both", bad=1.5, bound=0.9)
BETA = 0.01


def baseline_errors(ratio: float = 0.005, checks: int = 30, per_check: int = 6000) -> dict:
    return {"errors": [Ratio(ratio * per_check, per_check)] * checks}


def check(candidate: Ratio, reference: Ratio = Ratio(5, 1000)) -> dict:
    return {"errors": {CANDIDATE: candidate, REFERENCE: reference}}


def test_the_family_alpha_is_split_by_weight_over_critical_gates_only():
    state = start(CHAT_API, alpha=0.05)
    critical = [t for t in state.tests if t.critical]
    assert sum(t.alpha for t in critical) == pytest.approx(0.05)
    errors = next(t for t in state.tests if t.gate == "errors")
    latency = next(t for t in state.tests if t.gate == "latency-p95")
    assert errors.alpha / latency.alpha == pytest.approx(30)
    lower_tail = [t.gate for t in state.tests if t.signal == "output-tokens"]
    assert lower_tail == ["output-tokens (higher)", "output-tokens (lower)"], "drift either way: one gate per side"


def test_wald_boundaries_follow_alpha_and_beta():
    test = start([ERRORS], alpha=0.05).tests[0]
    upper, lower = boundaries(test, BETA)
    assert upper == pytest.approx(math.log(0.99 / 0.05))
    assert lower == pytest.approx(math.log(0.01 / 0.95))


def test_a_clearly_worse_canary_is_rolled_back_and_says_why():
    state = start([ERRORS], 0.05, baseline_errors())
    for _ in range(3):
        decision, state = judge(state, check(Ratio(5, 100)), [ERRORS], BETA)  # 5 % against 0.5 %
        if decision.verdict == "rollback":
            break
    assert decision.verdict == "rollback"
    assert decision.reasons[0].startswith("errors: candidate 0.05")


def test_no_single_check_decides_alone():
    """A burst in one check counts up to half the boundary (censoring), then the data must agree."""
    state = start([ERRORS], 0.05, baseline_errors())
    decision, state = judge(state, check(Ratio(500, 1000)), [ERRORS], BETA)
    assert decision.verdict == "hold"
    gate = decision.gates[0]
    assert gate.evidence == pytest.approx(0.75 * gate.upper)
    decision, _ = judge(state, check(Ratio(500, 1000)), [ERRORS], BETA)
    assert decision.verdict == "rollback", "a broken candidate is rolled back at the second check"


def test_a_candidate_as_good_as_its_reference_is_promoted():
    state = start([ERRORS], 0.05, baseline_errors())
    verdicts = []
    for _ in range(20):
        decision, state = judge(state, check(Ratio(2, 400)), [ERRORS], BETA, progress=1.0)
        verdicts.append(decision.verdict)
    assert verdicts[-1] == "promote" and "rollback" not in verdicts


def test_the_weight_never_runs_ahead_of_the_evidence():
    """Past half the traffic, more needs the evidence part-way to acceptance."""
    state = start([ERRORS], 0.05, baseline_errors())
    decision, state = judge(state, check(Ratio(1, 200)), [ERRORS], BETA, progress=0.1)
    assert decision.verdict == "advance", "evidence below 0 is enough at a small weight"
    evidence, lower = decision.gates[0].evidence, decision.gates[0].lower
    assert lower < evidence < 0
    held, _ = judge(start([ERRORS], 0.05, baseline_errors()), check(Ratio(1, 200)), [ERRORS], BETA, progress=0.99)
    assert held.verdict == "hold" and "for more traffic" in held.reasons[0]


@pytest.mark.parametrize("candidate", [None, Ratio(math.nan, 100), Ratio(1, math.inf), Level(math.nan)])
def test_no_data_or_nan_for_a_critical_signal_is_inconclusive_never_a_pass(candidate):
    state = start([ERRORS], 0.05, baseline_errors())
    readings = {REFERENCE: Ratio(5, 1000)} | ({CANDIDATE: candidate} if candidate is not None else {})
    decision, after = judge(state, {"errors": readings}, [ERRORS], BETA, progress=1.0)
    assert decision.verdict == "hold" and decision.inconclusive
    assert decision.reasons == ("inconclusive: no usable data for errors",)
    assert after.tests[0].candidate == (), "nothing was counted"


def test_an_advisory_signal_without_data_does_not_hold():
    advisory = Signal("refusals", "ratio", "r", "ratio", numerator="n", denominator="d", critical=False)
    state = start([ERRORS, advisory], 0.05, baseline_errors())
    decision, _ = judge(state, check(Ratio(0, 500)), [ERRORS, advisory], BETA)
    assert not decision.inconclusive


def test_without_a_baseline_the_first_check_needs_the_live_reference():
    state = start([ERRORS], 0.05)
    decision, _ = judge(state, {"errors": {CANDIDATE: Ratio(0, 100)}}, [ERRORS], BETA)
    assert decision.inconclusive and decision.gates[0].state == "no data"


def test_a_missing_live_reference_is_judged_against_the_baseline():
    """Blue/green after the switch, and rolling once the old pods are gone."""
    state = start([ERRORS], 0.05, baseline_errors())
    decision, _ = judge(state, {"errors": {CANDIDATE: Ratio(1, 400)}}, [ERRORS], BETA)
    assert not decision.inconclusive and 0.005 < decision.gates[0].reference < 0.0055, "the baseline's share, at its upper bound"


def histogram(counts_at: dict[float, float]) -> Histogram:
    return Histogram(tuple(sorted(counts_at.items())))


def test_a_distribution_is_judged_through_one_bucket_boundary_chosen_from_the_reference():
    reference = histogram({0.25: 900, 0.5: 950, 1.0: 995, math.inf: 1000})  # 5 % above 0.5 s
    state = start([LATENCY], 0.05, {"latency": [reference] * 10})
    assert state.tests[0].boundary == 0.5
    slow = histogram({0.25: 500, 0.5: 700, 1.0: 900, math.inf: 1000})  # 30 % above 0.5 s
    for _ in range(3):
        decision, state = judge(state, {"latency": {CANDIDATE: slow, REFERENCE: reference}}, [LATENCY], BETA)
    assert decision.verdict == "rollback" and decision.gates[0].note == "share above 0.5"


def test_output_length_drifting_either_way_is_caught():
    reference = histogram({64: 100, 256: 700, 1024: 980, math.inf: 1000})
    state = start([TOKENS], 0.05, {"tokens": [reference] * 10})
    short = histogram({64: 600, 256: 950, 1024: 1000, math.inf: 1000})
    for _ in range(3):
        decision, state = judge(state, {"tokens": {CANDIDATE: short, REFERENCE: reference}}, [TOKENS], BETA)
    assert decision.verdict == "rollback" and decision.reasons[0].startswith("tokens (lower)")


def test_a_count_rolls_back_when_the_release_total_reaches_its_bound():
    state = start([RESTARTS], 0.05)
    decision, state = judge(state, {"restarts": {CANDIDATE: Level(1)}}, [RESTARTS], BETA)
    assert decision.verdict != "rollback"
    decision, state = judge(state, {"restarts": {CANDIDATE: Level(1)}}, [RESTARTS], BETA)
    assert decision.verdict == "rollback" and decision.reasons[0].startswith("restarts")


def test_a_critical_gauge_rolls_back_on_two_breaches_in_a_row_only():
    state = start([MEMORY], 0.05)
    high = {"memory": {CANDIDATE: Level(1.0e9, 1.0e9), REFERENCE: Level(5e8)}}
    normal = {"memory": {CANDIDATE: Level(5e8, 1.0e9), REFERENCE: Level(5e8)}}
    decision, state = judge(state, high, [MEMORY], BETA)
    assert decision.verdict != "rollback" and decision.gates[0].state == "fail"
    decision, state = judge(state, normal, [MEMORY], BETA)
    decision, state = judge(state, high, [MEMORY], BETA)
    assert decision.verdict != "rollback", "not in a row"
    decision, _ = judge(state, high, [MEMORY], BETA)
    assert decision.verdict == "rollback"


def test_since_takes_the_difference_of_cumulative_readings_and_keeps_nan():
    signals = [ERRORS, LATENCY, MEMORY]
    before = {"errors": {CANDIDATE: Ratio(2, 100)}, "latency": {CANDIDATE: histogram({0.5: 90, math.inf: 100})}, "memory": {CANDIDATE: Level(5)}}
    after = {"errors": {CANDIDATE: Ratio(3, 250)}, "latency": {CANDIDATE: histogram({0.5: 200, math.inf: 230})}, "memory": {CANDIDATE: Level(7)}}
    step = since(after, before, signals)
    assert step["errors"][CANDIDATE] == Ratio(1, 150)
    assert step["latency"][CANDIDATE] == histogram({0.5: 110, math.inf: 130})
    assert step["memory"][CANDIDATE] == Level(7), "a gauge is a level, not a counter"
    extrapolated = since({"errors": {CANDIDATE: Ratio(1.5, 240)}}, before, signals)
    assert extrapolated["errors"][CANDIDATE] == Ratio(-0.5, 140), "increase() can dip: kept, so checks add up to the total"
    assert math.isnan(since({"errors": {CANDIDATE: Ratio(math.nan, 300)}}, before, signals)["errors"][CANDIDATE].bad)


def test_dispersion_grows_with_bursts_and_stays_1_for_binomial_counts():
    steady = start([ERRORS], 0.05, {"errors": [Ratio(5, 1000)] * 60}).tests[0]
    bursty = start([ERRORS], 0.05, {"errors": [Ratio(0, 1000)] * 50 + [Ratio(30, 1000)] * 10}).tests[0]
    assert dispersion(steady) == 1.0
    assert dispersion(bursty) > 10


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 50), st.integers(50, 500)), min_size=1, max_size=30),
    st.floats(0.5, 50),
)
def test_censored_evidence_is_bounded_by_the_checks(checks, phi):
    checks = [(float(min(b, n)), float(n)) for b, n in checks]
    limit = 2.0
    evidence = censored_evidence(checks, 0.005, 0.025, phi, limit)
    assert -limit * len(checks) <= evidence <= limit * len(checks)
    uncensored = sum(log_likelihood_ratio(b, n, 0.005, 0.025) for b, n in checks) / phi
    assert abs(evidence) <= abs(uncensored) + 1e-9 or len(checks) > 1


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 40), st.integers(100, 2000), st.floats(0.001, 0.05))
def test_more_failures_never_make_the_evidence_smaller(failures, requests, stable):
    p0, p1 = stable, 5 * stable
    assert log_likelihood_ratio(failures + 1, requests, p0, p1) > log_likelihood_ratio(failures, requests, p0, p1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=5, max_size=40))
def test_a_candidate_with_fewer_failures_than_its_reference_is_never_rolled_back(failures):
    """Whatever the order of its (few) failures, a candidate below the reference's share passes or waits."""
    state = start([ERRORS], 0.05, baseline_errors(ratio=0.02))
    for count in failures:
        decision, state = judge(state, check(Ratio(count, 400), Ratio(20, 1000)), [ERRORS], BETA)
        assert decision.verdict != "rollback"


def test_a_gate_never_accepts_on_fewer_events_than_its_signal_needs():
    cautious = Signal("errors", "ratio", "5xx", "ratio", numerator="n", denominator="d", good=1.0, bad=5.0, min_events=1000)
    state = start([cautious], 0.05, baseline_errors())
    for _ in range(4):
        decision, state = judge(state, check(Ratio(0, 200)), [cautious], BETA, progress=1.0)
    gate = decision.gates[0]
    assert gate.evidence < gate.lower and gate.state == "open" and decision.verdict != "promote"
    decision, _ = judge(state, check(Ratio(0, 200)), [cautious], BETA, progress=1.0)
    assert decision.verdict == "promote", "1000 requests: now it may"

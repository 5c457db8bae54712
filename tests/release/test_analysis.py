from hypothesis import given
from hypothesis import strategies as st

from release.analysis import AnalysisState, Gates, TrackSample, analyse, log_likelihood_ratio

GATES = Gates()
STABLE = TrackSample(requests=100_000, errors=500, step_requests=10_000, p95_seconds=1.0)  # 0.5 %


def test_too_little_data_is_inconclusive_and_holds_never_passes():
    decision = analyse(TrackSample(10, 0, 10, 1.0), STABLE, GATES)
    assert decision.verdict == "hold"
    assert any("inconclusive" in r for r in decision.reasons)
    assert decision.gates["requests"] is False


def test_a_clearly_bad_canary_is_rolled_back_after_a_few_dozen_requests():
    decision = analyse(TrackSample(60, 25, 60, 1.0), STABLE, GATES)
    assert decision.verdict == "rollback" and decision.gates["errors"] is False


def test_a_good_canary_advances_as_soon_as_the_evidence_allows():
    assert analyse(TrackSample(600, 3, 600, 1.0), STABLE, GATES).verdict == "advance"
    assert analyse(TrackSample(100, 0, 100, 1.0), STABLE, GATES).verdict == "hold"  # not enough evidence yet


def test_latency_regression_rolls_back_after_consecutive_breaches():
    state = AnalysisState()
    verdicts = []
    for _ in range(GATES.latency_breaches):
        decision = analyse(TrackSample(600, 3, 600, 1.6), STABLE, GATES, state)
        state = decision.state
        verdicts.append(decision.verdict)
    assert verdicts == ["hold"] * (GATES.latency_breaches - 1) + ["rollback"]
    # one good check in between resets the count
    state = analyse(TrackSample(600, 3, 600, 1.6), STABLE, GATES).state
    assert analyse(TrackSample(600, 3, 600, 1.0), STABLE, GATES, state).state.latency_breaches == 0


def test_a_flawless_stable_is_floored_not_divided_by_zero():
    stable = TrackSample(1000, 0, 1000, 1.0)
    assert analyse(TrackSample(2000, 0, 2000, 1.0), stable, GATES).verdict == "advance"
    assert analyse(TrackSample(200, 40, 200, 1.0), stable, GATES).verdict == "rollback"


@given(st.integers(0, 5000), st.integers(0, 5000), st.integers(0, 5000), st.floats(0.1, 5.0))
def test_advance_needs_every_gate(requests, errors, step_requests, p95):
    errors = min(errors, requests)
    canary = TrackSample(requests, errors, min(step_requests, requests), p95)
    decision = analyse(canary, STABLE, GATES)
    if decision.verdict == "advance":
        assert canary.step_requests >= GATES.min_step_requests
        assert log_likelihood_ratio(canary, STABLE, GATES) <= GATES.lower
        assert p95 <= STABLE.p95_seconds * GATES.latency_tolerance
    if decision.verdict == "rollback":
        assert log_likelihood_ratio(canary, STABLE, GATES) >= GATES.upper  # one check cannot breach latency 3 times

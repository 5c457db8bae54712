"""`run` on the fast canary stack when Prometheus is down, hangs, answers NaN or answers
nonsense: every check holds, and the release is rolled back as inconclusive, never advanced."""

from __future__ import annotations

import pytest

from tests.release.cli.conftest import closed_url, tracks

MODES = ["down", "nan", "not-json", "oops"]


def run_holds_then_rolls_back(project, url: str) -> None:
    result = project.cli("run", "fastcanary", "--tag", "v2.0.0", "--prometheus", url, timeout=180)
    assert result.code == 1, str(result)
    assert "Traceback" not in result.err, str(result)
    assert result.out.strip().splitlines()[-1].startswith("v2.0.0 on fastcanary/chat-api: rolled back (inconclusive for 10 s"), str(result)

    state = project.state("fastcanary")
    analysis = [entry for entry in state.audit if entry["action"] == "analysis"]
    assert analysis, state.events()
    assert {entry["verdict"] for entry in analysis} == {"hold"}, [entry["reasons"] for entry in analysis]
    actions = {action for action, _ in state.events()}
    assert not actions & {"advance", "scale-canary", "promote"}, state.events()
    assert state.events()[-3:] == [("abort", "started"), ("abort", "applied"), ("release", "ended")], state.events()
    assert state.audit[-1]["outcome"] == "rolled back"
    assert len(state.runs()) == 1

    assert state.in_step
    assert tracks(state.applied) == {"stable": ("v1.4.0", 100)}, "stable only, no canary"
    assert "tag" not in state.service["rollout"]["canary"] and "inFlight" not in state.service["rollout"]
    assert state.lease is None


@pytest.mark.parametrize("mode", MODES)
def test_run_holds_and_rolls_back_when_prometheus_gives_no_usable_answer(project, fake_prometheus, mode):
    if mode == "down":
        url = closed_url()
    else:
        prometheus = fake_prometheus(mode)
        url = prometheus.url
    run_holds_then_rolls_back(project, url)
    if mode != "down":
        assert prometheus.queries > 0, "the run asked the fake Prometheus"


def test_run_holds_and_rolls_back_when_prometheus_never_answers(project, fake_prometheus):
    prometheus = fake_prometheus("hang")  # each query times out after PrometheusMetrics' 10 s
    run_holds_then_rolls_back(project, prometheus.url)
    assert prometheus.queries > 0

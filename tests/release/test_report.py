"""The end-of-release report: outcome and reason first, one figure per gate with units,
only this release's decisions, escaped text, and nothing loaded from outside the page."""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import pytest

from core.signals import CHAT_API
from release.judge import GateView
from release.record import Observation, ReleaseRun
from release.report import render

TRIAGE_FAILURE = "triage-success: candidate 0.15 against 0.05; evidence 7.10 >= 4.60 (phi 1.20)"


def _rolled_back() -> ReleaseRun:
    """A canary at 5 % then 20 %; the triage gate crosses its upper boundary at the sixth check."""
    run = ReleaseRun(stack="staging", service="chat-api", tag="v2.0.0", strategy="canary", release_id="run-rolled-1", outcome="rolled back")
    evidence = [-0.5, -1.0, -0.4, 1.8, 4.0, 7.1]
    for k, llr in enumerate(evidence, start=1):
        step = 1 if k <= 3 else 2
        failing = llr >= 4.6
        gates = (
            GateView("errors", "errors", True, "open", 0.004, 0.005, -0.3 * k, 5.8, -2.9, 1.0),
            GateView("triage-success", "triage-success", True, "fail" if failing else "open", 0.05 + 0.02 * k, 0.05, llr, 4.6, -2.9, 1.2),
            GateView(
                "latency-p95", "latency-p95", True, "no data" if k <= 2 else "open",
                None if k <= 2 else 0.06, None if k <= 2 else 0.05, None if k <= 2 else -0.2 * k, 6.2, -2.9, 1.0,
                "no reference data yet" if k <= 2 else "share above 0.5",
            ),
            GateView("restarts", "restarts", True, "pass", float(k // 4), 2.0, note="over the release"),
            GateView("memory", "memory", False, "pass", 1.5 * 2**30, 3.6 * 2**30),
        )
        verdict = "rollback" if failing else "advance" if llr < 0 else "hold"
        reasons = (TRIAGE_FAILURE,) if failing else ("errors: evidence -0.30, accepts at -2.90",)
        weights = {"stable": 95, "canary": 5} if step == 1 else {"stable": 80, "canary": 20}
        run.observations.append(Observation(60.0 * k, step, weights, verdict, reasons, gates))
    return run


def _promoted() -> ReleaseRun:
    run = ReleaseRun(stack="production", tag="v2.1.0", strategy="canary", release_id="run-promoted-2", outcome="promoted",
                     message="every critical gate accepts the candidate")
    for k in range(1, 5):
        gates = (
            GateView("errors", "errors", True, "pass" if k == 4 else "open", 0.004, 0.005, -0.8 * k, 5.8, -2.9, 1.0),
            GateView("cpu", "cpu", False, "pass", 0.4, 0.9),
        )
        run.observations.append(Observation(120.0 * k, k, {"stable": 100 - 25 * k, "canary": 25 * k}, "promote" if k == 4 else "advance", ("ok",), gates))
    return run


def _audit(run: ReleaseRun) -> list[dict]:
    return [
        {"time": "2025-05-01T09:00:00+00:00", "stack": "staging", "operator": "alice", "action": "start", "release": "an-earlier-run", "tag": "v1.9.0-earlier"},
        {"time": "2025-05-01T09:30:00+00:00", "stack": "staging", "operator": "alice", "action": "abort", "reason": "no release id: before the driver recorded one"},
        {"time": "2025-05-02T10:00:00+00:00", "stack": "staging", "service": "chat-api", "operator": "bob", "action": "start", "release": run.release_id, "tag": "v2.0.0-this-one"},
        {"time": "2025-05-02T10:06:00+00:00", "stack": "staging", "service": "chat-api", "operator": "bob", "action": "analysis", "release": run.release_id,
         "verdict": "rollback", "reasons": [TRIAGE_FAILURE], "gates": [{"gate": "triage-success", "state": "fail"}, {"gate": "errors", "state": "open"}]},
    ]


def _figures(page: str) -> dict[str, str]:
    """Gate figures by id, each with its inline SVG and caption."""
    return dict(re.findall(r'<figure id="([^"]+)" class="plot gate"[^>]*>(.*?)</figure>', page, flags=re.S))


@pytest.fixture(scope="module")
def rolled_back_page() -> str:
    run = _rolled_back()
    return render(run, _audit(run))


def test_the_heading_says_the_outcome_and_why(rolled_back_page):
    heading = re.search(r"<h1>(.*?)</h1>", rolled_back_page, flags=re.S).group(1)
    text = re.sub(r"<[^>]+>", "", heading)
    assert text.startswith("v2.0.0 of chat-api on staging: rolled back — ")
    assert "triage-success: candidate 0.15 against 0.05; evidence 7.10 &gt;= 4.60" in text  # the last check's reasons


def test_the_heading_prefers_the_runs_message():
    page = render(_promoted(), [])
    text = re.sub(r"<[^>]+>", "", re.search(r"<h1>(.*?)</h1>", page, flags=re.S).group(1))
    assert text == "v2.1.0 on production: promoted — every critical gate accepts the candidate", "a run that names no service"


def test_the_summary_line_has_strategy_id_duration_checks_and_weights(rolled_back_page):
    summary = re.search(r'<p class="summary">(.*?)</p>', rolled_back_page).group(1)
    for fact in ("strategy canary", "release run-rolled-1", "duration 6 min 00 s", "6 checks", "stable 80 % / canary 20 %"):
        assert fact in summary


def test_one_figure_per_gate_critical_first_in_catalogue_order(rolled_back_page):
    figures = _figures(rolled_back_page)
    assert list(figures) == ["gate-errors", "gate-latency-p95", "gate-triage-success", "gate-restarts", "gate-memory"]
    assert rolled_back_page.count("<svg") == len(figures) + 1  # and the traffic weights
    assert all(body.count("<svg") == 1 for body in figures.values())


def test_a_sequential_gate_has_evidence_and_boundaries_a_level_gate_only_its_bound(rolled_back_page):
    figures = _figures(rolled_back_page)
    triage, restarts = figures["gate-triage-success"], figures["gate-restarts"]
    assert "evidence" in triage and "roll back ≥ 4.60" in triage and "accept ≤ −2.90" in triage
    assert ">fail<" in triage  # the failing check is marked
    assert "roll back ≥" not in restarts and "(log-LR / φ)" not in restarts
    assert ">bound<" in restarts and ">reference<" not in restarts


def test_axes_carry_labels_and_units(rolled_back_page):
    figures = _figures(rolled_back_page)
    assert "traffic weight (%)" in rolled_back_page
    assert all("time since the release started (s)" in body for body in figures.values())
    assert "bad share (%)" in figures["gate-errors"]
    assert "requests above 0.5 s (%)" in figures["gate-latency-p95"]  # a distribution gate: the share past the boundary, in s
    assert "restarts over the release (restarts)" in figures["gate-restarts"]
    assert "memory (GiB)" in figures["gate-memory"]  # bytes shown in binary units
    assert "triage-success (critical) — share of triage requests that reached a triage outcome" in figures["gate-triage-success"]
    assert "memory (advisory)" in figures["gate-memory"]


def test_checks_without_data_are_marked(rolled_back_page):
    figures = _figures(rolled_back_page)
    assert ">no data<" in figures["gate-latency-p95"]
    assert ">no data<" not in figures["gate-errors"]


def test_step_changes_are_listed_with_their_time(rolled_back_page):
    caption = re.search(r'<figure id="weights".*?<figcaption>(.*?)</figcaption>', rolled_back_page, flags=re.S).group(1)
    assert "step 1 (canary) from 0 s: stable 95 % / canary 5 %" in caption
    assert "step 2 (canary) from 180 s: stable 80 % / canary 20 %" in caption  # the weights of check 4 held since check 3


def test_the_evidence_table_ends_on_each_gates_last_check(rolled_back_page):
    table = re.search(r'<table id="evidence">(.*?)</table>', rolled_back_page, flags=re.S).group(1)
    rows = {re.sub(r"<[^>]+>", "", r.split("</td>")[0]): r for r in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)}
    triage = [re.sub(r"<[^>]+>", "", cell) for cell in rows["triage-success"].split("</td>")[:-1]]
    assert triage == ["triage-success", "critical", "fail", "17 %", "5 %", "7.10", "4.60", "−2.90", "1.20", ""]
    assert "advisory" in rows["memory"] and "3.6 GiB" in rows["memory"]


def test_only_this_releases_decisions_are_listed(rolled_back_page):
    decisions = re.search(r'<table id="decisions">(.*?)</table>', rolled_back_page, flags=re.S).group(1)
    assert "v2.0.0-this-one" in decisions and "rollback" in decisions
    assert "gates: 2 (1 fail, 1 open)" in decisions
    assert "service:" not in decisions, "the heading names the service; its entries do not repeat it"
    assert "an-earlier-run" not in rolled_back_page and "v1.9.0-earlier" not in rolled_back_page
    assert "no release id" not in rolled_back_page  # entries without a release id belong to no run


def test_text_from_data_is_escaped():
    run = _promoted()
    run.message = 'gate <b>"errors"</b> & <script>alert(1)</script>'
    run.observations[-1] = Observation(480.0, 4, {"stable": 0, "canary": 100}, "promote", ("ok",),
                                       (GateView("odd<gate>$x$", "unknown", True, "pass", 0.1, 0.2, -3.0, 5.0, -2.9, note="<i>"),))
    audit = [{"time": "t", "operator": "<op>", "action": "abort", "release": run.release_id, "reason": "<script>x</script>"}]
    page = render(run, audit)
    assert "<script" not in page and "<b>" not in page and "<i>" not in page and "<op>" not in page
    assert "gate &lt;b&gt;&quot;errors&quot;&lt;/b&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "odd&lt;gate&gt;$x$" in page  # in the figure's title, the table and the SVG text; `$` not taken as mathtext


def test_the_page_loads_nothing_from_outside():
    run = _rolled_back()
    page = render(run, _audit(run))
    assert 'src="http' not in page and "<link" not in page and "<script" not in page and "@import" not in page
    assert "<!DOCTYPE svg" not in page and "<?xml" not in page and "url(http" not in page
    assert all(ref.startswith("#") for ref in re.findall(r'href="([^"]*)"', page))  # only the SVGs' own definitions


def test_ids_are_unique_across_the_inline_svgs():
    run = _rolled_back()
    ids = re.findall(r'\bid="([^"]+)"', render(run, _audit(run)))
    assert len(ids) > 20
    assert len(ids) == len(set(ids))


def test_render_is_repeatable_and_leaves_no_figures_open():
    run = _promoted()
    before = plt.get_fignums()
    first, second = render(run, []), render(run, [])
    assert first == second
    assert plt.get_fignums() == before


def test_a_run_without_checks_still_reports():
    run = ReleaseRun(stack="staging", tag="v3.0.0", strategy="blue-green", release_id="run-empty-3", outcome="switched back")
    page = render(run, [{"time": "t", "operator": "bob", "action": "stopped", "release": "run-empty-3", "error": "metrics down"}], CHAT_API)
    assert re.search(r"<h1>.*switched back.*metrics unavailable</h1>", page)
    assert "<svg" not in page and "0 checks" in page and "metrics down" in page

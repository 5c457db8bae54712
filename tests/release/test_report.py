"""The end-of-release report: outcome and reason first, one figure per gate with units,
only this release's decisions, escaped text, and nothing loaded from outside the page."""

from __future__ import annotations

import re
from dataclasses import replace

import matplotlib.pyplot as plt
import pytest

from core.signals import CHAT_API
from release.evidence import stage_record
from release.judge import GateView
from release.record import Observation, ReleaseRun
from release.report import PromotionLinks, StageLink, promotion_links, render, render_promotion
from tests.release.test_evidence import event, good_attempt

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


# --- a promotion's stages ------------------------------------------------------------------


def _promotion(current: str | None = "staging", watched: str = "rolled back") -> PromotionLinks:
    """demo through, staging promoted then rolled back by its watch (or healthy), production never entered."""
    events = good_attempt(stack="demo", start=0) + good_attempt(start=10)[:-1] + [
        event("watched", "16:22:01", outcome=watched, reasons=["analysis: triage-success 0.85 against 0.97"] if watched != "healthy" else [], seconds=108.0),
    ]
    by_stage = {stack: [e for e in events if e["stack"] == stack] for stack in ("demo", "staging")}
    return promotion_links("chat-api", "v2.0.0", ["demo", "staging", "production"], by_stage, current=current)


def _found(pattern: str, page: str) -> str:
    """The first group of `pattern`'s first match in the page (which must have one)."""
    match = re.search(pattern, page, flags=re.S)
    assert match is not None, pattern
    return match.group(1)


def _rows(table: str) -> list[list[str]]:
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, flags=re.S) if "<td" in row]


def test_a_stages_report_links_the_other_stages_and_the_promotion():
    run = _rolled_back()
    page = render(run, _audit(run), promotion=_promotion())
    assert page.index("<h2>Promotion path</h2>") < page.index("<h2>Traffic</h2>"), "right after the outcome"
    table = _found(r'<table id="promotion">(.*?)</table>', page)
    demo, staging, production = _rows(table)
    assert demo == ["demo", "promoted 16:10:12Z (canary), watched 20 s: healthy", '<a href="release-demo-v2.0.0.html">release-demo-v2.0.0.html</a>']
    assert staging[0] == "staging ◀ this report" and staging[2] == "this report", "the current stage does not link to itself"
    assert staging[1].startswith("promoted 16:20:12Z (canary), rolled back 16:22:01Z by its watch")
    assert production == ["production", "never entered", "–"]
    assert '<tr class="current"><td class="stage">staging' in table
    assert re.findall(r'href="([^"#][^"]*)"', page) == ["promotion-chat-api-v2.0.0.html", "release-demo-v2.0.0.html"]


def test_a_report_written_before_its_event_is_linked_by_name():
    events = good_attempt(stack="demo", start=0)
    links = promotion_links("chat-api", "v2.0.0", ["demo", "staging"], {"demo": events}, current="staging", reports={"staging": "release-staging-next.html"})
    assert [(s.stack, s.report) for s in links.stages] == [("demo", "release-demo-v2.0.0.html"), ("staging", "release-staging-next.html")]
    assert links.index == "promotion-chat-api-v2.0.0.html" and links.current == "staging"


def test_without_a_promotion_the_report_has_no_path():
    run = _rolled_back()
    page = render(run, _audit(run))
    assert "Promotion path" not in page and "tr.current" not in page


def test_the_promotion_page_has_a_timeline_on_a_time_axis():
    page = render_promotion(_promotion())
    figure = _found(r'<figure id="timeline" class="plot">(.*?)</figure>', page)
    assert figure.count("<svg") == 1
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", figure)
    assert "16:10" in texts and "16:20" in texts, "tick labels are times of day"
    assert "time (UTC)" in texts and {"demo", "staging", "production"} <= set(texts)
    assert "never entered" in texts and "approved by bob: change 42 signed off" in texts
    assert "override freeze by alice: hotfix for CVE-2026-1" in texts
    assert {"verified", "released", "rolled back", "waiting for approval", "through", "stopped / rolled back"} <= set(texts), "the legend"


def test_the_promotion_page_lists_every_event_and_links_every_report():
    links = _promotion()
    page = render_promotion(links)
    heading = re.sub(r"<[^>]+>", "", _found(r"<h1>(.*?)</h1>", page))
    assert heading == "v2.0.0 of chat-api, demo → staging → production: stopped at staging"
    rows = _rows(_found(r'<table id="events">(.*?)</table>', page))
    assert len(rows) == sum(len(link.record.events) for link in links.stages if link.record) == 14
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert rows[0][:4] == ["2026-11-28T16:00:00Z", "demo", "requested", "alice"]
    assert any(r[2] == "approved" and r[3] == "bob" and "reason: change 42 signed off" in r[4] for r in rows)
    assert re.findall(r'href="([^"#][^"]*)"', page) == [
        "release-demo-v2.0.0.html", "release-staging-v2.0.0.html",  # the stages table
        "release-demo-v2.0.0.html", "release-staging-v2.0.0.html",  # their `released` events
    ]
    assert "staging ◀ now" in page


def test_the_promotion_pages_outcome():
    def standing(*stages: StageLink) -> str:
        page = render_promotion(PromotionLinks("chat-api", "v2.0.0", None, stages, "promotion-chat-api-v2.0.0.html"))
        return _found(r'<span class="outcome[^"]*">(.*?)</span>', page)

    demo, staging = _promotion(watched="healthy").stages[:2]
    production = StageLink("production", stage_record(good_attempt(stack="production"), "production", "v2.0.0"), None)
    assert standing(demo, staging, production) == "through production"
    skipped = StageLink("staging", stage_record(good_attempt()[:-1] + [event("watched", "16:40:13", outcome="skipped", reasons=["soak overridden"], seconds=0.0)],
                                                "staging", "v2.0.0"), None)
    assert standing(demo, skipped, production) == "through production", "the next stage took it by overriding the soak"
    assert standing(demo, StageLink("staging", stage_record(good_attempt()[:4], "staging", "v2.0.0"), None)) == "at staging"
    assert standing(demo, StageLink("staging", stage_record([event("requested", "16:30:00")], "staging", "v2.0.0"), None)) == "waiting for an approval at staging"
    assert standing(*_promotion().stages) == "stopped at staging"
    assert standing(StageLink("demo", None, None)) == "not started"
    assert "No stage has evidence" in render_promotion(PromotionLinks("chat-api", "v2.0.0", None, (StageLink("demo", None, None),), "p.html"))


def test_the_promotion_page_is_self_contained_escaped_and_repeatable():
    links = _promotion()
    hostile = replace(links, tag='v2<script>"', stages=(StageLink("demo", stage_record(
        [event("approved", "16:00:00", tag='v2<script>"', reason="<b>$x$</b>")], "demo", 'v2<script>"'), 'x"><script>.html'),))
    page = render_promotion(hostile)
    assert "<script" not in page and "<b>" not in page
    assert 'href="x%22%3E%3Cscript%3E.html"' in page
    first = render_promotion(links)
    assert first == render_promotion(links)
    assert "<link" not in first and "src=" not in first and "<?xml" not in first
    ids = re.findall(r'\bid="([^"]+)"', first)
    assert len(ids) == len(set(ids))

"""The end-of-release report: one self-contained HTML page (inline SVG from matplotlib, inline
CSS, no script, no external file) that says how a release ended and why.

What it shows, top to bottom:

- the outcome and its reason (the run's message, or the last check's reasons);
- one line of facts: strategy, release id, duration, number of checks, weights at the last check;
- the traffic weight per track over the release (a step plot; dotted vertical lines mark the step
  changes, on this plot and on every plot below, all on the same time axis);
- one figure per gate the judge reported (`release.judge.GateView`), critical gates first, in
  catalogue order: (a) the candidate's value against the reference's (or the bound's), (b) for the
  sequential tests, the evidence against its two boundaries (roll back at or above the upper one,
  accept at or below the lower one); checks without data are grey crosses on the time axis;
- the gates at their last check against their thresholds;
- the decisions: the audit entries of this release only (`entry["release"] == run.release_id`).

A release that is a stage of a promotion also has, right after its outcome, the promotion path:
one row per stage with where the tag stands there (`release.evidence.StageRecord.describe`) and a
link to that stage's report, and a link to the promotion's own page (`render_promotion`: the
stages, a timeline of the stages on a clock axis, and every event of every stage).

`render` and `render_promotion` are pure: they read what they are given and return the page.
"""

from __future__ import annotations

import datetime
import html
import io
import itertools
import json
import math
import re
import textwrap
import urllib.parse
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, TypeGuard

import matplotlib

matplotlib.use("Agg")

from matplotlib import dates as mdates  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from matplotlib.typing import RcKeyType  # noqa: E402

from core.signals import CHAT_API, Signal  # noqa: E402
from release.evidence import PROMOTED, SOAKED, StageRecord, duration, parse_time, stage_record  # noqa: E402
from release.judge import GateView  # noqa: E402
from release.record import Observation, ReleaseRun  # noqa: E402

TRACK_COLOURS = {"stable": "#1f77b4", "canary": "#d62728", "blue": "#2166ac", "green": "#1a9850"}
OTHER_COLOURS = ("#7b3294", "#e08214", "#4d4d4d", "#35978f", "#c51b7d")
CANDIDATE_COLOUR, REFERENCE_COLOUR, EVIDENCE_COLOUR = "#d62728", "#1f77b4", "#333333"
ROLLBACK_COLOUR, ACCEPT_COLOUR, NO_DATA_COLOUR, STEP_COLOUR = "#b2182b", "#1a9850", "#8c8c8c", "#777777"
VERDICT_COLOURS = {"rollback": "#b2182b", "hold": "#e08214", "advance": "#1a9850", "promote": "#2166ac"}

WIDTH = 8.0  # inches
PANEL = 2.1  # inches of plot per panel
LEFT, RIGHT = 0.09, 0.79  # fixed margins (figure fractions): every time axis lines up; legends go right
TITLE_CHARS = 92  # what fits across the figure at 10 pt bold
TOP_IN, BOTTOM_IN, GAP_IN = 0.42, 0.48, 0.22  # inches: title, x labels, between panels

RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",  # text stays text: searchable, selectable, read by screen readers
    "font.family": "sans-serif",  # the SVG names DejaVu Sans first and ends on the generic sans-serif
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:1.5em auto;max-width:1040px;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.35em;margin:0 0 .3em}
h1 .outcome{padding:0 .25em;border-radius:3px}
h1 .bad{background:#fbe3e4;color:#8a1c1c}
h1 .good{background:#e3f4e6;color:#1d5c2a}
h2{font-size:1.1em;margin:1.6em 0 .4em;border-bottom:1px solid #ddd}
p.summary{color:#444;margin:0 0 1em}
p.note{color:#555;font-size:.9em;max-width:60em}
figure{margin:0 0 1.2em}
figure svg{display:block;max-width:100%;height:auto}
figcaption{font-size:.85em;color:#555;max-width:60em}
table{border-collapse:collapse;font-size:12px;margin-bottom:1em}
th,td{padding:3px 8px;border-bottom:1px solid #e2e2e2;text-align:left;vertical-align:top}
th{background:#f4f4f4}
td.time{white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.details{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:11px;color:#444;max-width:32em;overflow-wrap:anywhere}
td.fail{color:#8a1c1c;font-weight:bold}
td.pass{color:#1d5c2a}
td.open{color:#8a5a00}
td.no-data{color:#777}
"""

_SHARE_NOTE = re.compile(r"share (above|at or below) (\S+)")
_BINARY = ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))


# --- what the page reads -----------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """How a gate's candidate/reference values are shown: multiply by `factor`, then `unit`."""

    factor: float
    unit: str
    label: str  # the y label, with the unit
    share: bool  # a share of events (%), as opposed to a level


@dataclass(frozen=True)
class GateSeries:
    gate: str
    signal: Optional[Signal]
    views: tuple[tuple[float, GateView], ...]  # (seconds, view), in check order

    @property
    def last(self) -> GateView:
        return self.views[-1][1]

    @property
    def critical(self) -> bool:
        return self.last.critical

    @property
    def sequential(self) -> bool:
        """A sequential test (has evidence and boundaries), not a gauge or a count."""
        return any(v.evidence is not None or v.upper is not None for _, v in self.views) or bool(self.signal and self.signal.statistical)

    @property
    def absolute(self) -> bool:
        """The reference field is a bound (an absolute gate, a gauge, a count), not another version's value."""
        return not self.sequential or self.gate.endswith("(absolute)")


def _series(run: ReleaseRun, signals: Sequence[Signal]) -> list[GateSeries]:
    """Every gate in the observations: critical first, then advisory; catalogue order, then first seen."""
    by_gate: dict[str, list[tuple[float, GateView]]] = {}
    for observation in run.observations:
        for view in observation.gates:
            by_gate.setdefault(view.gate, []).append((observation.seconds, view))
    catalogue = {s.name: s for s in signals}
    position = {s.name: i for i, s in enumerate(signals)}
    series = [GateSeries(gate, catalogue.get(views[-1][1].signal), tuple(views)) for gate, views in by_gate.items()]
    first_seen = {s.gate: i for i, s in enumerate(series)}
    return sorted(series, key=lambda s: (not s.critical, position.get(s.last.signal, len(position)), first_seen[s.gate]))


def _finite(value: Optional[float]) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)


def _scale(series: GateSeries) -> Scale:
    signal = series.signal
    if series.sequential or (signal is not None and signal.kind in ("ratio", "distribution")):
        if signal is not None and signal.kind == "distribution":
            notes = [v.note for _, v in series.views if _SHARE_NOTE.search(v.note)]
            if notes:
                side, boundary = _SHARE_NOTE.search(notes[-1]).groups()  # type: ignore[union-attr]
                return Scale(100.0, "%", f"requests {side} {boundary} {signal.unit} (%)", True)
            return Scale(100.0, "%", "requests beyond the boundary (%)", True)
        return Scale(100.0, "%", "bad share (%)", True)
    unit = signal.unit if signal is not None else ""
    factor = 1.0
    if unit == "bytes":
        largest = max((abs(x) for _, v in series.views for x in (v.candidate, v.reference) if _finite(x)), default=0.0)
        factor, unit = next(((1 / size, name) for size, name in _BINARY if largest >= size), (1.0, "bytes"))
    name = signal.name if signal is not None else series.gate
    what = f"{name} over the release" if signal is not None and signal.kind == "count" else name
    return Scale(factor, unit, f"{what} ({unit})" if unit else what, False)


def _format(value: Optional[float], scale: Scale) -> str:
    if value is None:
        return "–"
    if not math.isfinite(value):
        return str(value)
    shown = value * scale.factor
    return f"{shown:.3g} {scale.unit}".strip()


def _number(value: Optional[float], digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}".replace("-", "−") if math.isfinite(value) else str(value)


def _weights(weights: Mapping[str, int]) -> str:
    return " / ".join(f"{track} {weight} %" for track, weight in weights.items()) or "–"


def _step_changes(observations: Sequence[Observation]) -> list[tuple[float, Observation]]:
    """(time, first check of the new step): the weights a check reports held since the check
    before it, so a step begins at the previous check."""
    return [
        (before.seconds, after)
        for before, after in itertools.pairwise(observations)
        if (after.step, after.phase, after.weights) != (before.step, before.phase, before.weights)
    ]


def _reason(run: ReleaseRun) -> str:
    return run.message or run.last_reasons


# --- plots ---------------------------------------------------------------------------------


def _mpl(text: str) -> str:
    """Data text for matplotlib: `$` would start mathtext."""
    return text.replace("$", r"\$")


def _figure(panels: int) -> tuple[Figure, list[Axes]]:
    height = TOP_IN + BOTTOM_IN + panels * PANEL + (panels - 1) * GAP_IN
    figure = Figure(figsize=(WIDTH, height))
    axes = figure.subplots(panels, 1, sharex=True, squeeze=False)[:, 0].tolist()
    figure.subplots_adjust(left=LEFT, right=RIGHT, top=1 - TOP_IN / height, bottom=BOTTOM_IN / height, hspace=GAP_IN / PANEL)
    return figure, axes


def _time_axes(axes: Sequence[Axes], end: float, changes: Sequence[float]) -> None:
    for ax in axes:
        ax.set_xlim(0, end * 1.03)
        ax.grid(True, axis="y", color="#e6e6e6", linewidth=0.6)
        ax.set_axisbelow(True)
        for seconds in changes:
            ax.axvline(seconds, color=STEP_COLOUR, linestyle=":", linewidth=1)
    axes[-1].set_xlabel("time since the release started (s)")


def _legend(ax: Axes, extra: Sequence[Any] = ()) -> None:
    handles, labels = ax.get_legend_handles_labels()
    handles, labels = handles + [h for h, _ in extra], labels + [label for _, label in extra]
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False)


def _no_data(ax: Axes, times: Sequence[float], label: bool) -> None:
    if times:
        ax.plot(
            times, [0.0] * len(times), transform=ax.get_xaxis_transform(), linestyle="none", marker="x", markersize=5,
            color=NO_DATA_COLOUR, clip_on=False, label="no data" if label else None, zorder=5,
        )


def _svg(figure: Figure, figure_id: str, title: str) -> str:
    with matplotlib.rc_context({"svg.hashsalt": figure_id}):  # ids unique across the page's inline SVGs
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    figure.clear()  # not registered with pyplot: nothing else holds it once this returns
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]  # no XML prolog, no DOCTYPE (which names an external DTD)
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.S)
    # matplotlib names its groups figure_1, axes_1, ... in every SVG: one page, one namespace
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{figure_id}-\1"', svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{figure_id}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{figure_id}-\1)", svg)
    head = svg.index(">") + 1
    return f'{svg[:head - 1]} role="img" aria-labelledby="{figure_id}-title">\n<title id="{figure_id}-title">{html.escape(title)}</title>{svg[head:]}'


def _track_colour(track: str, index: int) -> str:
    return TRACK_COLOURS.get(track, OTHER_COLOURS[index % len(OTHER_COLOURS)])


def _weights_figure(observations: Sequence[Observation], end: float, changes: Sequence[float]) -> str:
    tracks = list(dict.fromkeys(t for o in observations for t in o.weights))
    times = [0.0] + [o.seconds for o in observations]
    with matplotlib.rc_context(RC):
        figure, (ax,) = _figure(1)
        for index, track in enumerate(tracks):
            weights = [o.weights.get(track, 0) for o in observations]
            ax.step(times, weights[:1] + weights, where="pre", color=_track_colour(track, index), linewidth=1.8, label=_mpl(track))
        for verdict, colour in VERDICT_COLOURS.items():
            at = [o.seconds for o in observations if o.verdict == verdict]
            if at:
                ax.plot(at, [1.04] * len(at), transform=ax.get_xaxis_transform(), linestyle="none", marker="v", markersize=4,
                        color=colour, clip_on=False, label=f"check: {verdict}")
        ax.set_ylim(0, 100)
        ax.set_yticks([0, 25, 50, 75, 100])
        ax.set_ylabel("traffic weight (%)")
        _time_axes([ax], end, changes)
        _legend(ax, [(Line2D([], [], color=STEP_COLOUR, linestyle=":"), "step change")] if changes else [])
        figure.text(0.01, 1 - 0.12 / figure.get_figheight(), "Traffic weight per track", ha="left", va="top", fontsize=10, fontweight="bold")
        return _svg(figure, "weights", "Traffic weight per track (%) against time since the release started (s)")


def _gate_title(series: GateSeries) -> str:
    summary = series.signal.summary if series.signal is not None else f"signal {series.last.signal}"
    return f"{series.gate} ({'critical' if series.critical else 'advisory'}) — {summary}"


def _gate_figure(series: GateSeries, figure_id: str, end: float, changes: Sequence[float]) -> str:
    scale = _scale(series)
    views = series.views
    missing = [t for t, v in views if v.state == "no data"]
    failed = [(t, v) for t, v in views if v.state == "fail"]
    with matplotlib.rc_context(RC):
        figure, axes = _figure(2 if series.sequential else 1)
        values = axes[0]
        times = [t for t, _ in views]
        # NaN where a check had no value: the line breaks there instead of bridging the gap
        candidate = [v.candidate * scale.factor if _finite(v.candidate) else math.nan for _, v in views]
        reference = [v.reference * scale.factor if _finite(v.reference) else math.nan for _, v in views]
        counted = series.signal is not None and series.signal.kind == "count"
        drawstyle = "steps-pre" if counted else "default"  # a count over the release grows between checks
        if not all(math.isnan(x) for x in candidate):
            values.plot(times, candidate, color=CANDIDATE_COLOUR, linewidth=1.6, marker="o", markersize=3, drawstyle=drawstyle, label="candidate", zorder=3)
        if not all(math.isnan(x) for x in reference):
            label, style = ("bound", "--") if series.absolute else ("reference", "-")
            values.plot(times, reference, color=REFERENCE_COLOUR, linestyle=style, linewidth=1.4, marker="" if style == "--" else "o", markersize=2.5, label=label, zorder=2)
        if counted:
            values.yaxis.set_major_locator(MaxNLocator(integer=True))
        if all(math.isnan(x) for x in candidate + reference):
            values.text(0.5, 0.5, "no values reported", transform=values.transAxes, ha="center", va="center", color=NO_DATA_COLOUR)
        values.set_ylim(bottom=0)
        values.set_ylabel(_mpl(textwrap.fill(scale.label, 26)))
        if not series.sequential and failed:
            points = [(t, v.candidate * scale.factor) for t, v in failed if _finite(v.candidate)]
            if points:
                values.plot(*zip(*points, strict=True), linestyle="none", marker="o", markersize=8, markerfacecolor="none", markeredgecolor=ROLLBACK_COLOUR, label="breach")
        _no_data(values, missing, label=True)
        if series.sequential:
            evidence_ax = axes[1]
            last_bounds = next(((v.upper, v.lower) for _, v in reversed(views) if v.upper is not None and v.lower is not None), None)
            extra: list[Any] = []
            if last_bounds is not None:
                upper, lower = last_bounds
                evidence_ax.axhspan(lower, upper, color="#9e9e9e", alpha=0.15, linewidth=0)
                evidence_ax.axhline(upper, color=ROLLBACK_COLOUR, linewidth=1.3)
                evidence_ax.axhline(lower, color=ACCEPT_COLOUR, linewidth=1.3)
                extra = [
                    (Line2D([], [], color=ROLLBACK_COLOUR, linewidth=1.3), f"roll back ≥ {_number(upper)}"),
                    (Patch(color="#9e9e9e", alpha=0.15), "undecided"),
                    (Line2D([], [], color=ACCEPT_COLOUR, linewidth=1.3), f"accept ≤ {_number(lower)}"),
                ]
            evidence = [(t, e) for t, v in views if _finite(e := v.evidence)]
            if evidence:
                evidence_ax.plot(*zip(*evidence, strict=True), color=EVIDENCE_COLOUR, linewidth=1.6, marker="o", markersize=3, label="evidence")
            points = [(t, v.evidence) for t, v in failed if _finite(v.evidence)]
            if points:
                evidence_ax.plot(*zip(*points, strict=True), linestyle="none", marker="o", markersize=8, markerfacecolor="none", markeredgecolor=ROLLBACK_COLOUR, label="fail")
            _no_data(evidence_ax, missing, label=False)
            levels = [e for _, e in evidence] + (list(last_bounds) if last_bounds is not None else [])
            if levels:
                low, high = min(levels), max(levels)
                pad = 0.08 * (high - low or 1.0)
                evidence_ax.set_ylim(low - pad, high + pad)
            evidence_ax.set_ylabel("evidence\n(log-LR / φ)")
            _legend(evidence_ax, extra)
        _time_axes(axes, end, changes)
        _legend(values, [(Line2D([], [], color=STEP_COLOUR, linestyle=":"), "step change")] if changes else [])
        title = _gate_title(series)
        figure.text(0.01, 1 - 0.12 / figure.get_figheight(), _mpl(textwrap.shorten(title, TITLE_CHARS, placeholder=" …")), ha="left", va="top", fontsize=10, fontweight="bold")
        return _svg(figure, figure_id, f"{title}: {scale.label} against time since the release started (s)")


def _caption(series: GateSeries) -> str:
    scale = _scale(series)
    signal = series.signal
    parts = []
    if series.sequential:
        if signal is not None and signal.kind == "distribution":
            parts.append(f"(a) the share of the candidate's requests {scale.label.removeprefix('requests ').removesuffix(' (%)')}, so far, against the reference's share")
        else:
            what = "the share of bad events (here those outside the share in the title: 100 % minus it)" if signal is not None and signal.direction == "down" else "the share of bad events"
            against = "the gate's bound" if series.absolute else "the reference's share"
            parts.append(f"(a) {what} of the candidate so far, against {against}")
        parts.append("(b) the evidence against the candidate: at or above the upper line the gate rolls back, at or below the lower one it accepts")
    else:
        parts.append(f"the candidate's level ({scale.unit or 'no unit'}) against the bound it is judged by (dashed)")
    if any(v.state == "no data" for _, v in series.views):
        parts.append("grey crosses: checks without data")
    title = _gate_title(series)
    lead = f"{title}. " if len(title) > TITLE_CHARS else ""  # the plot's title was shortened
    return lead + "; ".join(parts) + "."


# --- tables --------------------------------------------------------------------------------


def _evidence_table(all_series: Sequence[GateSeries]) -> str:
    rows = []
    for series in all_series:
        view, scale = series.last, _scale(series)
        state_class = view.state.replace(" ", "-")
        cells = [
            f"<td>{html.escape(view.gate)}</td>",
            f"<td>{'critical' if view.critical else 'advisory'}</td>",
            f'<td class="{html.escape(state_class)}">{html.escape(view.state)}</td>',
            f'<td class="num">{html.escape(_format(view.candidate, scale))}</td>',
            f'<td class="num">{html.escape(_format(view.reference, scale))}</td>',
            f'<td class="num">{_number(view.evidence)}</td>',
            f'<td class="num">{_number(view.upper)}</td>',
            f'<td class="num">{_number(view.lower)}</td>',
            f'<td class="num">{_number(view.dispersion) if series.sequential else "–"}</td>',
            f"<td>{html.escape(view.note)}</td>",
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("gate", "critical", "state", "candidate", "reference / bound", "evidence", "upper (roll back)", "lower (accept)", "dispersion φ", "note"))
    return f'<table id="evidence"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


_SHOWN = {"time", "stack", "service", "operator", "action", "release", "verdict", "reasons", "reason", "error"}


def _detail(key: str, value: Any) -> str:
    if key == "gates" and isinstance(value, (list, tuple)):
        states: dict[str, int] = {}
        for gate in value:
            state = gate.get("state") if isinstance(gate, Mapping) else getattr(gate, "state", None)
            if state is not None:
                states[str(state)] = states.get(str(state), 0) + 1
        counted = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
        return f"gates: {len(value)}" + (f" ({counted})" if counted else "")
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True, ensure_ascii=False)
    return f"{key}: {textwrap.shorten(text, 160, placeholder=' …')}"


def _why(entry: Mapping[str, Any]) -> str:
    reasons = entry.get("reasons")
    if isinstance(reasons, (list, tuple)) and reasons:
        return "; ".join(str(r) for r in reasons)
    return str(entry.get("reason") or entry.get("error") or "")


def _decisions_table(run: ReleaseRun, audit: Sequence[Mapping[str, Any]]) -> str:
    entries = [e for e in audit if e.get("release") == run.release_id]
    if not entries:
        return f'<p class="note" id="decisions">No audit entries for release {html.escape(run.release_id)}.</p>'
    rows = []
    for entry in entries:
        details = "<br>".join(html.escape(_detail(k, v)) for k, v in entry.items() if k not in _SHOWN)
        rows.append(
            f'<tr><td class="time">{html.escape(str(entry.get("time", "")))}</td>'
            f"<td>{html.escape(str(entry.get('operator', '')))}</td>"
            f"<td>{html.escape(str(entry.get('action', '')))}</td><td>{html.escape(str(entry.get('verdict', '')))}</td>"
            f'<td>{html.escape(_why(entry))}</td><td class="details">{details}</td></tr>'
        )
    head = "".join(f"<th>{h}</th>" for h in ("time", "operator", "action", "verdict", "why", "details"))
    return f'<table id="decisions"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


# --- a promotion's stages ------------------------------------------------------------------

PROMOTION_CSS = """
tr.current td{background:#fff8e1}
td.stage{font-weight:bold;white-space:nowrap}
td.through{color:#1d5c2a}
td.failed{color:#8a1c1c}
"""
STAGE_COLOURS = {"through": ACCEPT_COLOUR, "promoted": REFERENCE_COLOUR, "failed": ROLLBACK_COLOUR, "open": NO_DATA_COLOUR}
WAITING_COLOUR, NOTE_COLOUR = "#fdd49e", "#555555"
_BASE = ("time", "stack", "service", "tag", "event", "operator", "run")


@dataclass(frozen=True)
class StageLink:
    stack: str
    record: Optional[StageRecord]  # None: the tag never reached this stage
    report: Optional[str]  # the file name of the stage's report, beside this one


@dataclass(frozen=True)
class PromotionLinks:
    """A tag's promotion path, as the stages' reports and the promotion's page link it."""

    service: str
    tag: str
    current: Optional[str]  # the stage the page is about (a stage's report), or where the promotion is
    stages: tuple[StageLink, ...]  # in path order
    index: str  # the promotion's page: `promotion_page(service, tag)`


def promotion_page(service: str, tag: str) -> str:
    return f"promotion-{service}-{tag}.html"


def promotion_links(
    service: str, tag: str, stages: Sequence[str], events_by_stage: Mapping[str, Sequence[Mapping[str, Any]]], current: Optional[str] = None,
    reports: Optional[Mapping[str, str]] = None,
) -> PromotionLinks:
    """The links of `tag`'s promotion from each stage's evidence: a stage's report is the one its
    `released` event names, or `reports[stage]` (a report written before its event is)."""
    links = []
    for stack in stages:
        record = stage_record(events_by_stage.get(stack, ()), stack, tag)
        recorded = record.released.report if record is not None and record.released is not None else None
        links.append(StageLink(stack, record, (reports or {}).get(stack, recorded)))
    return PromotionLinks(service, tag, current, tuple(links), promotion_page(service, tag))


def _state(record: Optional[StageRecord]) -> str:
    """through | promoted (still watched) | failed (rolled back, stopped, verification failed) | open."""
    if record is None:
        return "open"
    if record.through:
        return "through"
    failed = (
        record.stopped is not None
        or (record.released is not None and record.released.outcome not in PROMOTED)
        or (record.watched is not None and record.watched.outcome not in SOAKED)
        or (record.verification is not None and not record.verification.passed)
    )
    return "failed" if failed else "promoted" if record.promoted else "open"


def _standing(links: PromotionLinks) -> tuple[str, str]:
    """The promotion's outcome in a few words, and its heading class."""
    states = [(link.stack, _state(link.record)) for link in links.stages]
    failed = next((stack for stack, state in states if state == "failed"), None)
    if failed is not None:
        return f"stopped at {failed}", "bad"
    if states and all(state == "through" for _, state in states):
        return f"through {states[-1][0]}", "good"
    reached = [link for link in links.stages if link.record is not None]
    if not reached:
        return "not started", ""
    last = reached[-1]
    waiting = last.record is not None and last.record.requested is not None and not last.record.approvals and last.record.entered is None
    return (f"waiting for an approval at {last.stack}" if waiting else f"at {last.stack}"), ""


def _link(target: Optional[str], text: str) -> str:
    """A link to a file beside this page (reports and the promotion's page share a directory)."""
    if not target:
        return html.escape(text)
    return f'<a href="{html.escape(urllib.parse.quote(target))}">{html.escape(text)}</a>'


def _path_table(links: PromotionLinks, here: str) -> str:
    """One row per stage: where the tag stands there and its report. The current stage is marked
    with `here`; in a stage's own report ("this report") its report cell does not link to itself."""
    rows = []
    for link in links.stages:
        current = link.stack == links.current
        said = link.record.describe() if link.record is not None else "never entered"
        report = html.escape(here) if current and here == "this report" else _link(link.report, link.report or "–")
        stage = html.escape(link.stack) + (f" ◀ {html.escape(here)}" if current else "")
        rows.append(
            ('<tr class="current">' if current else "<tr>")
            + f'<td class="stage">{stage}</td><td class="{_state(link.record)}">{html.escape(said)}</td><td>{report}</td></tr>'
        )
    head = "".join(f"<th>{h}</th>" for h in ("stage", "where the tag stands", "report"))
    return f'<table id="promotion"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _num(at: datetime.datetime) -> float:
    """A time as matplotlib's date axis counts it."""
    return float(mdates.date2num(at))


def _span(record: StageRecord) -> tuple[datetime.datetime, datetime.datetime]:
    """From entering the stage (or the first event) to the end of its watch (or its last event)."""
    times = [parse_time(str(e["time"])) for e in record.events]
    start = parse_time(record.entered) if record.entered else min(times)
    end_at = (
        record.watched.time if record.watched is not None
        else record.stopped.time if record.stopped is not None
        else record.watch_until if record.watch_until is not None
        else None
    )
    end = parse_time(end_at) if end_at else max(times)
    return start, max(end, start)


def _timeline_figure(links: PromotionLinks) -> str:
    reached = [link for link in links.stages if link.record is not None]
    times = [parse_time(str(e["time"])) for link in reached if link.record for e in link.record.events]
    times += [_span(link.record)[1] for link in reached if link.record]
    low, high = (min(times), max(times)) if times else (datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc),) * 2
    pad = max((high - low) * 0.05, datetime.timedelta(minutes=1))
    rows = len(links.stages)
    height = TOP_IN + BOTTOM_IN + 0.3 + 0.62 * rows
    marks = {
        "verified": ("o", ACCEPT_COLOUR, 7), "verification failed": ("X", ROLLBACK_COLOUR, 8), "released": ("^", REFERENCE_COLOUR, 7),
        "rolled back": ("X", ROLLBACK_COLOUR, 9), "stopped": ("s", "#4d4d4d", 5), "approved": ("D", "#7b3294", 6),
    }
    with matplotlib.rc_context({**RC, "timezone": "UTC"}):
        figure = Figure(figsize=(WIDTH, height))
        figure.subplots_adjust(left=0.14, right=RIGHT, top=1 - TOP_IN / height, bottom=BOTTOM_IN / height)
        ax = figure.add_subplot()
        used: set[str] = set()

        def mark(kind: str, at: datetime.datetime, y: float) -> None:
            marker, colour, size = marks[kind]
            ax.plot([_num(at)], [y], linestyle="none", marker=marker, markersize=size, color=colour, zorder=5 if kind == "stopped" else 4,
                    label=None if kind in used else kind)
            used.add(kind)

        def note(text: str, at: datetime.datetime, y: float, line: int) -> None:
            """A note on the row's line `line`: 0, 1, ... above its bar (approvals), -1, -2, ... below it (overrides)."""
            late = (at - low) > (high - low) * 0.6  # ends at its mark rather than run past the axis
            offset = 11 + 9 * line if line >= 0 else -11 + 9 * (line + 1)
            ax.annotate(_mpl(textwrap.shorten(text, 48, placeholder=" …")), (_num(at), y), xytext=(0, offset), textcoords="offset points",
                        fontsize=7, color=NOTE_COLOUR, ha="right" if late else "left", va="bottom" if line >= 0 else "top")

        for row, link in enumerate(links.stages):
            record = link.record
            if record is None:
                ax.text(0.5, row, "never entered", transform=ax.get_yaxis_transform(), ha="center", va="center", color=NO_DATA_COLOUR)
                continue
            start, end = _span(record)
            if record.requested is not None:
                waited = parse_time(record.entered) if record.entered else end
                ax.barh(row, _num(waited) - _num(parse_time(record.requested)), left=_num(parse_time(record.requested)),
                        height=0.35, color=WAITING_COLOUR, label=None if "waiting" in used else "waiting for approval", zorder=2)
                used.add("waiting")
            if record.entered is not None:
                state = _state(record)
                ax.barh(row, max(_num(end) - _num(start), 0.0), left=_num(start), height=0.5,
                        color=STAGE_COLOURS[state], alpha=0.35, edgecolor=STAGE_COLOURS[state], zorder=2,
                        label=None if state in used else {"through": "through", "promoted": "watching", "failed": "stopped / rolled back", "open": "in progress"}[state])
                used.add(state)
            for line, approval in enumerate(record.approvals):
                mark("approved", parse_time(approval.time), row)
                note(f"approved by {approval.by}: {approval.reason}", parse_time(approval.time), row, line)
            for line, override in enumerate(record.overrides):
                note(f"override {override.gate} by {override.by}: {override.reason}", parse_time(override.time), row, -1 - line)
            if record.verification is not None:
                mark("verified" if record.verification.passed else "verification failed", parse_time(record.verification.time), row)
            if record.released is not None:
                mark("released" if record.released.outcome in PROMOTED else "rolled back", parse_time(record.released.time), row)
            if record.watched is not None and record.watched.outcome == "rolled back":
                mark("rolled back", parse_time(record.watched.time), row)
            if record.stopped is not None:
                mark("stopped", parse_time(record.stopped.time), row)
        locator = mdates.AutoDateLocator(tz=datetime.timezone.utc)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=datetime.timezone.utc))
        ax.set_xlim(_num(low - pad), _num(high + pad))
        ax.set_ylim(rows - 0.4, -0.8)  # the first stage on top, room above it for its notes
        ax.set_yticks(range(rows), [_mpl(link.stack) for link in links.stages])
        ax.grid(True, axis="x", color="#e6e6e6", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.set_xlabel("time (UTC)")
        _legend(ax)
        figure.text(0.01, 1 - 0.12 / height, _mpl(f"{links.tag} of {links.service} through its stages"), ha="left", va="top", fontsize=10, fontweight="bold")
        return _svg(figure, "timeline", f"The promotion of {links.tag}: each stage from entering it to the end of its watch, against time (UTC)")


def _events_table(links: PromotionLinks) -> str:
    """Every stage's events of the tag, in time order (path order within a second)."""
    events = sorted(
        ((str(e.get("time", "")), index, link.stack, e) for index, link in enumerate(links.stages) if link.record for e in link.record.events),
        key=lambda item: (item[0], item[1]),
    )
    rows = []
    for time, _, stack, entry in events:
        details = [
            _link(str(value), f"report: {value}") if key == "report" and value else html.escape(_detail(key, value))
            for key, value in entry.items() if key not in _BASE
        ]
        rows.append(
            f'<tr><td class="time">{html.escape(time)}</td><td class="stage">{html.escape(stack)}</td><td>{html.escape(str(entry.get("event", "")))}</td>'
            f'<td>{html.escape(str(entry.get("operator", "")))}</td><td class="details">{"<br>".join(details)}</td></tr>'
        )
    head = "".join(f"<th>{h}</th>" for h in ("time", "stage", "event", "who", "details"))
    return f'<table id="events"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def render_promotion(links: PromotionLinks) -> str:
    """The promotion's own page (`links.index`): where the tag stands at each stage, its timeline,
    and every event, linking each stage's report. Self-contained like a stage's report."""
    standing, outcome_class = _standing(links)
    path = " → ".join(link.stack for link in links.stages)
    heading = f'<h1>{html.escape(links.tag)} of {html.escape(links.service)}, {html.escape(path)}: <span class="outcome {outcome_class}">{html.escape(standing)}</span></h1>'
    digests = sorted({link.record.digest for link in links.stages if link.record and link.record.digest})
    runs = list(dict.fromkeys(str(e.get("run")) for link in links.stages if link.record for e in link.record.events))
    facts = [f"digest {', '.join(digests) if digests else 'unknown'}", f"run{'s' if len(runs) != 1 else ''} {', '.join(runs) or '–'}"]
    body = [heading, f'<p class="summary">{" · ".join(html.escape(f) for f in facts)}</p>', "<h2>Stages</h2>", _path_table(links, "now")]
    if any(link.record for link in links.stages):
        body.append("<h2>Timeline</h2>")
        body.append(
            f'<figure id="timeline" class="plot">{_timeline_figure(links)}<figcaption>Each stage from entering it to the end of its watch '
            "(its last event while it runs); the lighter bar before it: waiting for an approval. Marks: the verification suite, the release, "
            "rollbacks and stops; notes: approvals and overrides with their reasons.</figcaption></figure>"
        )
        body.append("<h2>Events</h2>")
        body.append(_events_table(links))
    else:
        body.append('<p class="note">No stage has evidence of this tag yet.</p>')
    return _page(f"{links.tag} of {links.service}: {standing}", CSS + PROMOTION_CSS, body)


# --- the page ------------------------------------------------------------------------------


def _slug(text: str, taken: set[str]) -> str:
    base = "gate-" + (re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x")
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    taken.add(slug)
    return slug


def render(run: ReleaseRun, audit: Sequence[dict], signals: Sequence[Signal] = CHAT_API, promotion: Optional[PromotionLinks] = None) -> str:
    """The report of one release run as a self-contained HTML page; with `promotion`, a stage of
    a promotion path, whose section links the other stages' reports and the promotion's page."""
    observations = run.observations
    what = f"{run.tag or 'release'}" + (f" of {run.service}" if run.service else "")
    name = f"{what} on {run.stack}" if run.stack else (run.tag or f"release {run.release_id}")
    outcome_class = "bad" if run.outcome in ("rolled back", "switched back", "stopped") else "good" if run.outcome in ("promoted", "switched") else ""
    heading = (
        f'<h1>{html.escape(name)}: <span class="outcome {outcome_class}">{html.escape(run.outcome)}</span>'
        f" — {html.escape(_reason(run))}</h1>"
    )
    end = max((o.seconds for o in observations), default=0.0)
    facts = [
        f"strategy {run.strategy or '–'}",
        f"release {run.release_id}",
        f"duration {duration(end)}",
        f"{len(observations)} check{'s' if len(observations) != 1 else ''}",
        f"weights at the last check: {_weights(observations[-1].weights) if observations else '–'}",
    ]
    summary = f'<p class="summary">{" · ".join(html.escape(f) for f in facts)}</p>'
    body = [heading, summary]
    if promotion is not None:
        body.append("<h2>Promotion path</h2>")
        body.append(
            f'<p class="note">{html.escape(promotion.tag)} of {html.escape(promotion.service)} through {html.escape(" → ".join(s.stack for s in promotion.stages))}: '
            f"each stage's report, and {_link(promotion.index, 'the whole promotion')} (its timeline and every event).</p>"
        )
        body.append(_path_table(promotion, "this report"))

    if observations:
        changes = _step_changes(observations)
        change_times = [t for t, _ in changes]
        steps = [(0.0, observations[0])] + changes
        listing = "; ".join(f"step {o.step} ({o.phase}) from {t:.0f} s: {_weights(o.weights)}" for t, o in steps)
        body.append("<h2>Traffic</h2>")
        body.append(
            f'<figure id="weights" class="plot">{_weights_figure(observations, max(end, 1.0), change_times)}'
            f"<figcaption>{html.escape(listing)}. Triangles on top: each check, coloured by its verdict; dotted lines: step changes (on every plot).</figcaption></figure>"
        )
        all_series = _series(run, signals)
        if all_series:
            body.append("<h2>Gates</h2>")
            body.append(
                '<p class="note">Evidence is the log-likelihood ratio of “the candidate is worse by the signal’s bad factor” against '
                "“it is as good as the reference”, divided by the dispersion φ. A gate rolls back at or above its upper boundary and "
                "accepts at or below its lower one. Gauges and counts have no evidence: they are judged against their bound.</p>"
            )
            taken: set[str] = set()
            for series in all_series:
                figure_id = _slug(series.gate, taken)
                body.append(
                    f'<figure id="{figure_id}" class="plot gate" aria-label="{html.escape(_gate_title(series))}">'
                    f"{_gate_figure(series, figure_id, max(end, 1.0), change_times)}"
                    f"<figcaption>{html.escape(_caption(series))}</figcaption></figure>"
                )
            body.append("<h2>Evidence at the end against the thresholds</h2>")
            body.append('<p class="note">Each gate as of the last check that reported it.</p>')
            body.append(_evidence_table(all_series))
    else:
        body.append('<p class="note">No check was recorded: there is nothing to plot.</p>')

    body.append("<h2>Decisions</h2>")
    body.append(_decisions_table(run, audit))
    return _page(f"{name}: {run.outcome}", CSS + (PROMOTION_CSS if promotion is not None else ""), body)


def _page(title: str, css: str, body: Sequence[str]) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{css}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )

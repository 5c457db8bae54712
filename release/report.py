"""The end-of-release report: one self-contained HTML page with plots (inline SVG) of
the weight, the 5xx ratio and p95 per version over the release, and the decisions."""

from __future__ import annotations

import html
from typing import Callable, Optional, Sequence

from release.driver import Observation, ReleaseRun

COLOURS = {"stable": "#1f77b4", "canary": "#d62728", "blue": "#2166ac", "green": "#1a9850"}
WIDTH, HEIGHT, PAD = 640, 180, 40


def _chart(title: str, observations: Sequence[Observation], value: Callable[[Observation, str], Optional[float]], unit: str) -> str:
    tracks = sorted({t for o in observations for t in list(o.samples) + list(o.weights)})
    points = {t: [(o.seconds, value(o, t)) for o in observations if value(o, t) is not None] for t in tracks}
    xs = [x for series in points.values() for x, _ in series] or [0.0, 1.0]
    ys = [y for series in points.values() for _, y in series] or [0.0, 1.0]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y1 = max(ys) * 1.1 if max(ys) > 0 else 1.0

    def at(x: float, y: float) -> str:
        return f"{PAD + (x - x0) / (x1 - x0) * (WIDTH - 2 * PAD):.1f},{HEIGHT - PAD - y / y1 * (HEIGHT - 2 * PAD):.1f}"

    lines = [
        f'<polyline fill="none" stroke="{COLOURS.get(t, "#555")}" stroke-width="2" points="{" ".join(at(x, y) for x, y in series)}"><title>{html.escape(t)}</title></polyline>'
        for t, series in points.items()
        if series
    ]
    legend = " ".join(f'<tspan fill="{COLOURS.get(t, "#555")}">■ {html.escape(t)}</tspan>' for t in tracks)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{html.escape(title)}">'
        f'<text x="{PAD}" y="16" font-size="13">{html.escape(title)} ({html.escape(unit)}, max {y1:.3g})</text>'
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>'
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>'
        f'<text x="{PAD}" y="{HEIGHT - 12}" font-size="11">{legend} · seconds {x0:.0f} to {x1:.0f}</text>'
        + "".join(lines)
        + "</svg>"
    )


def render(stack: str, tag: str, run: ReleaseRun, audit: Sequence[dict]) -> str:
    observations = run.observations
    charts = [
        _chart("Traffic weight", observations, lambda o, t: o.weights.get(t), "%"),
        _chart("5xx ratio", observations, lambda o, t: (r * 100 if (r := o.samples[t].error_ratio) is not None else None) if t in o.samples else None, "%"),
        _chart("p95 latency", observations, lambda o, t: o.samples[t].p95_seconds if t in o.samples else None, "s"),
    ]
    rows = "".join(
        f"<tr><td>{html.escape(e['time'])}</td><td>{html.escape(e['operator'])}</td><td>{html.escape(e['action'])}</td>"
        f"<td>{html.escape(str(e.get('verdict', '')))}</td><td>{html.escape('; '.join(e.get('reasons', [])) or str(e.get('reason', e.get('error', ''))))}</td></tr>"
        for e in audit
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Release {html.escape(tag)} on {html.escape(stack)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;border-bottom:1px solid #ddd;font-size:12px}</style>"
        f"</head><body><h1>Release {html.escape(tag)} on {html.escape(stack)}: {html.escape(run.outcome)}</h1>"
        f"<p>{html.escape(run.message)}</p>"
        + "".join(f"<div>{chart}</div>" for chart in charts)
        + "<h2>Decisions</h2><table><tr><th>time</th><th>operator</th><th>action</th><th>verdict</th><th>why</th></tr>"
        + rows
        + "</table></body></html>"
    )

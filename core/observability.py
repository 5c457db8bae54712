"""What Prometheus records and alerts on, and what Grafana shows, per version of a service.

Pure data, rendered by the `ReleaseSignals` component and checked by `promtool` in the
tests. The signal catalogue (`core.signals`) is the source: every signal gets its
recording rules, its alerts and its dashboard panel from its own templates, so no
signal is defined twice. Series carry `namespace`, `track` (stable, canary, blue,
green) and `version` (the image tag): relabelled from the pods' labels by the
ServiceMonitor for the application's metrics, joined from `kube_pod_labels` for
Kubernetes' own.

Recorded per signal (`<name>` is the signal's name with `_` for `-`):

- ratio: `carepath:<name>:ratio_rate5m`, the numerator's share of the denominator. That is
  the bad share for `direction: up` and the good share for `direction: down` (for
  `triage-success`, the share of triages that succeeded): the series shows what the
  signal's summary says, and the alerts judge its complement.
- distribution: `carepath:<name>:p<q>_5m` at the signal's quantile, and at 1 - quantile
  too for `direction: either`.
- gauge: `carepath:<name>:avg5m`, with `carepath:<name>:limit` when it has a `limit`.
- count: `carepath:<name>:increase15m`.

Alerted per signal (`<Name>` in CamelCase), critical for a critical signal, a warning for an
advisory one:

- `ChatApi<Name>WorseThanStable` for a signal judged relatively: the canary `bad` x worse
  than stable (ratios: in bad share, plus `canaryErrorMargin`), with enough traffic.
- `ChatApiHigh<Name>` for one judged absolutely: a version beyond `bound` (x `limit` for
  gauges). `monitoring.thresholds` sets the bounds of `errors` (`ChatApiHighErrorRatio`),
  `latency-p95` and `restarts`.

Besides the catalogue: the request rate (traffic panels, and the least traffic an
alert needs), and, with the mesh, Istio's view (`istio_requests_total`) of the same
pods, labelled by Istio with the destination workload and version, and (through the
CanaryRouter's Telemetry) the request host. Mirrored requests carry a `-shadow` host:
Istio's patient-traffic series leave them out and a shadow series counts them. The
app's own series cannot tell them apart, so while a mirror is on, judge the canary on
the Istio series.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from core.settings import ThresholdSettings
from core.signals import DEFAULT_SERVICE, Signal, catalogue, render, selectors

BY = "namespace, track, version"
NAMESPACES = 'namespace=~"carepath-.*"'  # the rules cover every stack's namespace
RUNBOOK = "https://github.com/carepath/deploy/blob/main/README.md#alerts"

REQUESTS = "carepath:http_requests:rate5m"
MESH_REQUESTS = "carepath:istio_requests:rate5m"
MESH_ERROR_RATIO = "carepath:istio_errors:ratio_rate5m"
SHADOW_REQUESTS = "carepath:istio_shadow_requests:rate5m"
SHADOW_HOST = '".*-shadow(:[0-9]+)?"'

# Counts are judged over the last 15 minutes (a restart is rare, 5 minutes would forget it).
WINDOWS = {"count": "15m"}
UNITS = {"ratio": "percentunit", "s": "s", "bytes": "bytes", "cores": "cores", "tokens": "short"}
HUMANIZE = {"ratio": "humanizePercentage", "s": "humanizeDuration", "bytes": "humanize1024"}

VERSION = "{{ $labels.version }}"
TRACK = "{{ $labels.track }}"
ROLL_BACK = "make abort STACK=<stack>: back to the version the release replaces (canary: all traffic to stable; blue/green: switch back; rolling: the previous tag)."
RELATIVE_RUNBOOK = (
    "make abort STACK=<stack>: all traffic returns to stable in one pulumi up. Then compare the two versions "
    "on this signal's dashboard panel and read the canary's logs."
)
# What to do when an absolute alert fires; signals not named here get ABSOLUTE_RUNBOOK.
RUNBOOKS = {
    "errors": f"{ROLL_BACK} Then read the version's logs for the failing requests.",
    "latency-p95": "Compare with the other track's p95 on the dashboard; if only the new version is slow, hold or roll back "
    "the release. If all versions are slow, check the model backend and CPU throttling.",
    "restarts": "kubectl describe pod and kubectl logs --previous; OOMKilled means raising chatApi.resources.limits.memory.",
    "pods-not-ready": "kubectl rollout status and kubectl get events in the namespace: failing probes, a bad image, or no "
    "capacity to schedule. A stuck rollout also fails pulumi up after progressDeadlineSeconds.",
    "cpu": "A container at its CPU limit is throttled and answers slowly: raise chatApi.resources.limits.cpu or the "
    "replicas; if only the new version needs more, roll it back.",
    "memory": "A container at its memory limit is OOM-killed: raise chatApi.resources.limits.memory; if only the new "
    "version needs more, roll it back.",
}
ABSOLUTE_RUNBOOK = f"If only the new version is affected, roll it back. {ROLL_BACK} If every version is, the cause is outside the release."


@dataclass(frozen=True)
class Recorded:
    """One series recorded for a signal, and which way it gets worse."""

    record: str
    worse: str  # ">": higher is worse, "<": lower is
    quantile: Optional[float] = None  # distributions


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _snake(signal: Signal) -> str:
    return signal.name.replace("-", "_")


def _camel(name: str) -> str:
    """`time-to-first-token` -> `TimeToFirstToken`."""
    return "".join(part.capitalize() for part in re.split(r"[-_]", name))


def _quantile(name: str, quantile: float, worse: str) -> Recorded:
    return Recorded(f"carepath:{name}:p{quantile * 100:g}_5m", worse, quantile)


def recorded(signal: Signal) -> tuple[Recorded, ...]:
    """The signal's recording rules, the judged one first."""
    name, worse = _snake(signal), "<" if signal.direction == "down" else ">"
    if signal.kind == "ratio":
        return (Recorded(f"carepath:{name}:ratio_rate5m", worse),)
    if signal.kind == "distribution":
        judged = _quantile(name, signal.quantile, worse)
        # `either`: output drifting longer shows at the quantile, shorter at 1 - quantile.
        return (judged, _quantile(name, round(1 - signal.quantile, 6), "<")) if signal.direction == "either" else (judged,)
    if signal.kind == "gauge":
        return (Recorded(f"carepath:{name}:avg5m", worse),)
    return (Recorded(f"carepath:{name}:increase{WINDOWS['count']}", worse),)


def limit_record(signal: Signal) -> str:
    return f"carepath:{_snake(signal)}:limit"


def _signal_rules(signal: Signal, service: str) -> list[dict[str, Any]]:
    values = {**selectors(service, NAMESPACES), "by": BY, "window": WINDOWS.get(signal.kind, "5m")}
    numerator, denominator, query, limit = (
        render(template, **values) for template in (signal.numerator, signal.denominator, signal.query, signal.limit)
    )
    rules = []
    for side in recorded(signal):
        if signal.kind == "ratio":
            # A version without a single numerator event has no numerator series: count it as 0, not as missing.
            expr = f"({numerator} or ({denominator}) * 0) / ({denominator})"
        elif signal.kind == "distribution":
            expr = f"histogram_quantile({side.quantile:g}, {query})"
        else:
            expr = query
        rules.append({"record": side.record, "expr": expr})
    return rules + ([{"record": limit_record(signal), "expr": limit}] if signal.limit else [])


def _mesh_rules(service: str) -> list[dict[str, Any]]:
    """Istio's view of the same pods, by the destination workload's labels."""
    destination = f'reporter="destination", destination_workload=~"{service}.*"'
    patients = f"{destination}, request_host!~{SHADOW_HOST}"
    mesh_by = "destination_workload_namespace, destination_workload, destination_version"
    mesh_errors = f'sum by ({mesh_by}) (rate(istio_requests_total{{{patients}, response_code=~"5.."}}[5m]))'
    return [
        {"record": MESH_REQUESTS, "expr": f"sum by ({mesh_by}) (rate(istio_requests_total{{{patients}}}[5m]))"},
        {"record": MESH_ERROR_RATIO, "expr": f"({mesh_errors} or {MESH_REQUESTS} * 0) / {MESH_REQUESTS}"},
        {
            "record": SHADOW_REQUESTS,
            "expr": f"sum by ({mesh_by}) (rate(istio_requests_total{{{destination}, request_host=~{SHADOW_HOST}}}[5m]))",
        },
    ]


def _recording_rules(signals: Sequence[Signal], service: str) -> list[dict[str, Any]]:
    requests = render("sum by ($by) (rate(http_requests_total{$app}[5m]))", **selectors(service, NAMESPACES), by=BY)
    rules = [{"record": REQUESTS, "expr": requests}]
    for signal in signals:
        rules += _signal_rules(signal, service)
    return rules + _mesh_rules(service)


def _alert_bounds(thresholds: ThresholdSettings) -> dict[str, float]:
    """Absolute alert bounds `monitoring.thresholds` sets; they win over the catalogue's (the release gate's),
    and give an absolute alert to a signal the catalogue judges relatively only (latency-p95)."""
    # `restarts` is the count that alerts; a bound is the worst acceptable value.
    return {"errors": thresholds.error_ratio, "latency-p95": thresholds.latency_p95_seconds, "restarts": thresholds.restarts - 1}


def _relative_level(signal: Signal, side: Recorded, reference: str, margin: float) -> str:
    """The level past which the candidate's `side` is `bad` x worse than `reference`. Ratios compare
    bad shares, plus `margin`, so that a flawless reference does not make one failure an alert."""
    if signal.kind != "ratio":
        return f"{signal.bad:g} * {reference}" if side.worse == ">" else f"{reference} / {signal.bad:g}"
    if side.worse == ">":
        return f"{signal.bad:g} * {reference} + {margin:g}"
    return f"1 - ({signal.bad:g} * (1 - {reference}) + {margin:g})"  # a good share: its complement is the bad one


def _worse_than_stable(signal: Signal, side: Recorded, margin: float) -> str:
    canary, stable = f'{side.record}{{track="canary"}}', f'{side.record}{{track="stable"}}'
    # group_left keeps the canary's labels (its version) on the result; the level needs no parentheses (arithmetic
    # binds tighter than a comparison), and must have none: after group_left they would read as a label list.
    return f"({canary} {side.worse} ignoring (track, version) group_left {_relative_level(signal, side, stable, margin)})"


def _enough_traffic(expr: str, thresholds: ThresholdSettings) -> str:
    """A quiet version never alerts on two requests."""
    return f"({expr}) and on ({BY}) ({REQUESTS} > {thresholds.min_requests_per_second:g})"


def _alert(signal: Signal, service: str, name: str, expr: str, summary: str, description: str, runbook: str) -> dict[str, Any]:
    """Critical for a signal that can roll a release back, a warning for an advisory one."""
    return {
        "alert": name,
        "expr": expr,
        "for": "0m" if signal.kind == "count" else "5m" if signal.critical else "10m",  # a count already spans its window
        "labels": {"severity": "critical" if signal.critical else "warning", "service": service, "signal": signal.name},
        "annotations": {
            "summary": summary,
            "description": f"{_capital(description)}.",
            "runbook": runbook,
            "runbook_url": RUNBOOK,
        },
    }


def _value(signal: Signal) -> str:
    return "{{ $value | " + HUMANIZE.get(signal.unit, "humanize") + " }}"


def _relative_alert(signal: Signal, service: str, thresholds: ThresholdSettings) -> dict[str, Any]:
    margin = thresholds.canary_error_margin
    worse = [_worse_than_stable(signal, side, margin) for side in recorded(signal)]
    in_events = f" in bad events, plus {margin:.2%}" if signal.kind == "ratio" else ""
    return _alert(
        signal,
        service,
        f"{_camel(service)}{_camel(signal.name)}WorseThanStable",
        _enough_traffic(" or ".join(worse), thresholds),
        f"{signal.summary}: {_value(signal)} for canary {VERSION}, worse than stable",
        f"{signal.summary}: the canary is worse than stable by more than {signal.bad:g}x{in_events}",
        RELATIVE_RUNBOOK,
    )


def _absolute_alert(signal: Signal, service: str, thresholds: ThresholdSettings, bound: float) -> dict[str, Any]:
    side = recorded(signal)[0]  # the bound is for the judged series
    if signal.kind == "ratio" and side.worse == "<":
        bound = 1 - bound  # a ratio's bound is on the bad share, this series is the good one
    value = f"floor({side.record})" if signal.kind == "count" else side.record  # increase() extrapolates past whole events
    expr = f"{value} {side.worse} {bound:g}" + (f" * {limit_record(signal)}" if signal.limit else "")
    if signal.limit:
        bound_text = f"{bound:.0%} of the limit"
    else:
        bound_text = f"{bound:.2%}" if signal.unit == "ratio" else f"{bound:g} {signal.unit}"
    return _alert(
        signal,
        service,
        # The README and runbooks know the 5xx alert by this name.
        f"{_camel(service)}HighErrorRatio" if signal.name == "errors" else f"{_camel(service)}High{_camel(signal.name)}",
        _enough_traffic(expr, thresholds) if signal.statistical else expr,
        f"{signal.summary}: {_value(signal)} for {service} {VERSION} ({TRACK})",
        f"{signal.summary}: {'above' if side.worse == '>' else 'below'} {bound_text} for this version",
        RUNBOOKS.get(signal.name, ABSOLUTE_RUNBOOK),
    )


def _alerts(signals: Sequence[Signal], service: str, thresholds: ThresholdSettings) -> list[dict[str, Any]]:
    bounds = _alert_bounds(thresholds)
    alerts = []
    for signal in signals:
        if signal.judged in ("relative", "both"):
            alerts.append(_relative_alert(signal, service, thresholds))
        bound = bounds.get(signal.name, None if signal.judged == "relative" else signal.bound)
        if bound is not None:
            alerts.append(_absolute_alert(signal, service, thresholds, bound))
    return alerts


def rule_groups(thresholds: ThresholdSettings, signals: Sequence[Signal] = catalogue(), service: str = DEFAULT_SERVICE) -> list[dict[str, Any]]:
    """Prometheus rule groups: recording rules first (the alerts and the dashboard read them)."""
    return [
        {"name": f"carepath-{service}.recording", "interval": "30s", "rules": _recording_rules(signals, service)},
        {"name": f"carepath-{service}.alerts", "rules": _alerts(signals, service, thresholds)},
    ]


def _panel(panel_id: int, title: str, targets: list[tuple[str, str]], unit: str, y: int, x: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(65 + i), "expr": expr, "legendFormat": legend} for i, (expr, legend) in enumerate(targets)],
    }


def _signal_panel(signal: Signal) -> tuple[str, list[tuple[str, str]], str]:
    sides = recorded(signal)
    targets = [(side.record, ("" if len(sides) == 1 or side.quantile is None else f"p{side.quantile * 100:g} ") + "{{track}} {{version}}") for side in sides]
    if signal.limit:
        targets.append((limit_record(signal), "limit {{track}} {{version}}"))
    return _capital(signal.summary), targets, UNITS.get(signal.unit, "short")


def dashboard(signals: Sequence[Signal] = catalogue(), service: str = DEFAULT_SERVICE) -> dict[str, Any]:
    """The Grafana dashboard: traffic per version and the weight each track gets, Istio's view, then one
    panel per signal, with Deployment changes as release annotations."""
    panels = [
        ("Requests per second by version", [(f"sum by (track, version) ({REQUESTS})", "{{track}} {{version}}")], "reqps"),
        (
            "Traffic weight by track (observed)",
            [(f"sum by (track) ({REQUESTS}) / ignoring (track) group_left sum({REQUESTS})", "{{track}}")],
            "percentunit",
        ),
        (
            "Mesh view: 5xx ratio by version (Istio)",
            [(MESH_ERROR_RATIO, "{{destination_workload}} {{destination_version}}")],
            "percentunit",
        ),
        (
            "Shadow traffic (mirrored to the canary, answers discarded)",
            [(f"sum by (destination_version) ({SHADOW_REQUESTS})", "{{destination_version}}")],
            "reqps",
        ),
        *(_signal_panel(signal) for signal in signals),
    ]
    return {
        "uid": f"carepath-{service}-releases",
        "title": f"{service} releases",
        "tags": ["carepath", service],
        "timezone": "utc",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]},
        "annotations": {
            "list": [
                {
                    "name": "Releases",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "enable": True,
                    "iconColor": "purple",
                    "expr": f'changes(kube_deployment_status_observed_generation{{deployment=~"{service}(-.*)?"}}[2m]) > 0',
                    "titleFormat": "{{deployment}} rolled",
                }
            ]
        },
        "panels": [
            _panel(index + 1, title, targets, unit, y=(index // 2) * 8, x=(index % 2) * 12)
            for index, (title, targets, unit) in enumerate(panels)
        ],
    }


def dashboard_queries(board: dict[str, Any]) -> list[str]:
    """Every PromQL expression the dashboard runs: panel targets and annotations."""
    queries = [target["expr"] for panel in board["panels"] for target in panel["targets"]]
    return queries + [annotation["expr"] for annotation in board["annotations"]["list"]]

"""What Prometheus records and alerts on, and what Grafana shows, per version of a service.

Pure data, rendered by the `ReleaseSignals` component and checked by `promtool` in the
tests. The signal catalogue (`core.signals`) is the source: every signal gets its
recording rules, its alerts and its dashboard panel from its own templates, so no
signal is defined twice. Series carry `namespace`, `track` (stable, canary, blue,
green) and `version` (the image tag): relabelled from the pods' labels by the
ServiceMonitor for the application's metrics, joined from `kube_pod_labels` for
Kubernetes' own.

A service's own series are found by `selectors` (here and in the release driver's
queries): its tracks' Services by `job`, which the Prometheus Operator sets to the
Service's name, that is the track's Deployment name (`workloads`); exact names, so
`chat-api` never matches `chat-api-v2`. Every series recorded here carries the
service as a `service` label, so several services share one Prometheus without their
series colliding; every alert and dashboard query reads its own service's.

Recorded per signal (`<name>` is the signal's name with `_` for `-`), by `service,
namespace, track, version`:

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

- `<Service><Name>WorseThanStable` for a signal judged relatively (`ChatApiErrorsWorseThanStable`):
  the canary `bad` x worse than stable (ratios: in bad share, plus `canaryErrorMargin`), with
  enough traffic.
- `<Service>High<Name>` for one judged absolutely: a version beyond `bound` (x `limit` for
  gauges). `monitoring.thresholds` sets the bounds of `errors` (`<Service>HighErrorRatio`),
  `latency-p95` and `restarts`.

Besides the catalogue: the request rate (traffic panels, and the least traffic an
alert needs), and, with the mesh, Istio's view (`istio_requests_total`) of the same
pods, labelled by Istio with the destination workload and version, and (through the
Istio router's Telemetry) the request host. Mirrored requests carry a `-shadow` host:
Istio's patient-traffic series leave them out and a shadow series counts them. The
app's own series cannot tell them apart, so while a mirror is on, judge the canary on
the Istio series.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from core.release import deployments
from core.settings import ThresholdSettings
from core.signals import Signal, render

BY = "namespace, track, version"
EVERY_STACK = 'namespace=~"carepath-.*"'  # the rules and the dashboard cover every stack's namespace
RUNBOOK = "https://github.com/carepath/deploy/blob/main/README.md#alerts"
GRAFANA_UID_LENGTH = 40  # Grafana refuses longer dashboard uids

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
# Runbooks name the service's own command and config keys: `{service}` is filled per service.
ABORT = "make abort STACK=<stack> SERVICE={service}"
ROLL_BACK = f"{ABORT}: back to the version the release replaces (canary: all traffic to stable; blue/green: switch back; rolling: the previous tag)."
RELATIVE_RUNBOOK = (
    f"{ABORT}: all traffic returns to stable in one pulumi up. Then compare the two versions "
    "on this signal's dashboard panel and read the canary's logs."
)
LIMITS = "services.{service}.resources.limits"
# What to do when an absolute alert fires; signals not named here get ABSOLUTE_RUNBOOK.
RUNBOOKS = {
    "errors": f"{ROLL_BACK} Then read the version's logs for the failing requests.",
    "latency-p95": "Compare with the other track's p95 on the dashboard; if only the new version is slow, hold or roll back "
    "the release. If all versions are slow, check the model backend and CPU throttling.",
    "restarts": f"kubectl describe pod and kubectl logs --previous; OOMKilled means raising {LIMITS}.memory.",
    "pods-not-ready": "kubectl rollout status and kubectl get events in the namespace: failing probes, a bad image, or no "
    "capacity to schedule. A stuck rollout also fails pulumi up after progressDeadlineSeconds.",
    "cpu": f"A container at its CPU limit is throttled and answers slowly: raise {LIMITS}.cpu or services.{{service}}.replicas; "
    "if only the new version needs more, roll it back.",
    "memory": f"A container at its memory limit is OOM-killed: raise {LIMITS}.memory; if only the new "
    "version needs more, roll it back.",
}
ABSOLUTE_RUNBOOK = f"If only the new version is affected, roll it back. {ROLL_BACK} If every version is, the cause is outside the release."


# --- a service's series ---------------------------------------------------------------------


def workloads(service: str) -> str:
    """The names of the service's Deployments as one exact regex (Prometheus anchors it; the names are
    DNS labels, nothing to escape): `chat-api|chat-api-canary|chat-api-blue|chat-api-green`. Each track's
    Service has its Deployment's name, and the Prometheus Operator sets the `job` of what a ServiceMonitor
    (without `jobLabel`) scrapes to the Service's name; Istio's `destination_workload` and
    kube-state-metrics' `deployment` are the Deployment's."""
    return "|".join(deployments(service).values())


def namespace_matcher(namespaces: Sequence[str]) -> str:
    """The namespaces a release's tracks run in (blue/green with `isolation: namespace` puts each
    colour in its own), as one label matcher. Namespace names are DNS labels: no regex escapes."""
    if isinstance(namespaces, str) or not namespaces:
        raise ValueError(f"namespaces: expected a non-empty list of names, got {namespaces!r}")
    if len(namespaces) == 1:
        return f'namespace="{namespaces[0]}"'
    return 'namespace=~"' + "|".join(namespaces) + '"'


def selectors(service: str, namespaces: str) -> dict[str, str]:
    """The catalogue's placeholders that name a service's series (`core.signals.render`): `$app` its own
    series, `$pods` its containers' Kubernetes series, `$ns` the namespaces alone, `$service` its name.
    `namespaces` is a namespace matcher: a release's (`namespace_matcher`) or `EVERY_STACK`."""
    return {
        "app": f'{namespaces}, job=~"{workloads(service)}"',
        "pods": f'{namespaces}, container="{service}"',
        "ns": namespaces,
        "service": service,
    }


def of_service(record: str, service: str, **labels: str) -> str:
    """A series recorded here, the service's only: `carepath:errors:ratio_rate5m{service="chat-api"}`."""
    matchers = {"service": service, **labels}
    return record + "{" + ", ".join(f'{name}="{value}"' for name, value in matchers.items()) + "}"


# --- recording rules ------------------------------------------------------------------------


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
    values = {**selectors(service, EVERY_STACK), "by": BY, "window": WINDOWS.get(signal.kind, "5m")}
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
    destination = f'reporter="destination", destination_workload=~"{workloads(service)}"'
    patients = f"{destination}, request_host!~{SHADOW_HOST}"
    mesh_by = "destination_workload_namespace, destination_workload, destination_version"
    requests = f"sum by ({mesh_by}) (rate(istio_requests_total{{{patients}}}[5m]))"
    errors = f'sum by ({mesh_by}) (rate(istio_requests_total{{{patients}, response_code=~"5.."}}[5m]))'
    return [
        {"record": MESH_REQUESTS, "expr": requests},
        # From Istio's series, not from MESH_REQUESTS: a recorded series has a `service` label they lack.
        {"record": MESH_ERROR_RATIO, "expr": f"({errors} or ({requests}) * 0) / ({requests})"},
        {
            "record": SHADOW_REQUESTS,
            "expr": f"sum by ({mesh_by}) (rate(istio_requests_total{{{destination}, request_host=~{SHADOW_HOST}}}[5m]))",
        },
    ]


def _recording_rules(signals: Sequence[Signal], service: str) -> list[dict[str, Any]]:
    requests = render("sum by ($by) (rate(http_requests_total{$app}[5m]))", **selectors(service, EVERY_STACK), by=BY)
    rules = [{"record": REQUESTS, "expr": requests}]
    for signal in signals:
        rules += _signal_rules(signal, service)
    # Every service records the same names: its `service` label keeps its series apart from the others'.
    return [{**rule, "labels": {"service": service}} for rule in rules + _mesh_rules(service)]


# --- alerts ---------------------------------------------------------------------------------


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


def _worse_than_stable(signal: Signal, side: Recorded, service: str, margin: float) -> str:
    canary, stable = (of_service(side.record, service, track=track) for track in ("canary", "stable"))
    # group_left keeps the canary's labels (its version) on the result; the level needs no parentheses (arithmetic
    # binds tighter than a comparison), and must have none: after group_left they would read as a label list.
    return f"({canary} {side.worse} ignoring (track, version) group_left {_relative_level(signal, side, stable, margin)})"


def _enough_traffic(expr: str, service: str, thresholds: ThresholdSettings) -> str:
    """A quiet version never alerts on two requests."""
    return f"({expr}) and on ({BY}) ({of_service(REQUESTS, service)} > {thresholds.min_requests_per_second:g})"


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
            "runbook": runbook.format(service=service),
            "runbook_url": RUNBOOK,
        },
    }


def _value(signal: Signal) -> str:
    return "{{ $value | " + HUMANIZE.get(signal.unit, "humanize") + " }}"


def _relative_alert(signal: Signal, service: str, thresholds: ThresholdSettings) -> dict[str, Any]:
    margin = thresholds.canary_error_margin
    worse = [_worse_than_stable(signal, side, service, margin) for side in recorded(signal)]
    in_events = f" in bad events, plus {margin:.2%}" if signal.kind == "ratio" else ""
    return _alert(
        signal,
        service,
        f"{_camel(service)}{_camel(signal.name)}WorseThanStable",
        _enough_traffic(" or ".join(worse), service, thresholds),
        f"{signal.summary}: {_value(signal)} for canary {VERSION}, worse than stable",
        f"{signal.summary}: the canary is worse than stable by more than {signal.bad:g}x{in_events}",
        RELATIVE_RUNBOOK,
    )


def _absolute_alert(signal: Signal, service: str, thresholds: ThresholdSettings, bound: float) -> dict[str, Any]:
    side = recorded(signal)[0]  # the bound is for the judged series
    if signal.kind == "ratio" and side.worse == "<":
        bound = 1 - bound  # a ratio's bound is on the bad share, this series is the good one
    value = of_service(side.record, service)
    value = f"floor({value})" if signal.kind == "count" else value  # increase() extrapolates past whole events
    expr = f"{value} {side.worse} {bound:g}" + (f" * {of_service(limit_record(signal), service)}" if signal.limit else "")
    if signal.limit:
        bound_text = f"{bound:.0%} of the limit"
    else:
        bound_text = f"{bound:.2%}" if signal.unit == "ratio" else f"{bound:g} {signal.unit}"
    return _alert(
        signal,
        service,
        # The README and runbooks know the 5xx alert by this name.
        f"{_camel(service)}HighErrorRatio" if signal.name == "errors" else f"{_camel(service)}High{_camel(signal.name)}",
        _enough_traffic(expr, service, thresholds) if signal.statistical else expr,
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


def rule_groups(service: str, thresholds: ThresholdSettings, signals: Sequence[Signal]) -> list[dict[str, Any]]:
    """The service's Prometheus rule groups: recording rules first (the alerts and the dashboard read them)."""
    return [
        {"name": f"carepath-{service}.recording", "interval": "30s", "rules": _recording_rules(signals, service)},
        {"name": f"carepath-{service}.alerts", "rules": _alerts(signals, service, thresholds)},
    ]


# --- the dashboard --------------------------------------------------------------------------


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


def _signal_panel(signal: Signal, service: str) -> tuple[str, list[tuple[str, str]], str]:
    sides = recorded(signal)
    targets = [
        (of_service(side.record, service), ("" if len(sides) == 1 or side.quantile is None else f"p{side.quantile * 100:g} ") + "{{track}} {{version}}")
        for side in sides
    ]
    if signal.limit:
        targets.append((of_service(limit_record(signal), service), "limit {{track}} {{version}}"))
    return _capital(signal.summary), targets, UNITS.get(signal.unit, "short")


def dashboard_uid(service: str) -> str:
    """`carepath-<service>-releases`, or where that is too long for Grafana, a digest of the name."""
    uid = f"carepath-{service}-releases"
    if len(uid) <= GRAFANA_UID_LENGTH:
        return uid
    return "carepath-" + hashlib.sha256(service.encode()).hexdigest()[: GRAFANA_UID_LENGTH - len("carepath-")]


def dashboard(service: str, signals: Sequence[Signal]) -> dict[str, Any]:
    """The service's Grafana dashboard: traffic per version and the weight each track gets, Istio's view,
    then one panel per signal, with its Deployments' changes as release annotations."""
    requests = of_service(REQUESTS, service)
    panels = [
        ("Requests per second by version", [(f"sum by (track, version) ({requests})", "{{track}} {{version}}")], "reqps"),
        (
            "Traffic weight by track (observed)",
            [(f"sum by (track) ({requests}) / ignoring (track) group_left sum({requests})", "{{track}}")],
            "percentunit",
        ),
        (
            "Mesh view: 5xx ratio by version (Istio)",
            [(of_service(MESH_ERROR_RATIO, service), "{{destination_workload}} {{destination_version}}")],
            "percentunit",
        ),
        (
            "Shadow traffic (mirrored to the canary, answers discarded)",
            [(f"sum by (destination_version) ({of_service(SHADOW_REQUESTS, service)})", "{{destination_version}}")],
            "reqps",
        ),
        *(_signal_panel(signal, service) for signal in signals),
    ]
    rolled = f'kube_deployment_status_observed_generation{{{EVERY_STACK}, deployment=~"{workloads(service)}"}}'
    return {
        "uid": dashboard_uid(service),
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
                    "expr": f"changes({rolled}[2m]) > 0",
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

"""What Prometheus records and alerts on, and what Grafana shows, per version of chat-api.

Pure data, rendered by the `ReleaseSignals` component and checked by `promtool` in the
tests. Series carry `namespace`, `track` (stable, canary, blue, green) and `version`
(the image tag), relabelled from the pods' labels by the ServiceMonitor.

Two sources: the application's own metrics (`http_requests_total` with a `status`
code label, `http_request_duration_seconds`), and, with the mesh, Istio's
(`istio_requests_total`) for the same pods, labelled by Istio with the destination
workload and version, and (through the CanaryRouter's Telemetry) the request host.
Mirrored requests carry a `-shadow` host: Istio's patient-traffic series leave them
out and a shadow series counts them. The app's own series cannot tell them apart,
so while a mirror is on, judge the canary on the Istio series.
"""

from __future__ import annotations

from typing import Any

from core.settings import ThresholdSettings

BY = "namespace, track, version"
APP_SELECTOR = 'job=~".*chat-api.*"'
RUNBOOK = "https://github.com/carepath/deploy/blob/main/README.md#alerts"

REQUESTS = "carepath:http_requests:rate5m"
ERRORS = "carepath:http_errors:rate5m"
ERROR_RATIO = "carepath:http_errors:ratio_rate5m"
LATENCY = "carepath:http_request_duration_seconds:p{quantile}_5m"
MESH_REQUESTS = "carepath:istio_requests:rate5m"
MESH_ERROR_RATIO = "carepath:istio_errors:ratio_rate5m"
SHADOW_REQUESTS = "carepath:istio_shadow_requests:rate5m"
SHADOW_HOST = '".*-shadow(:[0-9]+)?"'
QUANTILES = (50, 95, 99)


def _recording_rules() -> list[dict[str, Any]]:
    rules = [
        {"record": REQUESTS, "expr": f"sum by ({BY}) (rate(http_requests_total{{{APP_SELECTOR}}}[5m]))"},
        {"record": ERRORS, "expr": f'sum by ({BY}) (rate(http_requests_total{{{APP_SELECTOR}, status=~"5.."}}[5m]))'},
        # A version without a single 5xx has no error series: count it as 0, not as missing.
        {"record": ERROR_RATIO, "expr": f"({ERRORS} or {REQUESTS} * 0) / {REQUESTS}"},
    ]
    rules += [
        {
            "record": LATENCY.format(quantile=q),
            "expr": f"histogram_quantile(0.{q:02d}, sum by ({BY}, le) (rate(http_request_duration_seconds_bucket{{{APP_SELECTOR}}}[5m])))",
        }
        for q in QUANTILES
    ]
    # Istio's view of the same pods, by the destination workload's labels.
    destination = 'reporter="destination", destination_workload=~"chat-api.*"'
    patients = f"{destination}, request_host!~{SHADOW_HOST}"
    mesh_by = "destination_workload_namespace, destination_workload, destination_version"
    mesh_errors = f'sum by ({mesh_by}) (rate(istio_requests_total{{{patients}, response_code=~"5.."}}[5m]))'
    rules += [
        {"record": MESH_REQUESTS, "expr": f"sum by ({mesh_by}) (rate(istio_requests_total{{{patients}}}[5m]))"},
        {"record": MESH_ERROR_RATIO, "expr": f"({mesh_errors} or {MESH_REQUESTS} * 0) / {MESH_REQUESTS}"},
        {
            "record": SHADOW_REQUESTS,
            "expr": f"sum by ({mesh_by}) (rate(istio_requests_total{{{destination}, request_host=~{SHADOW_HOST}}}[5m]))",
        },
    ]
    return rules


def _alert(name: str, expr: str, duration: str, severity: str, summary: str, description: str, runbook: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity, "service": "chat-api"},
        "annotations": {"summary": summary, "description": description, "runbook": runbook, "runbook_url": RUNBOOK},
    }


def _alerts(thresholds: ThresholdSettings) -> list[dict[str, Any]]:
    enough = f"{REQUESTS} > {thresholds.min_requests_per_second}"
    return [
        _alert(
            "ChatApiHighErrorRatio",
            f"({ERROR_RATIO} > {thresholds.error_ratio}) and on ({BY}) ({enough})",
            "5m",
            "critical",
            "chat-api {{ $labels.version }} ({{ $labels.track }}) answers 5xx to {{ $value | humanizePercentage }} of requests",
            f"More than {thresholds.error_ratio:.2%} of requests to this version failed with a 5xx over 5 minutes.",
            "Canary: make abort. Blue/green: make rollback-switch. Rolling: make rollback TAG=<previous>. "
            "Then read the version's logs for the failing requests.",
        ),
        _alert(
            "ChatApiHighLatencyP95",
            f"({LATENCY.format(quantile=95)} > {thresholds.latency_p95_seconds}) and on ({BY}) ({enough})",
            "10m",
            "warning",
            "chat-api {{ $labels.version }} ({{ $labels.track }}) p95 latency is {{ $value | humanizeDuration }}",
            f"The 95th percentile of request duration for this version stayed above {thresholds.latency_p95_seconds}s for 10 minutes.",
            "Compare with the other track's p95 on the dashboard; if only the new version is slow, hold or roll back "
            "the release. If all versions are slow, check the model backend and CPU throttling.",
        ),
        _alert(
            "ChatApiPodRestarts",
            f'sum by (namespace, pod) (increase(kube_pod_container_status_restarts_total{{container="chat-api"}}[15m])) >= {thresholds.restarts}',
            "0m",
            "warning",
            "chat-api pod {{ $labels.pod }} restarted {{ $value }} times in 15 minutes",
            "The container keeps restarting: crashes, OOM kills or failed liveness probes.",
            "kubectl describe pod and kubectl logs --previous; OOMKilled means raising chatApi.resources.limits.memory.",
        ),
        _alert(
            "ChatApiPodsNotReady",
            'sum by (namespace, deployment) (kube_deployment_status_replicas_unavailable{deployment=~"chat-api.*"}) > 0',
            "10m",
            "warning",
            "{{ $value }} pods of {{ $labels.deployment }} are not ready",
            "Pods failing readiness for 10 minutes: a stuck rollout, failing probes, or no capacity to schedule.",
            "kubectl rollout status and kubectl get events in the namespace; a stuck rollout also fails pulumi up "
            "after progressDeadlineSeconds.",
        ),
        _alert(
            "ChatApiCanaryWorseThanStable",
            # group_left keeps the canary's labels (its version) on the result.
            f'({ERROR_RATIO}{{track="canary"}} - ignoring (track, version) group_left {ERROR_RATIO}{{track="stable"}} > {thresholds.canary_error_margin}) '
            f'and ignoring (track, version) ({REQUESTS}{{track="canary"}} > {thresholds.min_requests_per_second})',
            "5m",
            "critical",
            "canary {{ $labels.version }} fails {{ $value | humanizePercentage }} more requests than stable",
            f"The canary's 5xx ratio exceeds stable's by more than {thresholds.canary_error_margin:.2%}.",
            "make abort STACK=<stack>: all traffic returns to stable in one pulumi up.",
        ),
    ]


def rule_groups(thresholds: ThresholdSettings) -> list[dict[str, Any]]:
    """Prometheus rule groups: recording rules first (the alerts and the dashboard read them)."""
    return [
        {"name": "carepath-chat-api.recording", "interval": "30s", "rules": _recording_rules()},
        {"name": "carepath-chat-api.alerts", "rules": _alerts(thresholds)},
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


def dashboard() -> dict[str, Any]:
    """The Grafana dashboard: traffic, errors and latency per version, the weight each track
    gets, restarts, CPU and memory, with Deployment changes as release annotations."""
    pods = 'namespace=~"carepath-.*", container="chat-api"'
    panels = [
        ("Requests per second by version", [(f"sum by (track, version) ({REQUESTS})", "{{track}} {{version}}")], "reqps"),
        ("5xx ratio by version", [(f"{ERROR_RATIO}", "{{track}} {{version}}")], "percentunit"),
        (
            "Latency p50 / p95 / p99 by version",
            [(LATENCY.format(quantile=q), f"p{q} {{{{track}}}} {{{{version}}}}") for q in QUANTILES],
            "s",
        ),
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
        (
            "Pod restarts (15m)",
            [(f"sum by (pod) (increase(kube_pod_container_status_restarts_total{{{pods}}}[15m]))", "{{pod}}")],
            "short",
        ),
        (
            "CPU by pod",
            [(f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{pods}}}[5m]))", "{{pod}}")],
            "cores",
        ),
        ("Memory by pod", [(f"sum by (pod) (container_memory_working_set_bytes{{{pods}}})", "{{pod}}")], "bytes"),
    ]
    return {
        "uid": "carepath-chat-api-releases",
        "title": "chat-api releases",
        "tags": ["carepath", "chat-api"],
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
                    "expr": 'changes(kube_deployment_status_observed_generation{deployment=~"chat-api.*"}[2m]) > 0',
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

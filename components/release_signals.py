"""ReleaseSignals: what Prometheus scrapes and evaluates for one service, and its dashboard.

- A ServiceMonitor for every track's Service of this service (`app.kubernetes.io/name`
  and the label `carepath.io/metrics`), relabelling the pods' `track` and
  `app.kubernetes.io/version` labels to `track` and `version`. It sets no `jobLabel`: the
  Prometheus Operator names each target's `job` after its Service (`chat-api`,
  `chat-api-canary`), which is how `core.observability.selectors` finds the service's series.
  Without the mesh it scrapes the metrics port; with it, the sidecar's merged endpoint
  (`:15020/stats/prometheus`: the app's metrics and Istio's), which stays plain HTTP
  under STRICT mutual TLS, so a Prometheus outside the mesh can scrape it.
- A PrometheusRule with the recording rules and alerts `core.observability` derives from
  the signal catalogue (`core.signals`): the recorded series carry the service's name as
  `service`, the alerts and the dashboard read its own.
- The Grafana dashboard (a panel per signal), as a ConfigMap Grafana's sidecar provisions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.monitoring import DASHBOARD_LABEL, MONITORING_API, NAMESPACE
from components.track import METRICS_LABEL
from core.observability import dashboard, rule_groups
from core.settings import ThresholdSettings
from core.signals import Signal

MERGED_METRICS_PORT = 15020


def _pod_labels() -> list[dict[str, Any]]:
    return [
        {"sourceLabels": ["__meta_kubernetes_pod_label_track"], "targetLabel": "track"},
        {"sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_version"], "targetLabel": "version"},
    ]


def service_endpoint(mesh: bool) -> dict[str, Any]:
    if not mesh:
        return {"port": "metrics", "path": "/metrics", "interval": "15s", "relabelings": _pod_labels()}
    to_merged = {
        "sourceLabels": ["__meta_kubernetes_pod_ip"],
        "regex": "(.+)",
        "targetLabel": "__address__",
        "replacement": f"$1:{MERGED_METRICS_PORT}",
    }
    return {"port": "http", "path": "/stats/prometheus", "interval": "15s", "relabelings": [to_merged, *_pod_labels()]}


@dataclass(frozen=True)
class ReleaseSignalsArgs:
    service: str
    namespaces: Sequence[str]  # where the service's tracks run
    mesh: bool  # its pods have sidecars
    thresholds: ThresholdSettings
    monitoring: pulumi.Resource  # the chart: its CRDs must exist first
    signals: Sequence[Signal]  # the service's catalogue with the stack's overrides: what its releases are judged on


class ReleaseSignals(pulumi.ComponentResource):
    def __init__(self, name: str, args: ReleaseSignalsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:monitoring:ReleaseSignals", name, None, opts)
        after = pulumi.ResourceOptions(parent=self, depends_on=[args.monitoring])
        service = args.service
        k8s.apiextensions.CustomResource(
            service,
            api_version=MONITORING_API,
            kind="ServiceMonitor",
            metadata={"name": service, "namespace": NAMESPACE},
            spec={
                "namespaceSelector": {"matchNames": list(args.namespaces)},
                "selector": {"matchLabels": {"app.kubernetes.io/name": service, METRICS_LABEL: "true"}},
                "endpoints": [service_endpoint(args.mesh)],
            },
            opts=after,
        )
        k8s.apiextensions.CustomResource(
            f"{service}-rules",
            api_version=MONITORING_API,
            kind="PrometheusRule",
            metadata={"name": service, "namespace": NAMESPACE},
            spec={"groups": rule_groups(service, args.thresholds, args.signals)},
            opts=after,
        )
        k8s.core.v1.ConfigMap(
            f"{service}-dashboard",
            metadata={"name": f"{service}-dashboard", "namespace": NAMESPACE, "labels": {DASHBOARD_LABEL: "1"}},
            data={f"{service}-releases.json": json.dumps(dashboard(service, args.signals), indent=1)},
            opts=after,
        )
        self.register_outputs({})

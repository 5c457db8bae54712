"""ReleaseSignals: what Prometheus scrapes and evaluates for chat-api, and its dashboard.

- A ServiceMonitor for every track's Service (label `carepath.io/metrics`), relabelling
  the pods' `track` and `app.kubernetes.io/version` labels to `track` and `version`.
  Without the mesh it scrapes the metrics port; with it, the sidecar's merged endpoint
  (`:15020/stats/prometheus`: the app's metrics and Istio's), which stays plain HTTP
  under STRICT mutual TLS, so a Prometheus outside the mesh can scrape it.
- With the mesh, a ServiceMonitor for istiod.
- A PrometheusRule with the recording rules and alerts `core.observability` derives from
  the signal catalogue (`core.signals`).
- The Grafana dashboard (a panel per signal), as a ConfigMap Grafana's sidecar provisions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.monitoring import DASHBOARD_LABEL, NAMESPACE
from components.track import METRICS_LABEL
from core.observability import dashboard, rule_groups
from core.settings import ThresholdSettings
from core.signals import Signal, catalogue

MONITORING_API = "monitoring.coreos.com/v1"
MERGED_METRICS_PORT = 15020


def _pod_labels() -> list[dict[str, Any]]:
    return [
        {"sourceLabels": ["__meta_kubernetes_pod_label_track"], "targetLabel": "track"},
        {"sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_version"], "targetLabel": "version"},
    ]


def chat_api_endpoint(mesh: bool) -> dict[str, Any]:
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
    namespaces: Sequence[str]  # where chat-api's tracks run
    mesh: bool
    thresholds: ThresholdSettings
    monitoring: pulumi.Resource  # the chart: its CRDs must exist first
    signals: Sequence[Signal] = catalogue()  # with the stack's overrides, the ones the release is judged on


class ReleaseSignals(pulumi.ComponentResource):
    def __init__(self, name: str, args: ReleaseSignalsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:monitoring:ReleaseSignals", name, None, opts)
        after = pulumi.ResourceOptions(parent=self, depends_on=[args.monitoring])
        k8s.apiextensions.CustomResource(
            "chat-api",
            api_version=MONITORING_API,
            kind="ServiceMonitor",
            metadata={"name": "chat-api", "namespace": NAMESPACE},
            spec={
                "namespaceSelector": {"matchNames": list(args.namespaces)},
                "selector": {"matchLabels": {"app.kubernetes.io/name": "chat-api", METRICS_LABEL: "true"}},
                "endpoints": [chat_api_endpoint(args.mesh)],
            },
            opts=after,
        )
        if args.mesh:
            k8s.apiextensions.CustomResource(
                "istiod",
                api_version=MONITORING_API,
                kind="ServiceMonitor",
                metadata={"name": "istiod", "namespace": NAMESPACE},
                spec={
                    "namespaceSelector": {"matchNames": ["istio-system"]},
                    "selector": {"matchLabels": {"app": "istiod"}},
                    "endpoints": [{"port": "http-monitoring", "interval": "15s"}],
                },
                opts=after,
            )
        k8s.apiextensions.CustomResource(
            "chat-api-rules",
            api_version=MONITORING_API,
            kind="PrometheusRule",
            metadata={"name": "chat-api", "namespace": NAMESPACE},
            spec={"groups": rule_groups(args.thresholds, args.signals)},
            opts=after,
        )
        k8s.core.v1.ConfigMap(
            "chat-api-dashboard",
            metadata={"name": "chat-api-dashboard", "namespace": NAMESPACE, "labels": {DASHBOARD_LABEL: "1"}},
            data={"chat-api-releases.json": json.dumps(dashboard(args.signals), indent=1)},
            opts=after,
        )
        self.register_outputs({})

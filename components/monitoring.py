"""Monitoring: kube-prometheus-stack (Prometheus, Alertmanager, Grafana, kube-state-metrics)
from its Helm chart, pinned.

- Prometheus keeps `retention` on a volume of `storage_size` of the cluster's encrypted
  StorageClass, and picks up every ServiceMonitor and PrometheusRule in the cluster (not
  only the chart's own).
- The `monitoring` namespace enforces the "baseline" Pod Security Standard and warns on
  "restricted"; node-exporter, which reads the host, runs alone in a privileged namespace.
- Grafana's admin password is generated (a Pulumi secret, never in config) and
  handed over in a Kubernetes Secret; dashboards come from ConfigMaps labelled
  `grafana_dashboard: "1"` in `monitoring` only (where every service's dashboard lives),
  and Grafana may read ConfigMaps and Secrets of that namespace only.
- kube-state-metrics exports the pods' `track`, name and version labels on `kube_pod_labels`:
  the signal catalogue joins Kubernetes' series (restarts, readiness, CPU, memory) with them
  to tell versions apart.
- Alertmanager sends every alert to each configured receiver; their URLs and keys
  come from `carepath:secrets`, so they stay encrypted in state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.cluster import STORAGE_CLASS
from core.settings import MonitoringSettings, ReceiverSettings

CHART_REPOSITORY = "https://prometheus-community.github.io/helm-charts"
NAMESPACE = "monitoring"
NODE_EXPORTER_NAMESPACE = "monitoring-node-exporter"
MONITORING_API = "monitoring.coreos.com/v1"
GRAFANA_SECRET = "grafana-admin"
# The pod labels kube-state-metrics exports as `label_*` on `kube_pod_labels` (it exports none by default).
POD_LABELS_ALLOWLIST = ["pods=[track,app.kubernetes.io/name,app.kubernetes.io/version]"]
DASHBOARD_LABEL = "grafana_dashboard"


def alertmanager_config(receivers: tuple[ReceiverSettings, ...], secrets: Mapping[str, str]) -> dict[str, Any]:
    """Every alert to every receiver; with none, to a receiver that drops them."""

    def receiver(spec: ReceiverSettings) -> dict[str, Any]:
        secret = secrets[spec.secret]
        configs = {
            "slack": ("slack_configs", {"api_url": secret, "send_resolved": True}),
            "webhook": ("webhook_configs", {"url": secret, "send_resolved": True}),
            "pagerduty": ("pagerduty_configs", {"routing_key": secret, "send_resolved": True}),
        }
        key, config = configs[spec.kind]
        return {"name": spec.name, key: [config]}

    return {
        "route": {
            "receiver": "null",
            "group_by": ["alertname", "namespace", "track"],
            "routes": [{"receiver": r.name, "continue": True} for r in receivers],
        },
        "receivers": [{"name": "null"}, *(receiver(r) for r in receivers)],
    }


@dataclass(frozen=True)
class MonitoringArgs:
    settings: MonitoringSettings
    secrets: Mapping[str, str]
    mesh: bool = False  # scrape istiod too


class Monitoring(pulumi.ComponentResource):
    """Kubernetes children use the provider given in `opts.providers`."""

    chart: k8s.helm.v4.Chart
    grafana_password: pulumi.Output[str]

    def __init__(self, name: str, args: MonitoringArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:monitoring:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings = args.settings
        namespace = k8s.core.v1.Namespace(
            NAMESPACE,
            metadata={
                "name": NAMESPACE,
                "labels": {"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "restricted"},
            },
            opts=child,
        )
        # node-exporter mounts the host's filesystems and shares its network and PID namespaces.
        node_exporter_namespace = k8s.core.v1.Namespace(
            NODE_EXPORTER_NAMESPACE,
            metadata={"name": NODE_EXPORTER_NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "privileged"}},
            opts=child,
        )
        password = random.RandomPassword(f"{name}-grafana-admin", length=32, special=False, opts=child)
        secret = k8s.core.v1.Secret(
            GRAFANA_SECRET,
            metadata={"name": GRAFANA_SECRET, "namespace": NAMESPACE},
            string_data={"admin-user": "admin", "admin-password": password.result},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
        )
        self.chart = k8s.helm.v4.Chart(
            name,
            chart="kube-prometheus-stack",
            version=settings.chart_version,
            repository_opts={"repo": CHART_REPOSITORY},
            namespace=NAMESPACE,
            values={
                "prometheus": {
                    "prometheusSpec": {
                        "retention": settings.retention,
                        "storageSpec": {
                            "volumeClaimTemplate": {
                                "spec": {
                                    "storageClassName": STORAGE_CLASS,
                                    "accessModes": ["ReadWriteOnce"],
                                    "resources": {"requests": {"storage": settings.storage_size}},
                                }
                            }
                        },
                        # Select every ServiceMonitor and rule, not only those labelled for this release.
                        "serviceMonitorSelectorNilUsesHelmValues": False,
                        "podMonitorSelectorNilUsesHelmValues": False,
                        "ruleSelectorNilUsesHelmValues": False,
                    }
                },
                "kube-state-metrics": {"metricLabelsAllowlist": POD_LABELS_ALLOWLIST},
                "prometheus-node-exporter": {"namespaceOverride": NODE_EXPORTER_NAMESPACE},
                "alertmanager": {"config": pulumi.Output.secret(alertmanager_config(settings.receivers, args.secrets))},
                "grafana": {
                    "admin": {"existingSecret": GRAFANA_SECRET, "userKey": "admin-user", "passwordKey": "admin-password"},
                    "sidecar": {"dashboards": {"enabled": True, "label": DASHBOARD_LABEL, "searchNamespace": [NAMESPACE]}},
                    # A Role in its own namespace instead of a ClusterRole over every ConfigMap and Secret.
                    "rbac": {"namespaced": True},
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[secret, node_exporter_namespace]),
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
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.chart]),
            )
        self.grafana_password = pulumi.Output.secret(password.result)
        self.register_outputs({"grafanaAdminPassword": self.grafana_password})

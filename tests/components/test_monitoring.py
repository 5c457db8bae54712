import re

import pytest
import yaml

from components.cluster import STORAGE_CLASS
from components.monitoring import (
    CHART_REPOSITORY,
    GRAFANA_SECRET,
    NAMESPACE,
    NODE_EXPORTER_NAMESPACE,
    Monitoring,
    MonitoringArgs,
    alertmanager_config,
)
from core.settings import MonitoringSettings, ReceiverSettings
from core.signals import POD_TRACKS
from tests.conftest import validate_kubernetes

RECEIVERS = (ReceiverSettings(name="oncall", kind="pagerduty", secret="pagerdutyKey"), ReceiverSettings(name="team", kind="slack", secret="slackUrl"))
SECRETS = {"pagerdutyKey": "0123abcd", "slackUrl": "https://hooks.slack.invalid/T000/B000/XXXX"}


@pytest.fixture(scope="module")
def plan(run_component):
    settings = MonitoringSettings(retention="30d", storage_size="100Gi", receivers=RECEIVERS)
    return run_component(lambda: Monitoring("monitoring", MonitoringArgs(settings=settings, secrets=SECRETS)))


def test_istiod_is_scraped_with_the_mesh_only(plan, run_component):
    assert not plan.of_type("kubernetes:monitoring.coreos.com/v1:ServiceMonitor")
    meshed = run_component(lambda: Monitoring("monitoring", MonitoringArgs(settings=MonitoringSettings(), secrets={}, mesh=True)))
    monitor = meshed.one("kubernetes:monitoring.coreos.com/v1:ServiceMonitor")
    assert monitor.inputs["metadata"]["name"] == "istiod"
    assert monitor.inputs["spec"]["namespaceSelector"] == {"matchNames": ["istio-system"]}
    assert meshed.one("kubernetes:helm.sh/v4:Chart").urn in monitor.options["dependsOn"]


def test_chart_is_pinned_with_retention_and_storage_from_config(plan):
    chart = plan.one("kubernetes:helm.sh/v4:Chart").inputs
    assert (chart["chart"], chart["version"], chart["repositoryOpts"]) == ("kube-prometheus-stack", "80.4.1", {"repo": CHART_REPOSITORY})
    spec = chart["values"]["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "30d"
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == "100Gi"
    # Named, not left to whichever class is default: the volume is encrypted with the stack's key.
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["storageClassName"] == STORAGE_CLASS
    assert spec["ruleSelectorNilUsesHelmValues"] is False and spec["serviceMonitorSelectorNilUsesHelmValues"] is False


def test_only_node_exporter_runs_privileged(plan, reference_schema):
    namespaces = {r.inputs["metadata"]["name"]: r for r in plan.of_type("kubernetes:core/v1:Namespace")}
    assert namespaces[NAMESPACE].inputs["metadata"]["labels"] == {
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/warn": "restricted",
    }
    assert namespaces[NODE_EXPORTER_NAMESPACE].inputs["metadata"]["labels"] == {"pod-security.kubernetes.io/enforce": "privileged"}
    chart = plan.one("kubernetes:helm.sh/v4:Chart")
    assert chart.inputs["values"]["prometheus-node-exporter"]["namespaceOverride"] == NODE_EXPORTER_NAMESPACE
    assert namespaces[NODE_EXPORTER_NAMESPACE].urn in chart.options["dependsOn"]
    for namespace in namespaces.values():
        validate_kubernetes(namespace, reference_schema)


def test_grafana_reads_dashboards_of_the_monitoring_namespace_only(plan):
    grafana = plan.one("kubernetes:helm.sh/v4:Chart").inputs["values"]["grafana"]
    assert grafana["sidecar"]["dashboards"]["searchNamespace"] == [NAMESPACE]
    assert grafana["sidecar"]["dashboards"]["label"] == "grafana_dashboard"
    # A Role in `monitoring`, not a ClusterRole over every namespace's ConfigMaps and Secrets.
    assert grafana["rbac"] == {"namespaced": True}


def test_kube_state_metrics_exports_the_pod_labels_the_catalogue_joins_on(plan):
    [allowlist] = plan.one("kubernetes:helm.sh/v4:Chart").inputs["values"]["kube-state-metrics"]["metricLabelsAllowlist"]
    assert allowlist == "pods=[track,app.kubernetes.io/name,app.kubernetes.io/version]"
    # kube-state-metrics names a label `label_` + the label with every other character as `_`.
    exported = {"label_" + re.sub(r"[^a-zA-Z0-9_]", "_", label) for label in allowlist.removeprefix("pods=[").removesuffix("]").split(",")}
    assert set(re.findall(r"\blabel_\w+", POD_TRACKS)) - {"label_replace"} == exported


def test_grafana_password_is_generated_and_secret(plan):
    password = plan.one("random:index/randomPassword:RandomPassword")
    assert password.inputs["length"] >= 24
    secret = plan.one("kubernetes:core/v1:Secret")
    assert secret.inputs["metadata"]["name"] == GRAFANA_SECRET
    assert secret.inputs["stringData"] == "[secret]"  # the generated password never shows
    grafana = plan.one("kubernetes:helm.sh/v4:Chart").inputs["values"]["grafana"]
    assert grafana["admin"]["existingSecret"] == GRAFANA_SECRET


def test_alertmanager_receivers_come_from_secrets_and_stay_secret(plan):
    assert plan.one("kubernetes:helm.sh/v4:Chart").inputs["values"]["alertmanager"]["config"] == "[secret]"
    config = alertmanager_config(RECEIVERS, SECRETS)
    assert config["receivers"] == [
        {"name": "null"},
        {"name": "oncall", "pagerduty_configs": [{"routing_key": "0123abcd", "send_resolved": True}]},
        {"name": "team", "slack_configs": [{"api_url": SECRETS["slackUrl"], "send_resolved": True}]},
    ]
    assert [r["receiver"] for r in config["route"]["routes"]] == ["oncall", "team"]
    assert all(r["continue"] for r in config["route"]["routes"])
    yaml.safe_dump(config)  # Alertmanager reads it as YAML


def test_no_receivers_by_default():
    assert alertmanager_config((), {}) == {
        "route": {"receiver": "null", "group_by": ["alertname", "namespace", "track"], "routes": []},
        "receivers": [{"name": "null"}],
    }

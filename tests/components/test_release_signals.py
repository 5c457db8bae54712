import json

import jsonschema
import pulumi
import pytest

from components.release_signals import MERGED_METRICS_PORT, ReleaseSignals, ReleaseSignalsArgs
from core.observability import dashboard, recorded, rule_groups
from core.settings import ThresholdSettings
from core.signals import catalogue
from tests.conftest import validate_crd, validate_kubernetes

# A stack that drops a signal and adds one of its own.
OVERRIDES = [
    {"name": "complaints", "enabled": False},
    {
        "name": "escalations",
        "kind": "ratio",
        "summary": "conversations handed to a nurse",
        "unit": "ratio",
        "numerator": "sum by ($by) (increase(carepath_escalations_total{$app}[$window]))",
        "denominator": "sum by ($by) (increase(carepath_conversations_total{$app}[$window]))",
        "critical": False,
    },
]


def build(run_component, mesh, **signals):
    def program():
        chart = pulumi.CustomResource("carepath:test:Chart", "monitoring", {})
        ReleaseSignals(
            "release-signals",
            ReleaseSignalsArgs(namespaces=["carepath-staging"], mesh=mesh, thresholds=ThresholdSettings(), monitoring=chart, **signals),
        )

    return run_component(program)


@pytest.fixture(scope="module")
def plain(run_component):
    return build(run_component, mesh=False)


@pytest.fixture(scope="module")
def meshed(run_component):
    return build(run_component, mesh=True)


@pytest.fixture(scope="module")
def overridden(run_component):
    return build(run_component, mesh=False, signals=catalogue(overrides=OVERRIDES))


def _records(plan):
    groups = plan.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule").inputs["spec"]["groups"]
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


def _monitors(plan):
    return {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in plan.of_type("kubernetes:monitoring.coreos.com/v1:ServiceMonitor")}


def test_scrapes_every_track_with_version_and_track_labels(plain):
    [(name, spec)] = _monitors(plain).items()
    assert name == "chat-api"
    assert spec["namespaceSelector"] == {"matchNames": ["carepath-staging"]}
    assert spec["selector"] == {"matchLabels": {"app.kubernetes.io/name": "chat-api", "carepath.io/metrics": "true"}}
    [endpoint] = spec["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
    assert {r["targetLabel"] for r in endpoint["relabelings"]} == {"track", "version"}


def test_with_the_mesh_it_scrapes_the_sidecars_merged_metrics_and_istiod(meshed):
    monitors = _monitors(meshed)
    assert set(monitors) == {"chat-api", "istiod"}
    [endpoint] = monitors["chat-api"]["endpoints"]
    assert endpoint["path"] == "/stats/prometheus"
    address = next(r for r in endpoint["relabelings"] if r["targetLabel"] == "__address__")
    assert address["replacement"] == f"$1:{MERGED_METRICS_PORT}"
    assert monitors["istiod"]["namespaceSelector"] == {"matchNames": ["istio-system"]}


def test_rules_and_dashboard_are_the_cores(plain):
    rule = plain.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    assert rule.inputs["spec"]["groups"] == json.loads(json.dumps(rule_groups(ThresholdSettings())))
    config_map = plain.one("kubernetes:core/v1:ConfigMap")
    assert config_map.inputs["metadata"]["labels"] == {"grafana_dashboard": "1"}
    assert json.loads(config_map.inputs["data"]["chat-api-releases.json"]) == json.loads(json.dumps(dashboard()))


def test_the_rule_records_every_signal_of_the_catalogue(plain, overridden):
    assert {side.record for signal in catalogue() for side in recorded(signal)} <= _records(plain)
    assert "carepath:complaints:ratio_rate5m" in _records(plain)
    assert "carepath:complaints:ratio_rate5m" not in _records(overridden)
    assert "carepath:escalations:ratio_rate5m" in _records(overridden)
    titles = {panel["title"] for panel in json.loads(overridden.one("kubernetes:core/v1:ConfigMap").inputs["data"]["chat-api-releases.json"])["panels"]}
    assert "Conversations handed to a nurse" in titles


def test_everything_waits_for_the_chart_and_validates(plain, meshed, reference_schema):
    for plan in (plain, meshed):
        chart = plan.one("carepath:test:Chart").urn
        for resource in plan.managed:
            if resource.type.startswith("kubernetes:"):
                assert chart in resource.options["dependsOn"]
                validate_kubernetes(resource, reference_schema)


def test_schema_validation_is_not_vacuous(plain, reference_schema):
    rule = plain.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    broken = rule.__class__(**{**rule.__dict__, "inputs": {**rule.inputs, "spec": {"groups": [{"rules": []}]}}})  # a group without a name
    with pytest.raises(jsonschema.ValidationError):
        validate_crd(broken, reference_schema("monitoring-crd-schemas.json"))

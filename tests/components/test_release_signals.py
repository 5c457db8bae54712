import json
import re

import jsonschema
import pulumi
import pytest

from components.release_signals import MERGED_METRICS_PORT, ReleaseSignals, ReleaseSignalsArgs
from core.observability import dashboard, recorded, rule_groups, workloads
from core.settings import ThresholdSettings
from core.signals import catalogue
from tests.conftest import validate_crd, validate_kubernetes

SERVICE_MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"

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


def build(run_component, mesh, services=("chat-api",), overrides=()):
    def program():
        chart = pulumi.CustomResource("carepath:test:Chart", "monitoring", {})
        for service in services:
            ReleaseSignals(
                service,
                ReleaseSignalsArgs(
                    service=service,
                    namespaces=["carepath-staging"],
                    mesh=mesh,
                    thresholds=ThresholdSettings(),
                    monitoring=chart,
                    signals=catalogue(service, overrides),
                ),
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
    return build(run_component, mesh=False, overrides=OVERRIDES)


@pytest.fixture(scope="module")
def two(run_component):
    return build(run_component, mesh=True, services=("chat-api", "triage-api"))


def _groups(plan, service="chat-api"):
    return plan.one(PROMETHEUS_RULE, f"{service}-rules").inputs["spec"]["groups"]


def _records(plan):
    return {rule["record"] for group in _groups(plan) for rule in group["rules"] if "record" in rule}


def _monitors(plan):
    return {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in plan.of_type(SERVICE_MONITOR)}


def _board(plan, service="chat-api"):
    return json.loads(plan.one("kubernetes:core/v1:ConfigMap", f"{service}-dashboard").inputs["data"][f"{service}-releases.json"])


def test_scrapes_every_track_with_version_and_track_labels(plain):
    [(name, spec)] = _monitors(plain).items()
    assert name == "chat-api"
    assert spec["namespaceSelector"] == {"matchNames": ["carepath-staging"]}
    assert spec["selector"] == {"matchLabels": {"app.kubernetes.io/name": "chat-api", "carepath.io/metrics": "true"}}
    # No jobLabel: the Prometheus Operator names the job after each Service, which the rules' job matcher expects.
    assert "jobLabel" not in spec
    [endpoint] = spec["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
    assert {r["targetLabel"] for r in endpoint["relabelings"]} == {"track", "version"}


def test_with_the_mesh_it_scrapes_the_sidecars_merged_metrics(meshed):
    monitors = _monitors(meshed)
    assert set(monitors) == {"chat-api"}  # istiod's is the Monitoring component's
    [endpoint] = monitors["chat-api"]["endpoints"]
    assert endpoint["path"] == "/stats/prometheus"
    address = next(r for r in endpoint["relabelings"] if r["targetLabel"] == "__address__")
    assert address["replacement"] == f"$1:{MERGED_METRICS_PORT}"


def test_rules_and_dashboard_are_the_cores(plain):
    signals = catalogue("chat-api")
    assert _groups(plain) == json.loads(json.dumps(rule_groups("chat-api", ThresholdSettings(), signals)))
    config_map = plain.one("kubernetes:core/v1:ConfigMap")
    assert config_map.inputs["metadata"]["labels"] == {"grafana_dashboard": "1"}
    assert _board(plain) == json.loads(json.dumps(dashboard("chat-api", signals)))


def test_the_rule_records_every_signal_of_the_catalogue(plain, overridden):
    assert {side.record for signal in catalogue("chat-api") for side in recorded(signal)} <= _records(plain)
    assert "carepath:complaints:ratio_rate5m" in _records(plain)
    assert "carepath:complaints:ratio_rate5m" not in _records(overridden)
    assert "carepath:escalations:ratio_rate5m" in _records(overridden)
    assert "Conversations handed to a nurse" in {panel["title"] for panel in _board(overridden)["panels"]}


def test_two_services_get_monitors_rules_and_dashboards_of_their_own(two):
    monitors = _monitors(two)
    assert set(monitors) == {"chat-api", "triage-api"}
    for service in monitors:
        assert monitors[service]["selector"] == {"matchLabels": {"app.kubernetes.io/name": service, "carepath.io/metrics": "true"}}
    rules = {r.inputs["metadata"]["name"] for r in two.of_type(PROMETHEUS_RULE)}
    assert rules == {"chat-api", "triage-api"}
    for service in ("chat-api", "triage-api"):
        groups = _groups(two, service)
        assert [group["name"] for group in groups] == [f"carepath-{service}.recording", f"carepath-{service}.alerts"]
        assert {json.dumps(rule["labels"]) for group in groups for rule in group["rules"] if "record" in rule} == {json.dumps({"service": service})}
        assert all(rule["labels"]["service"] == service for rule in groups[1]["rules"])
    assert _board(two, "chat-api")["uid"] != _board(two, "triage-api")["uid"]


def test_everything_waits_for_the_chart_and_validates(plain, meshed, two, reference_schema):
    for plan in (plain, meshed, two):
        chart = plan.one("carepath:test:Chart").urn
        for resource in plan.managed:
            if resource.type.startswith("kubernetes:"):
                assert chart in resource.options["dependsOn"]
                validate_kubernetes(resource, reference_schema)


def test_schema_validation_is_not_vacuous(plain, reference_schema):
    rule = plain.one(PROMETHEUS_RULE)
    broken = rule.__class__(**{**rule.__dict__, "inputs": {**rule.inputs, "spec": {"groups": [{"rules": []}]}}})  # a group without a name
    with pytest.raises(jsonschema.ValidationError):
        validate_crd(broken, reference_schema("monitoring-crd-schemas.json"))


# --- in a stack: the Services a monitor scrapes, and the jobs they become ---------------------------


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


def test_each_monitor_scrapes_only_its_own_services_whose_jobs_only_its_matcher_takes(run_stack):
    """Staging with triage-api beside chat-api, both mid-canary: the Services each ServiceMonitor selects are
    its own service's tracks', and their names (the `job` the Prometheus Operator gives what it scrapes there)
    match that service's job matcher and not the other's."""
    plan = run_stack(
        "staging",
        {
            "services.chat-api.rollout.canary": {"tag": "v2.0.0", "weight": 10},
            "services.triage-api": {
                "tag": "v1.0.0",
                "hosts": ["triage.example.org"],
                "rollout": {"strategy": "canary", "canary": {"tag": "v1.1.0", "weight": 10}},
            },
        },
    )
    services = [r.inputs["metadata"] for r in plan.of_type("kubernetes:core/v1:Service")]
    monitors = _monitors(plan)
    for service, other in (("chat-api", "triage-api"), ("triage-api", "chat-api")):
        scraped = {s["name"] for s in services if s["namespace"] in monitors[service]["namespaceSelector"]["matchNames"] and _selects(monitors[service]["selector"], s["labels"])}
        assert scraped == {service, f"{service}-canary"}
        assert all(re.fullmatch(workloads(service), job) and not re.fullmatch(workloads(other), job) for job in scraped)

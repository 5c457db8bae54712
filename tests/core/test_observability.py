"""Rules and dashboard against a real Prometheus toolchain (`promtool`, Debian's prometheus package,
installed through scripts/ensure-prometheus when missing; these tests fail, never skip, without it)."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pytest
import yaml

from core.observability import (
    EVERY_STACK,
    GRAFANA_UID_LENGTH,
    REQUESTS,
    dashboard,
    dashboard_queries,
    limit_record,
    namespace_matcher,
    recorded,
    rule_groups,
    selectors,
    workloads,
)
from core.release import deployments
from core.settings import ThresholdSettings
from core.signals import Signal, catalogue
from rehearsal.prometheus import installed

THRESHOLDS = ThresholdSettings()
SERVICE = "chat-api"
SIGNALS = catalogue(SERVICE)
NAMESPACE = "carepath-staging"


@pytest.fixture(scope="module")
def promtool() -> str:
    return installed("promtool")


def run(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def write_rules(path: Path, groups: list) -> Path:
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def rules(groups: list, key: str) -> dict[str, dict]:
    return {rule[key]: rule for group in groups for rule in group["rules"] if key in rule}


def groups_of(service: str = SERVICE, thresholds: ThresholdSettings = THRESHOLDS, signals=SIGNALS) -> list:
    return rule_groups(service, thresholds, signals)


def test_rule_groups_pass_promtool_check(promtool, tmp_path):
    groups = groups_of()
    result = run(promtool, "check", "rules", str(write_rules(tmp_path / "rules.yml", groups)), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in groups)} rules found" in result.stdout


def test_every_signal_is_recorded_shown_and_alerted_on():
    groups = groups_of()
    records, alerts = rules(groups, "record"), rules(groups, "alert")
    panels = {panel["title"].lower(): panel for panel in dashboard(SERVICE, SIGNALS)["panels"]}
    for signal in SIGNALS:
        names = [side.record for side in recorded(signal)] + ([limit_record(signal)] if signal.limit else [])
        assert set(names) <= set(records), signal.name
        assert [t["expr"] for t in panels[signal.summary.lower()]["targets"]] == [f'{name}{{service="chat-api"}}' for name in names], signal.name
        severities = {a["labels"]["severity"] for a in alerts.values() if a["labels"]["signal"] == signal.name}
        if signal.critical:
            assert severities == {"critical"}, signal.name
        else:
            assert severities <= {"warning"}, signal.name
    assert len(panels) == len(SIGNALS) + 4  # requests, traffic weight, mesh, shadow


def test_records_are_named_after_signal_kind_and_quantile():
    signals = (
        Signal("bad-things", "ratio", "share of bad things", "ratio", numerator="sum by ($by) (increase(bad_total{$app}[$window]))", denominator="sum by ($by) (increase(all_total{$app}[$window]))"),
        Signal("answer-length", "distribution", "answer length", "tokens", query="sum by ($by, le) (increase(len_bucket{$app}[$window]))", direction="either", quantile=0.9),
        Signal("heap", "gauge", "heap per pod", "bytes", query="avg by ($by) (heap{$pods})", limit="avg by ($by) (heap_limit{$pods})", judged="absolute", bound=0.8),
        Signal("crashes", "count", "crashes", "crashes", query="sum by ($by) (increase(crashes_total{$app}[$window]))", judged="absolute", bound=0),
    )
    records = rules(groups_of(signals=signals), "record")
    assert set(records) == {
        REQUESTS,
        "carepath:bad_things:ratio_rate5m",
        "carepath:answer_length:p90_5m",
        "carepath:answer_length:p10_5m",
        "carepath:heap:avg5m",
        "carepath:heap:limit",
        "carepath:crashes:increase15m",
        "carepath:istio_requests:rate5m",
        "carepath:istio_errors:ratio_rate5m",
        "carepath:istio_shadow_requests:rate5m",
    }
    app = 'namespace=~"carepath-.*", job=~"chat-api|chat-api-canary|chat-api-blue|chat-api-green"'
    assert records["carepath:bad_things:ratio_rate5m"]["expr"] == (
        f"(sum by (namespace, track, version) (increase(bad_total{{{app}}}[5m])) "
        f"or (sum by (namespace, track, version) (increase(all_total{{{app}}}[5m]))) * 0) "
        f"/ (sum by (namespace, track, version) (increase(all_total{{{app}}}[5m])))"
    )
    assert records["carepath:answer_length:p10_5m"]["expr"].startswith("histogram_quantile(0.1, sum by (namespace, track, version, le)")
    assert "[15m]" in records["carepath:crashes:increase15m"]["expr"]
    alerts = rules(groups_of(signals=signals), "alert")
    assert set(alerts) == {"ChatApiBadThingsWorseThanStable", "ChatApiAnswerLengthWorseThanStable", "ChatApiHighHeap", "ChatApiHighCrashes"}
    assert alerts["ChatApiHighHeap"]["expr"] == 'carepath:heap:avg5m{service="chat-api"} > 0.8 * carepath:heap:limit{service="chat-api"}'
    assert " or " in alerts["ChatApiAnswerLengthWorseThanStable"]["expr"]  # longer or shorter answers


def test_every_alert_explains_itself():
    alerts = rules(groups_of(), "alert")
    assert {"ChatApiHighErrorRatio", "ChatApiHighLatencyP95", "ChatApiTriageSuccessWorseThanStable"} <= set(alerts)
    summaries = {signal.name: signal.summary for signal in SIGNALS}
    for name, alert in alerts.items():
        assert {"summary", "description", "runbook", "runbook_url"} <= set(alert["annotations"]), name
        assert summaries[alert["labels"]["signal"]].lower() in alert["annotations"]["description"].lower(), name
        assert alert["labels"]["severity"] in ("warning", "critical")


def test_thresholds_come_from_config():
    thresholds = ThresholdSettings(error_ratio=0.05, canary_error_margin=0.03, latency_p95_seconds=4, restarts=5, min_requests_per_second=0.5)
    alerts = {name: alert["expr"] for name, alert in rules(groups_of(thresholds=thresholds), "alert").items()}
    assert 'carepath:errors:ratio_rate5m{service="chat-api"} > 0.05' in alerts["ChatApiHighErrorRatio"]
    assert 'carepath:latency_p95:p95_5m{service="chat-api"} > 4' in alerts["ChatApiHighLatencyP95"]
    assert "+ 0.03" in alerts["ChatApiErrorsWorseThanStable"]
    assert alerts["ChatApiHighRestarts"] == 'floor(carepath:restarts:increase15m{service="chat-api"}) > 4'  # alerts at the 5th
    assert f'({REQUESTS}{{service="chat-api"}} > 0.5)' in alerts["ChatApiTriageSuccessWorseThanStable"]


def test_the_stacks_catalogue_decides():
    signals = catalogue("chat-api", [{"name": "complaints", "enabled": False}, {"name": "triage-success", "bad": 3.0}])
    groups = groups_of(signals=signals)
    assert "carepath:complaints:ratio_rate5m" not in rules(groups, "record")
    assert "ChatApiComplaintsWorseThanStable" not in rules(groups, "alert")
    assert "group_left 1 - (3 * (1 - carepath:triage_success" in rules(groups, "alert")["ChatApiTriageSuccessWorseThanStable"]["expr"]
    assert not [p for p in dashboard(SERVICE, signals)["panels"] if "complaints" in p["title"].lower()]


def test_every_dashboard_query_is_valid_promql(promtool, tmp_path):
    board = dashboard(SERVICE, SIGNALS)
    queries = dashboard_queries(board)
    assert len(queries) == sum(len(p["targets"]) for p in board["panels"]) + 1
    group = {"name": "dashboard", "rules": [{"record": f"carepath:dashboard:query{i}", "expr": q} for i, q in enumerate(queries)]}
    result = run(promtool, "check", "rules", str(write_rules(tmp_path / "dashboard.yml", [group])), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_splits_by_version_with_each_signals_unit():
    board = dashboard(SERVICE, SIGNALS)
    titles = [p["title"] for p in board["panels"]]
    assert {"Requests per second by version", "Traffic weight by track (observed)", "Mesh view: 5xx ratio by version (Istio)"} <= set(titles)
    units = {p["title"]: p["fieldConfig"]["defaults"]["unit"] for p in board["panels"]}
    assert units["Share of requests answered with a 5xx"] == "percentunit"
    assert units["95th percentile of the time to an answer's first token"] == "s"
    assert units["Output tokens per answer, drifting longer or shorter"] == "short"
    assert units["Working-set memory per pod, against the reference's and the limit"] == "bytes"
    assert units["CPU per pod, against the reference's and the limit"] == "cores"
    assert board["annotations"]["list"][0]["name"] == "Releases"


# --- one service's series -------------------------------------------------------------------------

RECORDED_READ = re.compile(r"(carepath:\w+:\w+)(\{[^}]*\})?")


def test_the_job_matcher_is_exactly_the_services_deployments():
    pattern = workloads("chat-api")  # Prometheus anchors a regex matcher, as fullmatch does
    assert [name for name in deployments("chat-api").values() if re.fullmatch(pattern, name)] == [
        "chat-api", "chat-api-canary", "chat-api-blue", "chat-api-green",
    ]
    for other in ("chat-api-v2", "chat-api-v2-canary", "triage-api", "chat-api-mesh", "chat"):
        assert not re.fullmatch(pattern, other), other
    assert not any(re.fullmatch(workloads("api"), name) for name in deployments("chat-api").values())


def test_selectors_name_the_services_series_in_the_namespaces_asked():
    values = selectors("triage-api", namespace_matcher(["carepath-staging"]))
    assert values == {
        "app": 'namespace="carepath-staging", job=~"triage-api|triage-api-canary|triage-api-blue|triage-api-green"',
        "pods": 'namespace="carepath-staging", container="triage-api"',
        "ns": 'namespace="carepath-staging"',
        "service": "triage-api",
    }
    assert namespace_matcher(["carepath-prod-blue", "carepath-prod-green"]) == 'namespace=~"carepath-prod-blue|carepath-prod-green"'
    assert selectors("chat-api", EVERY_STACK)["app"].startswith('namespace=~"carepath-.*", job=~"chat-api|')


@pytest.mark.parametrize("namespaces", ["carepath-staging", []])
def test_namespaces_must_be_a_list_of_names(namespaces):
    with pytest.raises(ValueError, match="expected a non-empty list of names"):
        namespace_matcher(namespaces)


@pytest.mark.parametrize("service", ["chat-api", "triage-api"])
def test_every_recorded_series_carries_its_service_and_every_reader_selects_its_own(service):
    groups = groups_of(service)
    records = [rule for group in groups for rule in group["rules"] if "record" in rule]
    assert records and all(rule["labels"] == {"service": service} for rule in records)
    readers = [rule["expr"] for group in groups for rule in group["rules"]] + dashboard_queries(dashboard(service, SIGNALS))
    read = [(name, matchers) for expr in readers for name, matchers in RECORDED_READ.findall(expr)]
    assert {name for name, _ in read} >= {REQUESTS, *(side.record for signal in SIGNALS for side in recorded(signal))}
    wrong = [(name, matchers) for name, matchers in read if not matchers.startswith(f'{{service="{service}"')]
    assert not wrong


def test_another_services_rules_runbooks_and_dashboard_never_name_chat_api():
    groups = groups_of("triage-api", signals=catalogue("triage-api"))
    assert not re.search(r"chat[-_]?api", json.dumps([groups, dashboard("triage-api", catalogue("triage-api"))]), re.IGNORECASE)
    assert 'job=~"triage-api|' in rules(groups, "record")[REQUESTS]["expr"]
    alerts = rules(groups, "alert")
    assert alerts["TriageApiHighErrorRatio"]["annotations"]["runbook"].startswith("make abort STACK=<stack> SERVICE=triage-api: ")
    assert "raise services.triage-api.resources.limits.memory;" in alerts["TriageApiHighMemory"]["annotations"]["runbook"]


def test_two_services_share_record_names_but_no_group_alert_or_dashboard():
    chat, triage = groups_of("chat-api"), groups_of("triage-api")
    assert set(rules(chat, "record")) == set(rules(triage, "record"))  # told apart by their `service` label
    assert not {group["name"] for group in chat} & {group["name"] for group in triage}
    assert not set(rules(chat, "alert")) & set(rules(triage, "alert"))
    boards = [dashboard(service, SIGNALS) for service in ("chat-api", "triage-api")]
    assert boards[0]["uid"] == "carepath-chat-api-releases"
    assert boards[0]["uid"] != boards[1]["uid"] and boards[0]["title"] != boards[1]["title"]


def test_dashboard_uids_fit_grafana_even_for_the_longest_service_names():
    longest = ("a" * 39 + "b", "a" * 39 + "c")  # service names are at most 40 characters
    uids = [dashboard(service, SIGNALS)["uid"] for service in longest]
    assert all(len(uid) <= GRAFANA_UID_LENGTH and re.fullmatch(r"[a-z0-9-]+", uid) for uid in uids)
    assert uids[0] != uids[1]


# --- promtool test rules: what fires on which series --------------------------------------------

STABLE = {"track": "stable", "version": "v1.4.0"}
CANARY = {"track": "canary", "version": "v2.0.0"}
BUCKETS = ("0.25", "0.5", "1", "2", "4", "+Inf")


def _selector(metric: str, labels: dict) -> str:
    return metric + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _series(metric: str, service: str, version: dict, per_minute: float, **labels: str) -> dict:
    """A counter growing by `per_minute` for 40 minutes, with the labels the ServiceMonitor gives the service's
    series: `job` is the name of the track's Service (`chat-api`, `chat-api-canary`)."""
    job = service if version["track"] == "stable" else f"{service}-{version['track']}"
    return {"series": _selector(metric, {"job": job, "namespace": NAMESPACE, **version, **labels}), "values": f"0+{per_minute}x40"}


def _histogram(metric: str, service: str, version: dict, per_minute: int, upper: str) -> list[dict]:
    """Every observation in the bucket ending at `upper`."""
    return [_series(f"{metric}_bucket", service, version, per_minute if float(le) >= float(upper) else 0, le=le) for le in BUCKETS]


def _pod(service: str, version: dict, restarts_per_minute: int) -> list[dict]:
    """A pod's restart counter (kube-state-metrics: namespace and pod, no track) and its `kube_pod_labels`."""
    pod = f"{service}-{version['track']}-7d9f-x2x4z"
    labels = {
        "namespace": NAMESPACE,
        "pod": pod,
        "label_app_kubernetes_io_name": service,
        "label_track": version["track"],
        "label_app_kubernetes_io_version": version["version"],
    }
    return [
        {
            "series": _selector("kube_pod_container_status_restarts_total", {"namespace": NAMESPACE, "pod": pod, "container": service}),
            "values": f"0+{restarts_per_minute}x40",
        },
        {"series": _selector("kube_pod_labels", labels), "values": "1+0x40"},
    ]


@dataclass(frozen=True)
class Scenario:
    """Stable: 600 requests, 100 triages (95 succeed) and 60 answers a minute. Canary: 60 requests, 20 triages
    and 60 answers. A version without 5xx has no 5xx series (as a real exporter would have it)."""

    canary_5xx: int = 0
    stable_5xx: int = 0
    canary_triage_failures: int = 1
    canary_first_token_bucket: str = "0.5"  # every first token within this bucket's bound (stable: 0.5 s)
    canary_restarts: int = 0  # a minute

    def series(self, service: str) -> list[dict]:
        series = []
        for version, requests, errors, triages, failures, bucket, restarts in (
            (STABLE, 600, self.stable_5xx, 100, 5, "0.5", 0),
            (CANARY, 60, self.canary_5xx, 20, self.canary_triage_failures, self.canary_first_token_bucket, self.canary_restarts),
        ):
            series.append(_series("http_requests_total", service, version, requests - errors, status="200"))
            series += [_series("http_requests_total", service, version, errors, status="500")] if errors else []
            series.append(_series("carepath_triage_requests_total", service, version, triages - failures, outcome="success"))
            series.append(_series("carepath_triage_requests_total", service, version, failures, outcome="failure"))
            series += _histogram("gen_ai_server_time_to_first_token_seconds", service, version, 60, bucket)
            series += _pod(service, version, restarts)
        return series


def _expected(alert: dict, version: dict, value: str) -> dict:
    """The alert as promtool reports it: the rule's labels and annotations with the templates filled."""
    summary = re.sub(r"\{\{ \$value \| \w+ \}\}", value, alert["annotations"]["summary"])
    for name, text in version.items():
        summary = summary.replace(f"{{{{ $labels.{name} }}}}", text)
    return {"exp_labels": {**alert["labels"], "namespace": NAMESPACE, **version}, "exp_annotations": {**alert["annotations"], "summary": summary}}


def expect(expr: str, samples: list[tuple[dict, float]], name: str = "") -> dict:
    """A `promql_expr_test` at 20 minutes: `expr` answers exactly these (labels, value), series named `name`."""
    return {"expr": expr, "eval_time": "20m", "exp_samples": [{"labels": _selector(name, labels), "value": value} for labels, value in samples]}


def promtool_test(promtool: str, tmp_path: Path, scenarios: dict[str, Scenario], fires: dict[str, str], expressions: Sequence[dict] = ()):
    """The rules of every service in `scenarios` in one Prometheus, on the services' series side by side (each
    as its scenario says). Every alert is checked at 20 minutes: those in `fires` (name -> the value its summary
    shows) fire for the canary, every other one stays quiet; `expressions` are `expect(...)` checks."""
    groups = [group for service in scenarios for group in groups_of(service)]
    write_rules(tmp_path / "rules.yml", groups)
    alerts = rules(groups, "alert")
    assert set(fires) <= set(alerts)
    test = {
        "interval": "1m",
        "input_series": [series for service, scenario in scenarios.items() for series in scenario.series(service)],
        "alert_rule_test": [
            {"eval_time": "20m", "alertname": name, "exp_alerts": [_expected(alert, CANARY, fires[name])] if name in fires else []}
            for name, alert in alerts.items()
        ],
        "promql_expr_test": list(expressions),
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [test]}))
    result = run(promtool, "test", "rules", "test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


ERROR_ALERTS = {"ChatApiHighErrorRatio": "10%", "ChatApiErrorsWorseThanStable": "10%"}


@pytest.mark.parametrize(
    "scenario, fires",
    [
        (Scenario(canary_5xx=6, stable_5xx=3), ERROR_ALERTS),
        (Scenario(canary_5xx=6), ERROR_ALERTS),
        (Scenario(stable_5xx=3), {}),
        (Scenario(), {}),
        # Triage: canary 85 % successful against stable's 95 %, no 5xx at all.
        (Scenario(canary_triage_failures=3), {"ChatApiTriageSuccessWorseThanStable": "85%"}),
        # First token: canary's p95 in (1 s, 2 s] against stable's in (0.25 s, 0.5 s].
        (Scenario(canary_first_token_bucket="2"), {"ChatApiTimeToFirstTokenWorseThanStable": "1.95s"}),
        (Scenario(canary_restarts=1), {"ChatApiHighRestarts": "15"}),
    ],
    ids=["bad canary", "bad canary, flawless stable", "good canary", "both flawless", "triage regression", "slow first token", "crash-looping canary"],
)
def test_alerts_fire_on_bad_series_and_stay_quiet_on_good_ones(promtool, tmp_path, scenario, fires):
    promtool_test(promtool, tmp_path, {SERVICE: scenario}, fires)


def _versions(service: str) -> list[dict]:
    return [{"service": service, "namespace": NAMESPACE, **version} for version in (STABLE, CANARY)]


def test_a_ratio_without_bad_events_records_zero_not_nothing(promtool, tmp_path):
    zero = [expect(record, [(labels, 0) for labels in _versions(SERVICE)], record) for record in ("carepath:errors:ratio_rate5m", "carepath:restarts:increase15m")]
    promtool_test(promtool, tmp_path, {SERVICE: Scenario()}, {}, zero)


# `chat-api-v2` and `api` are the neighbours a `job=~".*<service>.*"` matcher mixed up: `chat-api`'s took in
# `chat-api-v2`'s series, and `api`'s everyone's.
NEIGHBOURS = [("chat-api", "triage-api"), ("chat-api", "chat-api-v2"), ("api", "chat-api")]


@pytest.mark.parametrize("bad, good", [pair for a, b in NEIGHBOURS for pair in ((a, b), (b, a))])
def test_two_services_in_one_prometheus_each_alert_on_their_own_series_only(promtool, tmp_path, bad, good):
    """Both services' rules loaded together, their series side by side in one namespace: only the service
    whose canary fails alerts, each records its own series, and each dashboard counts its own requests."""
    camel = "".join(part.capitalize() for part in bad.split("-"))
    scenarios = {bad: Scenario(canary_5xx=6, canary_triage_failures=3), good: Scenario()}
    fires = {f"{camel}HighErrorRatio": "10%", f"{camel}ErrorsWorseThanStable": "10%", f"{camel}TriageSuccessWorseThanStable": "85%"}
    per_service = [
        expect(
            "carepath:errors:ratio_rate5m",
            [(labels, 0.1 if labels["service"] == bad and labels["track"] == "canary" else 0) for service in scenarios for labels in _versions(service)],
            "carepath:errors:ratio_rate5m",
        )
    ]
    for service in scenarios:
        [requests] = next(panel for panel in dashboard(service, SIGNALS)["panels"] if panel["title"] == "Requests per second by version")["targets"]
        per_service.append(expect(requests["expr"], [(STABLE, 10), (CANARY, 1)]))
    promtool_test(promtool, tmp_path, scenarios, fires, per_service)

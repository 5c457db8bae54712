"""Rules and dashboard against a real Prometheus toolchain (`promtool`, Debian's prometheus package,
installed by `make test` / `.ci/run` through scripts/ensure-prometheus)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from core.observability import REQUESTS, dashboard, dashboard_queries, limit_record, recorded, rule_groups
from core.settings import ThresholdSettings
from core.signals import Signal, catalogue

THRESHOLDS = ThresholdSettings()
SIGNALS = catalogue()
NAMESPACE = "carepath-staging"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed and could not be: install Debian's `prometheus` package (make test does, as root)")
    return found


def run(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def write_rules(path: Path, groups: list) -> Path:
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def rules(groups: list, key: str) -> dict[str, dict]:
    return {rule[key]: rule for group in groups for rule in group["rules"] if key in rule}


def test_rule_groups_pass_promtool_check(promtool, tmp_path):
    groups = rule_groups(THRESHOLDS)
    result = run(promtool, "check", "rules", str(write_rules(tmp_path / "rules.yml", groups)), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in groups)} rules found" in result.stdout


def test_every_signal_is_recorded_shown_and_alerted_on():
    groups = rule_groups(THRESHOLDS)
    records, alerts = rules(groups, "record"), rules(groups, "alert")
    panels = {panel["title"].lower(): panel for panel in dashboard()["panels"]}
    for signal in SIGNALS:
        names = [side.record for side in recorded(signal)] + ([limit_record(signal)] if signal.limit else [])
        assert set(names) <= set(records), signal.name
        assert [t["expr"] for t in panels[signal.summary.lower()]["targets"]] == names, signal.name
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
    records = rules(rule_groups(THRESHOLDS, signals), "record")
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
    app = 'namespace=~"carepath-.*", job=~".*chat-api.*"'
    assert records["carepath:bad_things:ratio_rate5m"]["expr"] == (
        f"(sum by (namespace, track, version) (increase(bad_total{{{app}}}[5m])) "
        f"or (sum by (namespace, track, version) (increase(all_total{{{app}}}[5m]))) * 0) "
        f"/ (sum by (namespace, track, version) (increase(all_total{{{app}}}[5m])))"
    )
    assert records["carepath:answer_length:p10_5m"]["expr"].startswith("histogram_quantile(0.1, sum by (namespace, track, version, le)")
    assert "[15m]" in records["carepath:crashes:increase15m"]["expr"]
    alerts = rules(rule_groups(THRESHOLDS, signals), "alert")
    assert set(alerts) == {"ChatApiBadThingsWorseThanStable", "ChatApiAnswerLengthWorseThanStable", "ChatApiHighHeap", "ChatApiHighCrashes"}
    assert alerts["ChatApiHighHeap"]["expr"] == "carepath:heap:avg5m > 0.8 * carepath:heap:limit"
    assert " or " in alerts["ChatApiAnswerLengthWorseThanStable"]["expr"]  # longer or shorter answers


def test_every_alert_explains_itself():
    alerts = rules(rule_groups(THRESHOLDS), "alert")
    assert {"ChatApiHighErrorRatio", "ChatApiHighLatencyP95", "ChatApiTriageSuccessWorseThanStable"} <= set(alerts)
    summaries = {signal.name: signal.summary for signal in SIGNALS}
    for name, alert in alerts.items():
        assert {"summary", "description", "runbook", "runbook_url"} <= set(alert["annotations"]), name
        assert summaries[alert["labels"]["signal"]].lower() in alert["annotations"]["description"].lower(), name
        assert alert["labels"]["severity"] in ("warning", "critical")


def test_thresholds_come_from_config():
    thresholds = ThresholdSettings(error_ratio=0.05, canary_error_margin=0.03, latency_p95_seconds=4, restarts=5, min_requests_per_second=0.5)
    alerts = {name: alert["expr"] for name, alert in rules(rule_groups(thresholds), "alert").items()}
    assert "carepath:errors:ratio_rate5m > 0.05" in alerts["ChatApiHighErrorRatio"]
    assert "carepath:latency_p95:p95_5m > 4" in alerts["ChatApiHighLatencyP95"]
    assert "+ 0.03" in alerts["ChatApiErrorsWorseThanStable"]
    assert alerts["ChatApiHighRestarts"] == "floor(carepath:restarts:increase15m) > 4"  # alerts at the 5th
    assert f"({REQUESTS} > 0.5)" in alerts["ChatApiTriageSuccessWorseThanStable"]


def test_the_stacks_catalogue_decides():
    signals = catalogue("chat-api", [{"name": "complaints", "enabled": False}, {"name": "triage-success", "bad": 3.0}])
    groups = rule_groups(THRESHOLDS, signals)
    assert "carepath:complaints:ratio_rate5m" not in rules(groups, "record")
    assert "ChatApiComplaintsWorseThanStable" not in rules(groups, "alert")
    assert "group_left 1 - (3 * (1 - carepath:triage_success" in rules(groups, "alert")["ChatApiTriageSuccessWorseThanStable"]["expr"]
    assert not [p for p in dashboard(signals)["panels"] if "complaints" in p["title"].lower()]


def test_every_dashboard_query_is_valid_promql(promtool, tmp_path):
    board = dashboard()
    queries = dashboard_queries(board)
    assert len(queries) == sum(len(p["targets"]) for p in board["panels"]) + 1
    group = {"name": "dashboard", "rules": [{"record": f"carepath:dashboard:query{i}", "expr": q} for i, q in enumerate(queries)]}
    result = run(promtool, "check", "rules", str(write_rules(tmp_path / "dashboard.yml", [group])), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_splits_by_version_with_each_signals_unit():
    board = dashboard()
    titles = [p["title"] for p in board["panels"]]
    assert {"Requests per second by version", "Traffic weight by track (observed)", "Mesh view: 5xx ratio by version (Istio)"} <= set(titles)
    units = {p["title"]: p["fieldConfig"]["defaults"]["unit"] for p in board["panels"]}
    assert units["Share of requests answered with a 5xx"] == "percentunit"
    assert units["95th percentile of the time to an answer's first token"] == "s"
    assert units["Output tokens per answer, drifting longer or shorter"] == "short"
    assert units["Working-set memory per pod, against the reference's and the limit"] == "bytes"
    assert units["CPU per pod, against the reference's and the limit"] == "cores"
    assert board["annotations"]["list"][0]["name"] == "Releases"


# --- promtool test rules: what fires on which series --------------------------------------------

STABLE = {"track": "stable", "version": "v1.4.0"}
CANARY = {"track": "canary", "version": "v2.0.0"}
BUCKETS = ("0.25", "0.5", "1", "2", "4", "+Inf")


def _series(metric: str, version: dict, per_minute: float, **labels: str) -> dict:
    """A counter growing by `per_minute` for 40 minutes, with the labels the ServiceMonitor gives chat-api's series."""
    job = "chat-api" if version["track"] == "stable" else f"chat-api-{version['track']}"
    pairs = {"job": job, "namespace": NAMESPACE, **version, **labels}
    return {"series": metric + "{" + ", ".join(f'{k}="{v}"' for k, v in pairs.items()) + "}", "values": f"0+{per_minute}x40"}


def _histogram(metric: str, version: dict, per_minute: int, upper: str) -> list[dict]:
    """Every observation in the bucket ending at `upper`."""
    return [_series(f"{metric}_bucket", version, per_minute if float(le) >= float(upper) else 0, le=le) for le in BUCKETS]


def _pod(version: dict, restarts_per_minute: int) -> list[dict]:
    """A pod's restart counter (kube-state-metrics: namespace and pod, no track) and its `kube_pod_labels`."""
    pod = f"chat-api-{version['track']}-7d9f-x2x4z"
    labels = {
        "label_app_kubernetes_io_name": "chat-api",
        "label_track": version["track"],
        "label_app_kubernetes_io_version": version["version"],
    }
    return [
        {"series": f'kube_pod_container_status_restarts_total{{namespace="{NAMESPACE}", pod="{pod}", container="chat-api"}}', "values": f"0+{restarts_per_minute}x40"},
        {"series": "kube_pod_labels{" + ", ".join(f'{k}="{v}"' for k, v in {"namespace": NAMESPACE, "pod": pod, **labels}.items()) + "}", "values": "1+0x40"},
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

    def series(self) -> list[dict]:
        series = []
        for version, requests, errors, triages, failures, bucket, restarts in (
            (STABLE, 600, self.stable_5xx, 100, 5, "0.5", 0),
            (CANARY, 60, self.canary_5xx, 20, self.canary_triage_failures, self.canary_first_token_bucket, self.canary_restarts),
        ):
            series.append(_series("http_requests_total", version, requests - errors, status="200"))
            series += [_series("http_requests_total", version, errors, status="500")] if errors else []
            series.append(_series("carepath_triage_requests_total", version, triages - failures, outcome="success"))
            series.append(_series("carepath_triage_requests_total", version, failures, outcome="failure"))
            series += _histogram("gen_ai_server_time_to_first_token_seconds", version, 60, bucket)
            series += _pod(version, restarts)
        return series


def _expected(alert: dict, version: dict, value: str) -> dict:
    """The alert as promtool reports it: the rule's labels and annotations with the templates filled."""
    summary = re.sub(r"\{\{ \$value \| \w+ \}\}", value, alert["annotations"]["summary"])
    for name, text in version.items():
        summary = summary.replace(f"{{{{ $labels.{name} }}}}", text)
    return {"exp_labels": {**alert["labels"], "namespace": NAMESPACE, **version}, "exp_annotations": {**alert["annotations"], "summary": summary}}


def promtool_test(promtool: str, tmp_path: Path, scenario: Scenario, fires: dict[str, str], samples: dict[str, float] | None = None):
    """Every alert is checked at 20 minutes: those in `fires` (name -> the value its summary shows) fire for
    the canary, every other one stays quiet; `samples` are recorded series expected for both versions."""
    groups = rule_groups(THRESHOLDS)
    write_rules(tmp_path / "rules.yml", groups)
    alerts = rules(groups, "alert")
    assert set(fires) <= set(alerts)
    test = {
        "interval": "1m",
        "input_series": scenario.series(),
        "alert_rule_test": [
            {"eval_time": "20m", "alertname": name, "exp_alerts": [_expected(alert, CANARY, fires[name])] if name in fires else []}
            for name, alert in alerts.items()
        ],
        "promql_expr_test": [
            {
                "expr": record,
                "eval_time": "20m",
                "exp_samples": [
                    {"labels": record + "{" + ", ".join(f'{k}="{v}"' for k, v in {"namespace": NAMESPACE, **version}.items()) + "}", "value": value}
                    for version in (STABLE, CANARY)
                ],
            }
            for record, value in (samples or {}).items()
        ],
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
    promtool_test(promtool, tmp_path, scenario, fires)


def test_a_ratio_without_bad_events_records_zero_not_nothing(promtool, tmp_path):
    promtool_test(promtool, tmp_path, Scenario(), {}, samples={"carepath:errors:ratio_rate5m": 0, "carepath:restarts:increase15m": 0})

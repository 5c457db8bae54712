"""Rules and dashboard against a real Prometheus toolchain (`promtool`, Debian's prometheus package,
installed by `make test` / `.ci/run` through scripts/ensure-prometheus)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from core.observability import ERROR_RATIO, dashboard, dashboard_queries, rule_groups
from core.settings import ThresholdSettings

THRESHOLDS = ThresholdSettings()


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


def test_rule_groups_pass_promtool_check(promtool, tmp_path):
    result = run(promtool, "check", "rules", str(write_rules(tmp_path / "rules.yml", rule_groups(THRESHOLDS))), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 14 rules found" in result.stdout


def test_every_alert_explains_itself():
    alerts = [rule for group in rule_groups(THRESHOLDS) for rule in group["rules"] if "alert" in rule]
    assert {a["alert"] for a in alerts} == {
        "ChatApiHighErrorRatio",
        "ChatApiHighLatencyP95",
        "ChatApiPodRestarts",
        "ChatApiPodsNotReady",
        "ChatApiCanaryWorseThanStable",
    }
    for alert in alerts:
        assert {"summary", "description", "runbook"} <= set(alert["annotations"]), alert["alert"]
        assert alert["labels"]["severity"] in ("warning", "critical")


def test_thresholds_come_from_config():
    rules = {r.get("alert"): r["expr"] for g in rule_groups(ThresholdSettings(error_ratio=0.05, canary_error_margin=0.03)) for r in g["rules"]}
    assert f"{ERROR_RATIO} > 0.05" in rules["ChatApiHighErrorRatio"]
    assert "> 0.03" in rules["ChatApiCanaryWorseThanStable"]


def test_every_dashboard_query_is_valid_promql(promtool, tmp_path):
    board = dashboard()
    queries = dashboard_queries(board)
    assert len(queries) == sum(len(p["targets"]) for p in board["panels"]) + 1
    group = {"name": "dashboard", "rules": [{"record": f"carepath:dashboard:query{i}", "expr": q} for i, q in enumerate(queries)]}
    result = run(promtool, "check", "rules", str(write_rules(tmp_path / "dashboard.yml", [group])), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_splits_by_version():
    board = dashboard()
    titles = [p["title"] for p in board["panels"]]
    assert {"Requests per second by version", "5xx ratio by version", "Latency p50 / p95 / p99 by version", "Traffic weight by track (observed)", "Pod restarts (15m)", "CPU by pod", "Memory by pod"} <= set(titles)
    assert board["annotations"]["list"][0]["name"] == "Releases"


def _series(track: str, version: str, status: str, per_minute: int) -> dict:
    labels = f'job="chat-api{"" if track == "stable" else "-" + track}", namespace="carepath-staging", track="{track}", version="{version}", status="{status}"'
    return {"series": f"http_requests_total{{{labels}}}", "values": f"0+{per_minute}x40"}


def _unit_test(canary_errors_per_minute: int, stable_errors_per_minute: int) -> dict:
    """Stable: 600 requests a minute, some 5xx. Canary: 60 a minute, some 5xx. A version with no
    5xx at all has no 5xx series (as a real exporter would have it)."""
    canary = {"track": "canary", "version": "v2.0.0"}
    common = {"namespace": "carepath-staging", "severity": "critical", "service": "chat-api"}
    bad = canary_errors_per_minute > 0
    ratio = canary_errors_per_minute / 60
    series = [
        _series("stable", "v1.4.0", "200", 600 - stable_errors_per_minute),
        _series("canary", "v2.0.0", "200", 60 - canary_errors_per_minute),
    ]
    if stable_errors_per_minute:
        series.append(_series("stable", "v1.4.0", "500", stable_errors_per_minute))
    if canary_errors_per_minute:
        series.append(_series("canary", "v2.0.0", "500", canary_errors_per_minute))
    stable_ratio = stable_errors_per_minute / 600
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {
                "eval_time": "20m",
                "alertname": "ChatApiHighErrorRatio",
                "exp_alerts": [{"exp_labels": {**common, **canary}, "exp_annotations": _annotations("ChatApiHighErrorRatio", canary, ratio)}] if bad else [],
            },
            {
                "eval_time": "20m",
                "alertname": "ChatApiCanaryWorseThanStable",
                "exp_alerts": [{"exp_labels": {**common, **canary}, "exp_annotations": _annotations("ChatApiCanaryWorseThanStable", canary, ratio - stable_ratio)}] if bad else [],
            },
        ],
    }


def _annotations(alert: str, labels: dict, value: float) -> dict:
    rule = next(r for g in rule_groups(THRESHOLDS) for r in g["rules"] if r.get("alert") == alert)
    percent = f"{value * 100:.4g}%"
    rendered = dict(rule["annotations"])
    rendered["summary"] = (
        rendered["summary"]
        .replace("{{ $labels.version }}", labels["version"])
        .replace("{{ $labels.track }}", labels["track"])
        .replace("{{ $value | humanizePercentage }}", percent)
    )
    return rendered


@pytest.mark.parametrize(
    "canary_errors_per_minute, stable_errors_per_minute",
    [(6, 3), (6, 0), (0, 3), (0, 0)],
    ids=["bad canary", "bad canary, flawless stable", "good canary", "both flawless"],
)
def test_error_alerts_fire_on_bad_series_and_stay_quiet_on_good_ones(promtool, tmp_path, canary_errors_per_minute, stable_errors_per_minute):
    write_rules(tmp_path / "rules.yml", rule_groups(THRESHOLDS))
    test = _unit_test(canary_errors_per_minute, stable_errors_per_minute)
    (tmp_path / "test.yml").write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [test]}))
    result = run(promtool, "test", "rules", "test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr

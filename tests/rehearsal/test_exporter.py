"""The rehearsal's synthetic service (chat-api by default): what it exports (the contract the
signal catalogue queries, labelled as the service's ServiceMonitor would), that each scenario's
candidate differs from stable the way its name says, and that a real Prometheus on loopback
scraping it, and another service beside it, computes the release's queries, NaN included."""

from __future__ import annotations

import json
import math
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

import rehearsal.prometheus as launcher
from core.observability import namespace_matcher, selectors
from core.signals import render
from rehearsal import SCENARIOS, Behaviour, SyntheticService, TrackLoad, free_port, query, running_prometheus, wait_for_series
from rehearsal.exporter import HEALTHY, TOKEN_BUCKETS, TPOT_BUCKETS, TTFT_BUCKETS

STABLE, CANDIDATE = "v1.0.0", "v2.0.0"
HALVES = [TrackLoad("stable", STABLE, 50, 2), TrackLoad("canary", CANDIDATE, 50, 1)]
APP = {"namespace", "job", "track", "version"}
CONTAINER = {"namespace", "pod", "container"}
EXPORTED = {
    "http_requests_total": APP | {"status"},
    "http_request_duration_seconds_bucket": APP | {"le"},
    "http_request_duration_seconds_count": APP,
    "http_request_duration_seconds_sum": APP,
    "gen_ai_server_time_to_first_token_seconds_bucket": APP | {"le"},
    "gen_ai_server_time_per_output_token_seconds_bucket": APP | {"le"},
    "gen_ai_client_token_usage_bucket": APP | {"gen_ai_token_type", "le"},
    "carepath_triage_requests_total": APP | {"outcome"},
    "carepath_conversations_total": APP,
    "carepath_complaints_total": APP,
    "carepath_answers_total": APP,
    "carepath_answer_refusals_total": APP,
    "carepath_safety_filter_hits_total": APP,
    "kube_pod_labels": {"namespace", "pod", "label_track", "label_app_kubernetes_io_name", "label_app_kubernetes_io_version"},
    "kube_pod_container_status_restarts_total": CONTAINER,
    "kube_pod_status_ready": {"namespace", "pod", "condition"},
    "container_cpu_usage_seconds_total": CONTAINER,
    "container_memory_working_set_bytes": CONTAINER,
    "kube_pod_container_resource_limits": CONTAINER | {"resource"},
}


def simulate(scenario: str, loads: list[TrackLoad] = HALVES, seconds: int = 20, rps: float = 500) -> SyntheticService:
    """`seconds` of traffic, stepped synchronously with a fixed seed (no sleeping)."""
    service = SyntheticService("ns", CANDIDATE, scenario, lambda: loads, requests_per_second=rps, seed=7)
    for _ in range(seconds):
        service.step(1.0)
    return service


def samples(service: SyntheticService) -> list:
    return [s for family in text_string_to_metric_families(service.exposition().decode()) for s in family.samples]


def value(service: SyntheticService, name: str, **labels: str) -> float:
    found = service.registry.get_sample_value(name, {"namespace": "ns", **labels})
    assert found is not None, (name, labels)
    return found


def app(service: SyntheticService, name: str, track: str, **labels: str) -> float:
    job = "chat-api" if track == "stable" else f"chat-api-{track}"
    return value(service, name, job=job, track=track, version=CANDIDATE if track == "canary" else STABLE, **labels)


def error_share(service: SyntheticService, track: str) -> float:
    failed = app(service, "http_requests_total", track, status="500")
    return failed / (failed + app(service, "http_requests_total", track, status="200"))


def triage_success(service: SyntheticService, track: str) -> float:
    success = app(service, "carepath_triage_requests_total", track, outcome="success")
    return success / (success + app(service, "carepath_triage_requests_total", track, outcome="failure"))


def complaint_share(service: SyntheticService, track: str) -> float:
    return app(service, "carepath_complaints_total", track) / app(service, "carepath_conversations_total", track)


def mean(service: SyntheticService, histogram: str, track: str, **labels: str) -> float:
    return app(service, f"{histogram}_sum", track, **labels) / app(service, f"{histogram}_count", track, **labels)


# --- the exposition ------------------------------------------------------------------------------


def test_every_family_is_exported_with_its_labels():
    exported = samples(simulate("good", seconds=3))
    label_sets: dict[str, set[frozenset[str]]] = {}
    for sample in exported:
        label_sets.setdefault(sample.name, set()).add(frozenset(sample.labels))
    for name, labels in EXPORTED.items():
        assert label_sets.get(name) == {frozenset(labels)}, name
    assert not [s.name for s in exported if s.name.endswith("_created")]
    assert {s.labels["namespace"] for s in exported} == {"ns"}

    def values(name: str, label: str) -> set[str]:
        return {s.labels[label] for s in exported if s.name == name}

    assert values("http_requests_total", "status") == {"200", "500"}
    # `job` as the Prometheus Operator sets it: each track's Service name.
    assert {(s.labels["track"], s.labels["job"]) for s in exported if s.name == "http_requests_total"} == {("stable", "chat-api"), ("canary", "chat-api-canary")}
    assert values("carepath_triage_requests_total", "outcome") == {"success", "failure"}
    assert values("gen_ai_client_token_usage_bucket", "gen_ai_token_type") == {"input", "output"}
    assert values("kube_pod_status_ready", "condition") == {"true", "false"}
    assert values("kube_pod_container_resource_limits", "resource") == {"cpu", "memory"}
    assert values("container_cpu_usage_seconds_total", "container") == {"chat-api"}
    assert values("kube_pod_labels", "pod") == {"chat-api-stable-0", "chat-api-stable-1", "chat-api-canary-0"}
    assert values("kube_pod_labels", "label_app_kubernetes_io_name") == {"chat-api"}
    for histogram, buckets in (
        ("gen_ai_server_time_to_first_token_seconds", TTFT_BUCKETS),
        ("gen_ai_server_time_per_output_token_seconds", TPOT_BUCKETS),
        ("gen_ai_client_token_usage", TOKEN_BUCKETS),
    ):
        assert {float(le) for le in values(f"{histogram}_bucket", "le")} == {*map(float, buckets), math.inf}


def test_another_service_exports_under_its_own_names():
    service = SyntheticService("ns", CANDIDATE, "good", lambda: HALVES, seed=7, service="triage-api")
    service.step(1.0)
    exported = samples(service)
    assert {(s.labels["track"], s.labels["job"]) for s in exported if s.name == "http_requests_total"} == {("stable", "triage-api"), ("canary", "triage-api-canary")}
    assert {s.labels["pod"] for s in exported if s.name == "kube_pod_labels"} == {"triage-api-stable-0", "triage-api-stable-1", "triage-api-canary-0"}
    assert {s.labels["label_app_kubernetes_io_name"] for s in exported if s.name == "kube_pod_labels"} == {"triage-api"}
    assert {s.labels["container"] for s in exported if "container" in s.labels} == {"triage-api"}
    assert not [s for s in exported if any("chat-api" in value for value in s.labels.values())]


def test_pods_report_cpu_memory_limits_and_readiness():
    service = simulate("good", seconds=10)
    pod = {"pod": "chat-api-canary-0"}
    assert value(service, "container_cpu_usage_seconds_total", container="chat-api", **pod) == pytest.approx(0.3 * 10)
    assert value(service, "container_memory_working_set_bytes", container="chat-api", **pod) == 600 * 2**20
    assert value(service, "kube_pod_container_resource_limits", container="chat-api", resource="memory", **pod) == 2 * 2**30
    assert value(service, "kube_pod_container_resource_limits", container="chat-api", resource="cpu", **pod) == 1
    assert value(service, "kube_pod_status_ready", condition="true", **pod) == 1
    assert value(service, "kube_pod_container_status_restarts_total", container="chat-api", **pod) == 0
    labels = {"label_track": "canary", "label_app_kubernetes_io_name": "chat-api", "label_app_kubernetes_io_version": CANDIDATE}
    assert value(service, "kube_pod_labels", **pod, **labels) == 1


# --- scenarios -----------------------------------------------------------------------------------


def test_a_good_candidate_behaves_as_stable():
    service = simulate("good")
    assert triage_success(service, "canary") == pytest.approx(triage_success(service, "stable"), abs=0.03)
    assert error_share(service, "canary") == pytest.approx(error_share(service, "stable"), abs=0.005)
    ttft = "gen_ai_server_time_to_first_token_seconds"
    assert mean(service, ttft, "canary") == pytest.approx(mean(service, ttft, "stable"), rel=0.05)


def test_a_bad_model_fails_more_triages_and_draws_complaints_without_more_5xx():
    service = simulate("bad-model")
    assert triage_success(service, "canary") < triage_success(service, "stable") - 0.05
    assert triage_success(service, "canary") == pytest.approx(0.85, abs=0.03)
    assert complaint_share(service, "canary") > 1.5 * complaint_share(service, "stable")
    assert error_share(service, "canary") < 0.015


def test_errors_answer_a_tenth_with_500():
    service = simulate("errors")
    assert error_share(service, "canary") == pytest.approx(0.1, abs=0.015)
    assert error_share(service, "stable") < 0.015


@pytest.mark.parametrize(
    ("scenario", "histogram", "labels", "factor"),
    [
        ("slow-first-token", "gen_ai_server_time_to_first_token_seconds", {}, 1.6),
        ("long-answers", "gen_ai_client_token_usage", {"gen_ai_token_type": "output"}, 2.0),
    ],
)
def test_distribution_scenarios_scale_the_candidate(scenario: str, histogram: str, labels: dict, factor: float):
    service = simulate(scenario)
    assert mean(service, histogram, "canary", **labels) / mean(service, histogram, "stable", **labels) == pytest.approx(factor, rel=0.1)


def test_no_metrics_exports_nothing_for_the_candidate():
    exported = samples(simulate("no-metrics", seconds=3))
    assert [s for s in exported if s.labels.get("version") == STABLE and s.name == "http_requests_total"]
    assert not [s for s in exported if CANDIDATE in s.labels.values() or "canary" in s.labels.get("pod", "")]


def test_nan_exports_the_candidates_measurements_as_nan():
    service = simulate("nan", seconds=3)
    text = service.exposition().decode()
    assert 'http_requests_total{job="chat-api-canary",namespace="ns",status="200",track="canary",version="v2.0.0"} NaN\n' in text
    exported = samples(service)
    candidate = [s for s in exported if s.labels.get("version") == CANDIDATE]
    stable = [s for s in exported if s.labels.get("version") == STABLE]
    assert candidate and all(math.isnan(s.value) for s in candidate)
    assert stable and not any(math.isnan(s.value) for s in stable)
    pod = {"namespace": "ns", "pod": "chat-api-canary-0"}
    cpu = [s for s in exported if s.name == "container_cpu_usage_seconds_total" and s.labels["pod"] == pod["pod"]]
    assert len(cpu) == 1 and math.isnan(cpu[0].value)
    # Facts about the pod stay numbers: the catalogue's join on kube_pod_labels still finds it.
    assert [s.value for s in exported if s.name == "kube_pod_labels" and s.labels["pod"] == pod["pod"]] == [1.0]


def test_unknown_scenarios_are_refused():
    with pytest.raises(ValueError, match="unknown scenario 'flaky'.*bad-model"):
        SyntheticService("ns", CANDIDATE, "flaky", lambda: HALVES)


# --- the traffic split ----------------------------------------------------------------------------


def test_a_track_at_weight_zero_serves_nothing_but_its_pods_exist():
    service = simulate("good", loads=[TrackLoad("stable", STABLE, 100, 2), TrackLoad("canary", CANDIDATE, 0, 1)])
    assert app(service, "http_requests_total", "canary", status="200") == 0
    assert app(service, "http_requests_total", "canary", status="500") == 0
    assert app(service, "http_requests_total", "stable", status="200") > 9000
    assert value(service, "kube_pod_status_ready", pod="chat-api-canary-0", condition="true") == 1


def test_the_split_is_read_at_every_step_and_gone_versions_disappear():
    loads = [TrackLoad("stable", STABLE, 90, 2), TrackLoad("canary", CANDIDATE, 10, 1)]
    service = SyntheticService("ns", CANDIDATE, "good", lambda: loads, requests_per_second=1000, seed=3)
    service.step(10)
    canary_before = app(service, "carepath_answers_total", "canary")
    stable_before = app(service, "carepath_answers_total", "stable")
    assert canary_before / (canary_before + stable_before) == pytest.approx(0.1, abs=0.02)
    loads[:] = [TrackLoad("stable", STABLE, 50, 2), TrackLoad("canary", CANDIDATE, 50, 1)]
    service.step(10)
    canary = app(service, "carepath_answers_total", "canary") - canary_before
    stable = app(service, "carepath_answers_total", "stable") - stable_before
    assert canary / (canary + stable) == pytest.approx(0.5, abs=0.02)
    # Promoted: stable runs the candidate on 3 pods, the canary is gone.
    loads[:] = [TrackLoad("stable", CANDIDATE, 100, 3)]
    service.step(1)
    exported = samples(service)
    assert {(s.labels["track"], s.labels["version"]) for s in exported if s.name == "http_requests_total"} == {("stable", CANDIDATE)}
    assert {(s.labels["pod"], s.labels["label_app_kubernetes_io_version"]) for s in exported if s.name == "kube_pod_labels"} == {
        (f"chat-api-stable-{i}", CANDIDATE) for i in range(3)
    }


def test_two_versions_on_one_track_get_distinct_pods():
    service = simulate("good", loads=[TrackLoad("stable", STABLE, 60, 2), TrackLoad("stable", CANDIDATE, 40, 1)], seconds=1)
    pods = {(s.labels["pod"], s.labels["label_app_kubernetes_io_version"]) for s in samples(service) if s.name == "kube_pod_labels"}
    assert pods == {("chat-api-stable-0", STABLE), ("chat-api-stable-1", STABLE), ("chat-api-stable-2", CANDIDATE)}


# --- serving ----------------------------------------------------------------------------------


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def test_serves_metrics_and_health_on_loopback_while_simulating():
    with SyntheticService("ns", CANDIDATE, "good", lambda: HALVES, requests_per_second=1000) as service:
        assert service.target.startswith("127.0.0.1:") and service.url == f"http://{service.target}"
        status, content_type, first = get(f"{service.url}/metrics")
        assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
        time.sleep(0.5)
        second = get(f"{service.url}/metrics")[2]
        assert get(f"{service.url}/healthz")[0] == 200
        assert get(f"{service.url}/nothing")[0] == 404

    def answered(text: str) -> float:
        return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == "carepath_answers_total")

    assert answered(second) > answered(first)


def test_an_unhealthy_scenario_fails_its_health_check_and_readiness(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(SCENARIOS, "down", Behaviour(healthy=False))
    with SyntheticService("ns", CANDIDATE, "down", lambda: HALVES) as service:
        assert get(f"{service.url}/healthz")[0] == 503
        assert value(service, "kube_pod_status_ready", pod="chat-api-canary-0", condition="false") == 1
        assert value(service, "kube_pod_status_ready", pod="chat-api-stable-0", condition="false") == 0


def test_a_failing_split_surfaces_when_the_service_stops():
    calls = []

    def tracks() -> list[TrackLoad]:
        calls.append(1)
        if len(calls) > 1:
            raise KeyError("rollout.canary.weight")
        return HALVES

    service = SyntheticService("ns", CANDIDATE, "good", tracks).start()
    time.sleep(0.3)
    with pytest.raises(RuntimeError, match="failed: 'rollout.canary.weight'"):
        service.stop()


# --- answering requests ---------------------------------------------------------------------------

TESTER = {"x-version": "canary"}
DARK_CANARY = [TrackLoad("stable", STABLE, 100, 2), TrackLoad("canary", CANDIDATE, 0, 1)]


def chat(url: str, headers: dict[str, str] | None = None, triage: bool = False) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}/v1/chat",
        data=json.dumps({"messages": [{"role": "user", "content": "Is a fever of 38.5 dangerous?"}], "triage": triage}).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def health(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(f"{url}/healthz", headers=headers or {}), timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_tester_header_reaches_the_canary_at_weight_zero_and_nothing_else_does():
    with SyntheticService("ns", CANDIDATE, "good", lambda: DARK_CANARY) as service:
        answers = [chat(service.url, TESTER) for _ in range(5)]
        assert {(status, body["version"], body["track"]) for status, body in answers} == {(200, CANDIDATE, "canary")}
        status, body = answers[0]
        assert body["answer"].strip() and body["finish_reason"] == "stop" and "triage" not in body
        assert {chat(service.url)[1]["version"] for _ in range(20)} == {STABLE}
        # Another value of the header is no tester's: it goes where the weights say.
        assert {chat(service.url, {"x-version": "stable"})[1]["version"] for _ in range(5)} == {STABLE}


def test_another_tester_header_is_honoured():
    with SyntheticService("ns", CANDIDATE, "good", lambda: DARK_CANARY, header=("x-canary", "always")) as service:
        assert chat(service.url, {"x-canary": "always"})[1]["version"] == CANDIDATE
        assert chat(service.url, TESTER)[1]["version"] == STABLE


def test_without_the_header_versions_answer_by_weight():
    loads = [TrackLoad("stable", STABLE, 70, 2), TrackLoad("canary", CANDIDATE, 30, 1)]
    service = SyntheticService("ns", CANDIDATE, "good", loads.copy, seed=5)
    answering = [service.answering(tester=False) for _ in range(2000)]
    assert sum(load.version == CANDIDATE for load in answering if load) / 2000 == pytest.approx(0.3, abs=0.04)


def test_a_triage_request_gets_an_outcome_drawn_from_the_versions_triage_success():
    service = SyntheticService("ns", CANDIDATE, "bad-model", lambda: DARK_CANARY, seed=11)
    canary = DARK_CANARY[1]
    outcomes = [service.chat(canary, {"messages": [{"role": "user", "content": "chest pain"}], "triage": True})[1]["triage"] for _ in range(2000)]
    assert {outcome["outcome"] for outcome in outcomes} == {"success", "failure"}
    assert sum(outcome["outcome"] == "success" for outcome in outcomes) / 2000 == pytest.approx(0.85, abs=0.03)


@pytest.mark.parametrize("request_body", [None, {}, {"messages": []}, {"messages": [{"role": "user"}]}, {"messages": "hello"}])
def test_a_malformed_chat_request_is_refused(request_body: object):
    status, body = SyntheticService("ns", CANDIDATE, "good", lambda: DARK_CANARY).chat(DARK_CANARY[0], request_body)
    assert status == 400 and "messages" in str(body["error"])


def test_a_healthy_version_never_fails_a_request_even_where_its_traffic_has_5xx():
    # `errors` answers a tenth of its simulated traffic 500; a verification suite must not be flaky.
    with SyntheticService("ns", CANDIDATE, "errors", lambda: DARK_CANARY) as service:
        assert {chat(service.url, TESTER)[0] for _ in range(50)} == {200}
        assert health(service.url, TESTER)[0] == 200


def test_a_broken_candidate_fails_every_request_and_its_health_check():
    with SyntheticService("ns", CANDIDATE, "broken", lambda: DARK_CANARY) as service:
        status, body = chat(service.url, TESTER)
        assert status == 500 and CANDIDATE in body["error"]
        assert health(service.url, TESTER)[0] == 503
        assert chat(service.url)[0] == 200  # stable, without the header
        assert health(service.url)[0] == 503  # the scenario's health, as the smoke checks read it
    broken = simulate("broken")
    assert error_share(broken, "canary") == 1.0
    assert error_share(broken, "stable") < 0.015


def test_the_test_listener_answers_as_the_candidate_only():
    blue_green = [TrackLoad("blue", STABLE, 100, 2), TrackLoad("green", CANDIDATE, 0, 2)]
    loads = list(blue_green)
    with SyntheticService("ns", CANDIDATE, "good", lambda: loads) as service:
        assert service.test_url.startswith("http://127.0.0.1:") and service.test_url != service.url
        status, body = chat(service.test_url)
        assert (status, body["version"], body["track"]) == (200, CANDIDATE, "green")
        assert chat(service.test_url, triage=True)[1]["triage"]["outcome"] in ("success", "failure")
        assert health(service.test_url) == (200, "ok\n")
        assert chat(service.url)[1]["version"] == STABLE
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"{service.test_url}/metrics", timeout=5)
        loads[:] = [TrackLoad("blue", STABLE, 100, 2)]  # no candidate deployed
        assert health(service.test_url) == (503, "no candidate deployed\n")
        request = urllib.request.Request(f"{service.test_url}/v1/chat", data=b"{}", headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 503 and refused.value.read() == b"no candidate deployed\n"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{service.test_url}/healthz", timeout=2)


def test_the_test_listener_reaches_a_broken_candidate():
    with SyntheticService("ns", CANDIDATE, "broken", lambda: DARK_CANARY) as service:
        assert chat(service.test_url)[0] == 500
        assert health(service.test_url)[0] == 503


def test_a_candidate_that_regresses_after_promotion_is_healthy_until_promoted():
    loads = [TrackLoad("stable", STABLE, 50, 2), TrackLoad("canary", CANDIDATE, 50, 1)]
    service = SyntheticService("ns", CANDIDATE, "regresses-after-promotion", lambda: loads, requests_per_second=1000, seed=7)

    def counts() -> tuple[float, float, float, float]:
        """The candidate's 5xx, 200s, complaints and conversations so far."""
        return (
            app(service, "http_requests_total", "canary", status="500"),
            app(service, "http_requests_total", "canary", status="200"),
            app(service, "carepath_complaints_total", "canary"),
            app(service, "carepath_conversations_total", "canary"),
        )

    for _ in range(20):
        service.step(1.0)
    failed, answered, complaints, conversations = counts()
    assert failed / (failed + answered) < 0.015
    assert complaints / conversations == pytest.approx(0.02, abs=0.008)
    scenario = SCENARIOS["regresses-after-promotion"]
    assert service.behaviour(CANDIDATE) is scenario

    service.promoted()
    assert service.behaviour(CANDIDATE) is scenario.after_promotion and service.behaviour(STABLE) is HEALTHY
    for _ in range(20):
        service.step(1.0)
    after = [now - then for now, then in zip(counts(), (failed, answered, complaints, conversations), strict=True)]
    assert after[0] / (after[0] + after[1]) == pytest.approx(0.1, abs=0.015)
    assert after[2] / after[3] == pytest.approx(0.05, abs=0.012)
    assert error_share(service, "stable") < 0.015  # stable is untouched


# --- the Prometheus launcher -----------------------------------------------------------------------


def test_free_port_is_bindable_on_loopback():
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
    assert 1024 <= port <= 65535


def test_a_missing_prometheus_is_installed_once_then_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    runs = tmp_path / "runs"
    script = tmp_path / "ensure-prometheus"
    script.write_text(f"#!/bin/sh\necho run >> {runs}\n")
    script.chmod(0o755)
    monkeypatch.setattr(launcher, "ENSURE_PROMETHEUS", script)
    monkeypatch.setattr(launcher.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="install Debian's `prometheus` package"):
        with running_prometheus([]):
            pass
    assert runs.read_text() == "run\n"


def test_a_prometheus_that_dies_is_reported_with_its_log():
    with pytest.raises(RuntimeError, match="exited with status .* before it was ready:\n.*"):
        with running_prometheus([], scrape_interval="not-a-duration"):
            pass


def test_prometheus_listens_on_loopback_and_is_gone_after():
    with running_prometheus([]) as url:
        assert url.startswith("http://127.0.0.1:")
        assert query(url, "vector(1)")[0]["value"][1] == "1"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/-/ready", timeout=2)


# --- against a real Prometheus ----------------------------------------------------------------------

NAMESPACES = {
    "rehearsal-good": ("good", [TrackLoad("stable", STABLE, 90, 2), TrackLoad("canary", CANDIDATE, 10, 1)]),
    "rehearsal-slow": ("slow-first-token", HALVES),
    "rehearsal-nan": ("nan", [TrackLoad("stable", STABLE, 90, 2), TrackLoad("canary", CANDIDATE, 10, 1)]),
}


# Beside chat-api in rehearsal-good, another service with another split: queries must tell them apart.
NEIGHBOUR = "triage-api"


def app_selector(service: str, namespace: str) -> str:
    """The catalogue's `$app`: the service's own series in `namespace`."""
    return selectors(service, namespace_matcher([namespace]))["app"]


@pytest.fixture(scope="module")
def prometheus():
    """Three scenarios side by side, and a neighbour service, one Prometheus scraping them every second."""
    services = [
        SyntheticService(namespace, CANDIDATE, scenario, lambda loads=loads: loads).start()
        for namespace, (scenario, loads) in NAMESPACES.items()
    ]
    services.append(SyntheticService("rehearsal-good", CANDIDATE, "errors", lambda: HALVES, service=NEIGHBOUR).start())
    try:
        with running_prometheus([service.target for service in services]) as url:
            for service, namespace in [*(("chat-api", namespace) for namespace in NAMESPACES), (NEIGHBOUR, "rehearsal-good")]:
                wait_for_series(url, f"http_requests_total{{{app_selector(service, namespace)}}}")
            yield url
    finally:
        for service in services:
            service.stop()


def by_track(url: str, promql: str, ready: Callable[[dict[str, float]], bool], timeout: float = 30) -> dict[str, float]:
    """Poll `promql` (summed by track) until `ready` holds for its answer; the answer."""
    deadline = time.monotonic() + timeout
    while True:
        answer = {series["metric"].get("track", ""): float(series["value"][1]) for series in query(url, promql)}
        if ready(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(0.5)


def test_every_target_is_scraped_under_the_rehearsal_job(prometheus: str):
    up = query(prometheus, f'up{{job="{launcher.JOB}"}}')
    assert len(up) == len(NAMESPACES) + 1 and all(series["value"][1] == "1" for series in up)
    assert all(series["metric"]["instance"].startswith("127.0.0.1:") for series in up)


def test_both_tracks_answer_the_request_count(prometheus: str):
    promql = render("sum by ($by) (increase(http_requests_total{$app}[10s]))", by="track", app=app_selector("chat-api", "rehearsal-good"))
    # Once the window is full (chat-api answers 100 requests a second): a window that starts before a
    # series does is extrapolated unevenly across tracks.
    answer = by_track(prometheus, promql, lambda a: a.get("canary", 0) > 0 and a.get("stable", 0) + a.get("canary", 0) >= 900)
    assert set(answer) == {"stable", "canary"}
    # 90/10: the neighbour's 50/50 in the same namespace is not counted (with it, canary would be 30 %).
    assert answer["canary"] / (answer["stable"] + answer["canary"]) == pytest.approx(0.1, abs=0.06)


@pytest.mark.parametrize("service", ["chat-api", NEIGHBOUR])
def test_each_services_selector_finds_its_own_jobs_only(prometheus: str, service: str):
    jobs = {series["metric"]["job"] for series in query(prometheus, f"count by (job) (http_requests_total{{{app_selector(service, 'rehearsal-good')}}})")}
    assert jobs == {service, f"{service}-canary"}


def test_time_to_first_token_p95_is_a_finite_number(prometheus: str):
    promql = (
        "histogram_quantile(0.95, sum by (le) "
        f"(rate(gen_ai_server_time_to_first_token_seconds_bucket{{{app_selector('chat-api', 'rehearsal-good')}}}[10s])))"
    )
    answer = by_track(prometheus, promql, lambda a: bool(a) and math.isfinite(a[""]))
    assert 0.25 < answer[""] < 1.0  # lognormal median 0.35 s, sigma 0.35: p95 about 0.62 s


def test_a_slow_first_token_shows_in_the_candidates_p95(prometheus: str):
    promql = (
        "histogram_quantile(0.95, sum by (track, le) "
        '(rate(gen_ai_server_time_to_first_token_seconds_bucket{namespace="rehearsal-slow"}[10s])))'
    )
    answer = by_track(prometheus, promql, lambda a: len(a) == 2 and all(map(math.isfinite, a.values())))
    assert answer["canary"] > answer["stable"]


def test_the_nan_candidate_answers_nan(prometheus: str):
    answer = by_track(
        prometheus,
        'sum by (track) (increase(http_requests_total{namespace="rehearsal-nan"}[10s]))',
        lambda a: a.get("stable", 0) > 0,
    )
    assert math.isnan(answer["canary"])
    assert answer["stable"] > 0


def test_pod_series_join_their_track_through_kube_pod_labels(prometheus: str):
    pod_tracks = (
        'label_replace(kube_pod_labels{namespace="rehearsal-good", label_app_kubernetes_io_name="chat-api"}, '
        '"track", "$1", "label_track", "(.+)")'
    )
    promql = (
        'avg by (track) (rate(container_cpu_usage_seconds_total{namespace="rehearsal-good", container="chat-api"}[10s]) '
        f"* on (namespace, pod) group_left (track) {pod_tracks})"
    )
    # 0.3 cores per pod once the window is full of scrapes (less while it fills).
    per_pod = {"stable": pytest.approx(0.3, abs=0.05), "canary": pytest.approx(0.3, abs=0.05)}
    assert by_track(prometheus, promql, lambda a: a == per_pod) == per_pod

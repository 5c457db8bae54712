"""The driver against a real Prometheus on loopback (Debian's `prometheus`, started here with a
temporary data directory and a free port), scraping an exporter this test runs: chat-api's two
tracks, with the traffic split the stack's config says and controlled error rates and latency."""

from __future__ import annotations

import http.server
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field

import pytest

from core.release import plan_release
from core.settings import parse
from release.audit import AuditLog
from release.driver import Driver
from release.prometheus import PrometheusMetrics
from release.stacks import OfflineStack

REQUESTS_PER_SECOND = 10_000
FAST = {"rollout.analysis": {"intervalSeconds": 1, "minStepRequests": 20}}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Service:
    """One simulated chat-api: its stack, the candidate's error ratio, and its counters."""

    stack: OfflineStack
    namespace: str
    candidate_error_ratio: float
    serving: bool = True
    counters: dict = field(default_factory=dict)
    last: float = field(default_factory=time.monotonic)

    def exposition(self) -> str:
        now = time.monotonic()
        elapsed, self.last = now - self.last, now
        plan = plan_release(parse(self.stack.config(), self.stack.name, frozenset({"secrets"})))
        weights = dict(plan.weights)
        lines = []
        for track in plan.tracks:
            requests = REQUESTS_PER_SECOND * weights.get(track.track, 0) / 100 * elapsed if self.serving else 0
            ratio = self.candidate_error_ratio if track.tag == "v2.0.0" else 0.005
            count = self.counters.setdefault(track.track, [0.0, 0.0])
            count[0] += requests * (1 - ratio)
            count[1] += requests * ratio
            labels = f'namespace="{self.namespace}",track="{track.track}",version="{track.tag}"'
            lines += [
                f'http_requests_total{{{labels},status="200"}} {count[0]}',
                f'http_requests_total{{{labels},status="500"}} {count[1]}',
            ]
            total = count[0] + count[1]
            for le, share in (("0.5", 0.0), ("1", 0.9), ("2", 1.0), ("+Inf", 1.0)):
                lines.append(f'http_request_duration_seconds_bucket{{{labels},le="{le}"}} {total * share}')
        return "\n".join(lines) + "\n"


class Exporter(http.server.ThreadingHTTPServer):
    def __init__(self):
        self.services: list[Service] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(handler):  # noqa: N805
                body = "".join(service.exposition() for service in self.services).encode()
                handler.send_response(200)
                handler.send_header("Content-Type", "text/plain; version=0.0.4")
                handler.end_headers()
                handler.wfile.write(body)

            def log_message(handler, *args):  # noqa: N805
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed and could not be: install Debian's `prometheus` package (make test does, as root)")
    exporter = Exporter()
    threading.Thread(target=exporter.serve_forever, daemon=True).start()
    directory = tmp_path_factory.mktemp("prometheus")
    config = directory / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 500ms, evaluation_interval: 1s}\n"
        f"scrape_configs: [{{job_name: chat-api, static_configs: [{{targets: ['127.0.0.1:{exporter.server_address[1]}']}}]}}]\n"
    )
    port = free_port()
    server = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}", f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError("prometheus did not start")
            time.sleep(0.2)
    yield url, exporter
    server.terminate()
    server.wait(timeout=10)
    exporter.shutdown()


def release(prometheus, tmp_path, name: str, error_ratio: float, serving: bool = True, seconds: float = 60):
    url, exporter = prometheus
    stack = OfflineStack("staging", FAST)
    service = Service(stack, f"scenario-{name}", error_ratio, serving)
    exporter.services.append(service)
    metrics = PrometheusMetrics(url)
    started = time.monotonic()

    def sleep(interval: float) -> None:
        if time.monotonic() - started > seconds:
            raise KeyboardInterrupt
        time.sleep(interval / 2)  # twice the configured cadence: the test has two scrapes a second

    class Scoped:  # this scenario's series: the exporter labels each scenario with its own namespace
        def sample(self, namespace, release_seconds, step_seconds):
            return metrics.sample(service.namespace, release_seconds, step_seconds)

    driver = Driver(stack, Scoped(), AuditLog(tmp_path / "audit.jsonl", "staging"), sleep=sleep, show=lambda line: None)
    return stack, driver


def test_a_bad_canary_is_rolled_back(prometheus, tmp_path):
    stack, driver = release(prometheus, tmp_path, "bad", error_ratio=0.2)
    assert driver.run("v2.0.0").outcome == "rolled back"
    assert "tag" not in stack.config()["rollout"]["canary"] and stack.config()["chatApi"]["tag"] == "v1.4.0"


def test_a_good_canary_is_promoted(prometheus, tmp_path):
    stack, driver = release(prometheus, tmp_path, "good", error_ratio=0.005)
    assert driver.run("v2.0.0").outcome == "promoted"
    assert stack.config()["chatApi"]["tag"] == "v2.0.0"


def test_no_data_holds(prometheus, tmp_path):
    stack, driver = release(prometheus, tmp_path, "silent", error_ratio=0.005, serving=False, seconds=4)
    with pytest.raises(KeyboardInterrupt):
        driver.run("v2.0.0")
    assert stack.config()["rollout"]["canary"] == {**stack.config()["rollout"]["canary"], "tag": "v2.0.0", "weight": 5}
    holds = [e for e in AuditLog(tmp_path / "audit.jsonl", "staging").entries() if e["action"] == "analysis"]
    assert holds and {e["verdict"] for e in holds} == {"hold"}

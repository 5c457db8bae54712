"""A synthetic service for rehearsals (chat-api unless told otherwise): simulated traffic at the
stack's current split, exported as the service and its cluster would (the app's own series, and
kube-state-metrics/cAdvisor-like series per pod), so the release driver's signals have something
real to query.

The candidate version behaves as a named scenario says (`SCENARIOS`); every other version
behaves as a healthy one (`Behaviour()`). The app's series carry the labels the service's
ServiceMonitor gives them in a cluster: `namespace`, `track`, `version`, and `job`, the track's
Service name (`chat-api`, `chat-api-canary`). Every series carries `namespace`, so several
services, and several rehearsals, can share one Prometheus.

It also answers requests, so a stage's verification suite has something to test before patients
do: `POST /v1/chat` and `GET /healthz` on the public listener (`url`; with the tester header, as
the candidate) and on a second one, blue/green's test listener (`test_url`, always the candidate).
"""

from __future__ import annotations

import copy
import json
import math
import random
import threading
import time
import urllib.parse
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Optional

import numpy as np
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from core.release import DEFAULT_SERVICE, deployment_name

STEP_SECONDS = 0.1
MiB, GiB = 2**20, 2**30

# OpenTelemetry GenAI semantic conventions' explicit bucket boundaries.
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)


@dataclass(frozen=True)
class Behaviour:
    """How one version of the service behaves; the defaults are a healthy version. Medians and
    sigmas are those of lognormal distributions."""

    error_ratio: float = 0.005  # requests answered 500 (the rest 200)
    latency_median: float = 0.12  # s, http_request_duration_seconds
    latency_sigma: float = 0.5
    ttft_median: float = 0.35  # s, time to first token
    ttft_sigma: float = 0.35
    tpot_median: float = 0.03  # s, time per output token
    tpot_sigma: float = 0.3
    output_tokens_median: float = 180
    output_tokens_sigma: float = 0.6
    input_tokens_median: float = 400
    input_tokens_sigma: float = 0.8
    triage_share: float = 0.25  # requests that are triage requests
    triage_success: float = 0.95  # triage requests that reach a triage outcome
    conversation_share: float = 1 / 3  # one conversation per 3 requests
    complaint_ratio: float = 0.02  # per conversation
    refusal_ratio: float = 0.01  # per answer (200)
    safety_ratio: float = 0.01  # per answer (200)
    cpu_cores: float = 0.3  # per pod
    memory_bytes: float = 600 * MiB  # per pod, working set
    cpu_limit: float = 1.0
    memory_limit: float = 2 * GiB
    restarts: float = 0.0  # container restarts per pod per minute
    healthy: bool = True  # False: /healthz answers 503 and the pods are not ready
    exports: bool = True  # False: this version exports nothing at all
    nan: bool = False  # True: its series are present but every measured value is NaN
    # How it behaves once its stage is promoted (`SyntheticService.promoted()`); None: as before.
    after_promotion: Optional["Behaviour"] = None


HEALTHY = Behaviour()

# How the candidate behaves, by scenario name.
SCENARIOS: dict[str, Behaviour] = {
    "good": HEALTHY,
    "bad-model": replace(HEALTHY, triage_success=0.85, complaint_ratio=0.05),
    "slow-first-token": replace(HEALTHY, ttft_median=HEALTHY.ttft_median * 1.6),
    "errors": replace(HEALTHY, error_ratio=0.1),
    "no-metrics": replace(HEALTHY, exports=False),
    "long-answers": replace(HEALTHY, output_tokens_median=HEALTHY.output_tokens_median * 2),
    "nan": replace(HEALTHY, nan=True),
    # A candidate that cannot serve at all: every chat request 500, /healthz 503.
    "broken": replace(HEALTHY, error_ratio=1.0, healthy=False),
    # Healthy through the release, worse once promoted: what the watch window after a promotion is for.
    "regresses-after-promotion": replace(
        HEALTHY, after_promotion=replace(HEALTHY, error_ratio=0.1, complaint_ratio=HEALTHY.complaint_ratio * 2.5)
    ),
}

TESTER_HEADER = ("x-version", "canary")  # the canary's tester header: name, value


@dataclass(frozen=True)
class TrackLoad:
    """One track as the stack has it now."""

    track: str
    version: str  # image tag
    weight: float  # percent of requests, 0..100
    replicas: int


class _Families:
    """The service's metric families, in one registry."""

    def __init__(self, registry: CollectorRegistry):
        app = ("namespace", "job", "track", "version")
        pod = ("namespace", "pod")
        container = (*pod, "container")

        def counter(name: str, doc: str, labels: tuple[str, ...] = app) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        def gauge(name: str, doc: str, labels: tuple[str, ...]) -> Gauge:
            return Gauge(name, doc, labels, registry=registry)

        def histogram(name: str, doc: str, buckets: Iterable[float], labels: tuple[str, ...] = app) -> Histogram:
            return Histogram(name, doc, labels, buckets=tuple(buckets), registry=registry)

        self.requests = counter("http_requests_total", "HTTP requests answered, by status code", (*app, "status"))
        self.duration = histogram("http_request_duration_seconds", "HTTP request duration", Histogram.DEFAULT_BUCKETS)
        self.ttft = histogram("gen_ai_server_time_to_first_token_seconds", "Time to an answer's first token", TTFT_BUCKETS)
        self.tpot = histogram("gen_ai_server_time_per_output_token_seconds", "Time per output token after the first", TPOT_BUCKETS)
        self.tokens = histogram("gen_ai_client_token_usage", "Tokens per answer", TOKEN_BUCKETS, (*app, "gen_ai_token_type"))
        self.triage = counter("carepath_triage_requests_total", "Triage requests, by outcome", (*app, "outcome"))
        self.conversations = counter("carepath_conversations_total", "Conversations started")
        self.complaints = counter("carepath_complaints_total", "Complaints and thumbs-down")
        self.answers = counter("carepath_answers_total", "Answers given (status 200)")
        self.refusals = counter("carepath_answer_refusals_total", "Answers the model refused")
        self.safety = counter("carepath_safety_filter_hits_total", "Answers the safety filter stopped")
        # Every series of one version, with the labels beyond (namespace, job, track, version).
        self.app_series: tuple[tuple[Counter | Histogram, dict[str, str]], ...] = (
            (self.requests, {"status": "200"}), (self.requests, {"status": "500"}),
            (self.triage, {"outcome": "success"}), (self.triage, {"outcome": "failure"}),
            (self.tokens, {"gen_ai_token_type": "input"}), (self.tokens, {"gen_ai_token_type": "output"}),
            *((metric, {}) for metric in (
                self.duration, self.ttft, self.tpot, self.conversations, self.complaints,
                self.answers, self.refusals, self.safety,
            )),
        )

        self.pod_labels = gauge(
            "kube_pod_labels", "Kubernetes labels of the pod",
            (*pod, "label_track", "label_app_kubernetes_io_name", "label_app_kubernetes_io_version"),
        )
        self.restarts = counter("kube_pod_container_status_restarts_total", "Container restarts", container)
        self.ready = gauge("kube_pod_status_ready", "Pod readiness", (*pod, "condition"))
        self.cpu = counter("container_cpu_usage_seconds_total", "CPU time used", container)
        self.memory = gauge("container_memory_working_set_bytes", "Working-set memory", container)
        self.limits = gauge("kube_pod_container_resource_limits", "Container resource limits", (*container, "resource"))
        self.pods = (self.pod_labels, self.restarts, self.ready, self.cpu, self.memory, self.limits)


# Facts about pods rather than measurements: they stay numbers for a `nan` version.
_FACTS = frozenset({"kube_pod_labels", "kube_pod_status_ready", "kube_pod_container_resource_limits"})


class _Scrape:
    """The registry as the service's `/metrics` shows it: without prometheus-client's `_created`
    series (the simulator's own start times, no part of the contract), and with the measured
    samples of `nan` versions and their pods as NaN (no counter can count its way there)."""

    def __init__(self, registry: CollectorRegistry, nan_versions: frozenset[str], nan_pods: frozenset[str]):
        self.registry, self.nan_versions, self.nan_pods = registry, nan_versions, nan_pods

    def _nan(self, family: Metric, sample: Sample) -> bool:
        return family.name not in _FACTS and (
            sample.labels.get("version") in self.nan_versions or sample.labels.get("pod") in self.nan_pods
        )

    def collect(self) -> Iterable[Metric]:
        families = []
        for family in self.registry.collect():
            shown = copy.copy(family)
            shown.samples = [
                sample._replace(value=math.nan) if self._nan(family, sample) else sample
                for sample in family.samples
                if not sample.name.endswith("_created")
            ]
            families.append(shown)
        return families


def _pods(service: str, loads: list[TrackLoad]) -> dict[str, TrackLoad]:
    """Pod name -> the load it serves: `<service>-<track>-<i>`, numbered on across a track's
    versions so the two of a rolling update do not share names."""
    pods: dict[str, TrackLoad] = {}
    counts: dict[str, int] = {}
    for load in loads:
        for _ in range(load.replicas):
            index = counts.get(load.track, 0)
            counts[load.track] = index + 1
            pods[f"{service}-{load.track}-{index}"] = load
    return pods


class SyntheticService:
    """`service` (chat-api by default) in `namespace` with the candidate tag `candidate` behaving as `scenario`.

    `tracks` is asked at every step for the current split (the driver changes the stack's
    weights during a release). `step(seconds)` simulates that much traffic synchronously;
    `start()` runs it every 0.1 s of wall time and serves `/metrics`, `/healthz` and `/v1/chat` on
    loopback (`url`), and `/healthz` and `/v1/chat` as the candidate on the test listener (`test_url`).

    Requests are answered per version, deterministically for a healthy one (never a 500, so a
    verification suite is not flaky; the simulated traffic keeps its random 5xx): a version whose
    behaviour is not `healthy` answers chat 500 and /healthz 503. Which version answers: on `url`
    with the tester header (`header`, name and value), the candidate when a track has it
    deployed (else the canary track's version, else as without the header); without it, one
    drawn by the tracks' weights; on `test_url`, the candidate, or 503 when no track has it.
    `/healthz` without the header keeps saying the scenario's health, as the smoke checks read it.
    """

    def __init__(
        self,
        namespace: str,
        candidate: str,
        scenario: str,
        tracks: Callable[[], list[TrackLoad]],
        requests_per_second: float = 100,
        seed: Optional[int] = None,
        service: str = DEFAULT_SERVICE,
        header: tuple[str, str] = TESTER_HEADER,
    ):
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
        self.service, self.namespace, self.candidate, self.scenario = service, namespace, candidate, scenario
        self.tracks, self.requests_per_second, self.header = tracks, requests_per_second, header
        self.registry = CollectorRegistry()
        self._families = _Families(self.registry)
        self._rng = np.random.default_rng(seed)
        # Requests draw from their own generator: a seeded simulation stays the same whatever is asked.
        self._answers = random.Random(seed)
        self._lock = threading.Lock()
        self._promoted = False
        self._apps: set[tuple[str, str]] = set()  # (track, version) with series
        self._pods: dict[str, str] = {}  # pod -> version, with series
        self._nan_versions: frozenset[str] = frozenset()
        self._nan_pods: frozenset[str] = frozenset()
        self._server: Optional[ThreadingHTTPServer] = None
        self._test_server: Optional[ThreadingHTTPServer] = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._failure: Optional[Exception] = None

    def behaviour(self, version: str) -> Behaviour:
        """The scenario's for the candidate (its `after_promotion` one once `promoted()`), a
        healthy version's for any other."""
        if version != self.candidate:
            return HEALTHY
        scenario = SCENARIOS[self.scenario]
        if self._promoted and scenario.after_promotion is not None:
            return scenario.after_promotion
        return scenario

    def promoted(self) -> None:
        """The candidate's stage was promoted: from now on it behaves as its scenario's
        `after_promotion` says. A hook the promotion rehearsal calls rather than a timer: the
        moment a stage is promoted is the driver's, and a timer would race it (a regression before
        the promotion would be judged as the canary's, not caught by the watch window after it)."""
        with self._lock:
            self._promoted = True

    # --- simulation ---------------------------------------------------------------------------

    def step(self, seconds: float) -> None:
        """Simulate `seconds` of requests and pod time at the split `tracks()` gives now."""
        loads = [load for load in self.tracks() if self.behaviour(load.version).exports]
        pods = _pods(self.service, loads)
        with self._lock:
            self._sync_series(loads, pods)
            for load in loads:
                self._serve(load, self.behaviour(load.version), seconds)
            for pod, load in pods.items():
                self._run_pod(pod, self.behaviour(load.version), seconds)

    def _app_labels(self, track: str, version: str) -> dict[str, str]:
        # `job` as the Prometheus Operator sets it: the name of the track's Service.
        return {"namespace": self.namespace, "job": deployment_name(self.service, track), "track": track, "version": version}

    def _sync_series(self, loads: list[TrackLoad], pods: dict[str, TrackLoad]) -> None:
        """Series of versions and pods that are gone disappear, as their pods would; new ones
        start at zero, so `increase()` counts their first requests."""
        f = self._families
        apps = {(load.track, load.version) for load in loads}
        for track, version in self._apps - apps:
            for metric in {metric for metric, _ in f.app_series}:
                metric.remove_by_labels(self._app_labels(track, version))
        for pod, version in self._pods.items():
            if pod not in pods or pods[pod].version != version:  # gone, or replaced by one of another version
                for metric in f.pods:
                    metric.remove_by_labels({"namespace": self.namespace, "pod": pod})
        for track, version in apps - self._apps:
            for metric, extra in f.app_series:
                metric.labels(**self._app_labels(track, version), **extra)
        for pod, load in pods.items():
            if self._pods.get(pod) != load.version:
                self._open_pod(pod, load)
        self._apps, self._pods = apps, {pod: load.version for pod, load in pods.items()}
        self._nan_versions = frozenset(version for _, version in apps if self.behaviour(version).nan)
        self._nan_pods = frozenset(pod for pod, load in pods.items() if self.behaviour(load.version).nan)

    def _open_pod(self, pod: str, load: TrackLoad) -> None:
        f, behaviour = self._families, self.behaviour(load.version)
        labels = {"namespace": self.namespace, "pod": pod}
        container = {**labels, "container": self.service}
        f.pod_labels.labels(
            **labels, label_track=load.track, label_app_kubernetes_io_name=self.service, label_app_kubernetes_io_version=load.version
        ).set(1)
        f.ready.labels(**labels, condition="true").set(1 if behaviour.healthy else 0)
        f.ready.labels(**labels, condition="false").set(0 if behaviour.healthy else 1)
        f.restarts.labels(**container)
        f.cpu.labels(**container)
        f.memory.labels(**container).set(behaviour.memory_bytes)
        f.limits.labels(**container, resource="cpu").set(behaviour.cpu_limit)
        f.limits.labels(**container, resource="memory").set(behaviour.memory_limit)

    def _run_pod(self, pod: str, behaviour: Behaviour, seconds: float) -> None:
        container = {"namespace": self.namespace, "pod": pod, "container": self.service}
        self._families.cpu.labels(**container).inc(behaviour.cpu_cores * seconds)
        restarts = self._rng.poisson(behaviour.restarts * seconds / 60)
        if restarts:
            self._families.restarts.labels(**container).inc(restarts)

    def _lognormal(self, median: float, sigma: float, size: int) -> np.ndarray:
        return self._rng.lognormal(math.log(median), sigma, size)

    def _serve(self, load: TrackLoad, b: Behaviour, seconds: float) -> None:
        """One period of this track's requests: Poisson arrivals at its share of the traffic."""
        f, rng = self._families, self._rng
        labels = self._app_labels(load.track, load.version)
        requests = int(rng.poisson(self.requests_per_second * load.weight / 100 * seconds))
        if requests == 0:
            return
        failed = int(rng.binomial(requests, b.error_ratio))
        answered = requests - failed
        f.requests.labels(**labels, status="500").inc(failed)
        f.requests.labels(**labels, status="200").inc(answered)
        for histogram, values in (
            (f.duration.labels(**labels), self._lognormal(b.latency_median, b.latency_sigma, requests)),
            (f.ttft.labels(**labels), self._lognormal(b.ttft_median, b.ttft_sigma, answered)),
            (f.tpot.labels(**labels), self._lognormal(b.tpot_median, b.tpot_sigma, answered)),
            (
                f.tokens.labels(**labels, gen_ai_token_type="output"),
                np.maximum(np.rint(self._lognormal(b.output_tokens_median, b.output_tokens_sigma, answered)), 1),
            ),
            (
                f.tokens.labels(**labels, gen_ai_token_type="input"),
                np.maximum(np.rint(self._lognormal(b.input_tokens_median, b.input_tokens_sigma, answered)), 1),
            ),
        ):
            for value in values.tolist():
                histogram.observe(value)
        triage = int(rng.binomial(requests, b.triage_share))
        triage_success = int(rng.binomial(triage, b.triage_success))
        f.triage.labels(**labels, outcome="success").inc(triage_success)
        f.triage.labels(**labels, outcome="failure").inc(triage - triage_success)
        conversations = int(rng.binomial(requests, b.conversation_share))
        f.conversations.labels(**labels).inc(conversations)
        f.complaints.labels(**labels).inc(int(rng.binomial(conversations, b.complaint_ratio)))
        f.answers.labels(**labels).inc(answered)
        f.refusals.labels(**labels).inc(int(rng.binomial(answered, b.refusal_ratio)))
        f.safety.labels(**labels).inc(int(rng.binomial(answered, b.safety_ratio)))

    # --- requests ---------------------------------------------------------------------------------

    def candidate_load(self) -> Optional[TrackLoad]:
        """The track serving the candidate (the canary first when several do), if one is deployed."""
        running = [load for load in self.tracks() if load.version == self.candidate]
        return min(running, key=lambda load: load.track != "canary", default=None)

    def answering(self, tester: bool) -> Optional[TrackLoad]:
        """Who answers a request on the public listener: with the tester header, the candidate
        (the canary track's version when no track runs it); else, or with neither deployed, a
        track drawn by weight (the serving one when no weight is set). None: nothing is deployed."""
        loads = self.tracks()
        if tester:
            chosen = self.candidate_load() or next((load for load in loads if load.track == "canary"), None)
            if chosen is not None:
                return chosen
        weighted = [load for load in loads if load.weight > 0]
        if not weighted:
            return loads[0] if loads else None
        with self._lock:
            return self._answers.choices(weighted, weights=[load.weight for load in weighted])[0]

    def health(self, load: TrackLoad) -> tuple[int, bytes]:
        """/healthz as `load`'s version answers it."""
        return (200, b"ok\n") if self.behaviour(load.version).healthy else (503, b"unhealthy\n")

    def chat(self, load: TrackLoad, request: object) -> tuple[int, dict[str, Any]]:
        """`POST /v1/chat` as `load`'s version answers it: status and JSON body."""
        if not (
            isinstance(request, dict)
            and isinstance(request.get("messages"), list)
            and request["messages"]
            and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in request["messages"])
        ):
            return 400, {"error": 'expected {"messages": [{"role": ..., "content": "..."}, ...], "triage": false}'}
        behaviour = self.behaviour(load.version)
        if not behaviour.healthy:
            return 500, {"error": f"{self.service} {load.version} failed to answer"}
        question = request["messages"][-1]["content"]
        answer: dict[str, Any] = {
            "version": load.version,
            "track": load.track,
            "answer": f"{self.service} {load.version} (synthetic) on: {question[:200] or 'an empty message'}",
            "finish_reason": "stop",
        }
        if request.get("triage") is True:
            with self._lock:
                success = self._answers.random() < behaviour.triage_success
            answer["triage"] = {"outcome": "success" if success else "failure"}
        return 200, answer

    # --- exposition -----------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """`/metrics` in the Prometheus text format (0.0.4)."""
        with self._lock:
            return generate_latest(_Scrape(self.registry, self._nan_versions, self._nan_pods))

    @property
    def healthy(self) -> bool:
        """What `/healthz` says: the scenario's health."""
        return SCENARIOS[self.scenario].healthy

    # --- running ----------------------------------------------------------------------------------

    def _simulate(self) -> None:
        last = time.monotonic()
        try:
            while not self._stopping.wait(STEP_SECONDS):
                now = time.monotonic()
                self.step(now - last)
                last = now
        except Exception as error:  # surfaced by stop()
            self._failure = error

    def start(self) -> "SyntheticService":
        """Serve on 127.0.0.1 (a free port) and simulate in the background."""
        self.step(0.0)  # every series exists, at zero, before the first scrape
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, test_listener=False))
        self._test_server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, test_listener=True))
        self._stopping.clear()
        self._threads = [threading.Thread(target=self._simulate, name=f"{self.namespace}-traffic", daemon=True)]
        for name, server in (("http", self._server), ("test-http", self._test_server)):
            server.daemon_threads = True
            self._threads.append(threading.Thread(target=server.serve_forever, name=f"{self.namespace}-{name}", daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and simulating; raises if the simulation had failed (e.g. `tracks()` raised)."""
        self._stopping.set()
        for server in (self._server, self._test_server):
            if server is not None:
                server.shutdown()
                server.server_close()
        for thread in self._threads:
            thread.join()
        self._threads = []
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise RuntimeError(f"the simulated {self.service} in {self.namespace} failed: {failure}") from failure

    def __enter__(self) -> "SyntheticService":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @staticmethod
    def _address(server: Optional[ThreadingHTTPServer]) -> str:
        if server is None:
            raise RuntimeError("the service is not started")
        host, port = server.server_address[:2]
        return f"{host}:{port}"

    @property
    def target(self) -> str:
        """`host:port` for a Prometheus scrape config."""
        return self._address(self._server)

    @property
    def url(self) -> str:
        """The public listener: the service's URL."""
        return f"http://{self.target}"

    @property
    def test_url(self) -> str:
        """Blue/green's test listener: every request answered by the candidate."""
        return f"http://{self._address(self._test_server)}"


def _handler(service: SyntheticService, test_listener: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _tester(self) -> bool:
            """The request carries the tester header, with its value."""
            name, expected = service.header
            return (self.headers.get(name) or "").strip() == expected

        def _answering(self) -> Optional[TrackLoad]:
            """Who answers this request; None after answering 503 for want of one."""
            if test_listener:
                load = service.candidate_load()
                missing = b"no candidate deployed\n"
            else:
                load = service.answering(self._tester())
                missing = b"nothing deployed\n"
            if load is None:
                self._answer(503, missing)
            return load

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = urllib.parse.urlsplit(self.path).path
            if path == "/metrics" and not test_listener:
                self._answer(200, service.exposition(), CONTENT_TYPE_PLAIN_0_0_4)
            elif path == "/healthz" and not (test_listener or self._tester()):
                # The service's own health, as before there were versions to ask (the smoke checks' view).
                self._answer(200, b"ok\n") if service.healthy else self._answer(503, b"unhealthy\n")
            elif path == "/healthz":
                load = self._answering()
                if load is not None:
                    self._answer(*service.health(load))
            else:
                self._answer(404, b"not found\n")

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            if urllib.parse.urlsplit(self.path).path != "/v1/chat":
                self._answer(404, b"not found\n")
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                request = json.loads(body)
            except ValueError:
                request = None
            load = self._answering()
            if load is not None:
                status, answer = service.chat(load, request)
                self._answer(status, json.dumps(answer).encode(), "application/json")

        def _answer(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Quiet: Prometheus scrapes every second."""

    return Handler

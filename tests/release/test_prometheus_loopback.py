"""The release driver against a real Prometheus on loopback (Debian's `prometheus`, through the
rehearsal's launcher, which installs it with scripts/ensure-prometheus when missing and raises
when it cannot: these tests never skip).

One Prometheus for the module scrapes several synthetic chat-apis side by side (`rehearsal`),
one per scenario, each labelling its series with a namespace of its own. Every scenario's
release runs on its own offline stack at the rehearsal's pace (a check every 2 s), all of them
at once in threads once stable has had a warm-up of traffic: the module takes about as long as
its slowest release, not their sum. Each release is bounded by `LIMIT` seconds of real time.

The driver asks for its stack's namespace (`carepath-staging`: `Settings.namespace` comes from
the stack name alone), so each release reads Prometheus through `Scoped`, which rewrites that
namespace into its own scenario's and records what the driver asked.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

import pytest

from core.signals import CHAT_API, Signal
from offline.harness import ROOT
from rehearsal import SyntheticService, query, running_prometheus, wait_for_series
from rehearsal.images import RehearsalImages
from rehearsal.run import HISTORY_STEP, pace, tracks_of
from release.audit import AuditLog
from release.driver import Driver
from release.judge import Histogram, Level, Ratio, finite
from release.ports import MetricsError
from release.prometheus import PrometheusMetrics
from release.record import ReleaseRun
from release.stackfile import settings_of
from release.stacks import OfflineStack

CANDIDATE, STABLE = "v2.0.0", "v1.4.0"  # the release's tag; staging's services.chat-api.tag
STACK_NAMESPACE = "carepath-staging"
WARM_UP = 15.0  # seconds of stable traffic before the releases: their baseline
LIMIT = 120.0  # seconds of real time any one release may take
# The rehearsal's pace, with steps of at least 400 canary requests: at 100 req/s (the synthetic
# service's) the release opens at 50 %, so each release decides within about half a minute.
ANALYSIS = "services.chat-api.rollout.analysis"
FAST = {**pace(), f"{ANALYSIS}.minStepRequests": 400}
QUICK_ABORT = {**FAST, f"{ANALYSIS}.maxInconclusiveSeconds": 10}


@dataclass(frozen=True)
class Case:
    scenario: str
    overrides: Mapping[str, Any]
    candidate: str = CANDIDATE  # the version that behaves as the scenario says
    limit: float = LIMIT


CASES: dict[str, Case] = {
    # alpha bounds false rollbacks; lowered here only so that the good run is not a coin with
    # a 5 % edge. Promotion needs every gate at its accept boundary, which alpha does not move.
    "good": Case("good", {**FAST, f"{ANALYSIS}.alpha": 0.001}),
    # bad-model also raises complaints (2.5 x): advisory here, so the gate the test is about,
    # triage-success, is the one that decides, not whichever crosses first.
    "bad-model": Case("bad-model", {**FAST, f"{ANALYSIS}.signals": [{"name": "complaints", "critical": False}]}),
    "nan": Case("nan", QUICK_ABORT),
    "no-metrics": Case("no-metrics", QUICK_ABORT),
    # Stable (not the candidate) exports NaN: its baseline holds no usable request count.
    # Only the release's start matters: it is interrupted at its first check.
    "nan-baseline": Case("nan", FAST, candidate=STABLE, limit=0.0),
    # Never released: stable alone at 100 %, for the adapter's own checks on a real server.
    "quiet": Case("good", FAST),
}


# The offline plan engine runs the Pulumi program on Pulumi's process-global runtime settings and
# config: two evaluations at once in one process deadlock. The releases run in threads, so their
# stacks take turns at `up` (it takes a fraction of a second; the checks are seconds apart).
ENGINE = threading.Lock()


class SerialStack(OfflineStack):
    """The offline stack, evaluated under `ENGINE`."""

    def __init__(self, name: str, overrides: Mapping[str, Any], workspace: Path):
        with ENGINE:
            super().__init__(name, ROOT, overrides, workspace=workspace)

    def up(self) -> None:
        with ENGINE:
            super().up()


class Scoped:
    """The driver's Metrics port on one scenario's series: the stack's namespace rewritten to the
    exporter's, every namespace the driver asked for recorded."""

    def __init__(self, metrics: PrometheusMetrics, namespace: str):
        self.metrics, self.namespace = metrics, namespace
        self.asked: set[str] = set()

    def read(self, namespaces: Sequence[str], signals: Sequence[Signal], by: str, groups: Mapping[str, str], release_seconds: float, interval_seconds: float):
        self.asked.update(namespaces)
        return self.metrics.read((self.namespace,), signals, by, groups, release_seconds, interval_seconds)

    def history(self, namespaces: Sequence[str], signals: Sequence[Signal], by: str, group: str, seconds: float, step_seconds: float, now: float):
        self.asked.update(namespaces)
        return self.metrics.history((self.namespace,), signals, by, group, seconds, step_seconds, now)


class Deadline:
    """Real sleep, as the driver's default; past `limit` seconds (or once the module is done) it
    raises KeyboardInterrupt, as Ctrl-C would, so a regression cannot hang the suite."""

    def __init__(self, limit: float, stop: threading.Event):
        self.limit, self.stop = limit, stop
        self.started: Optional[float] = None

    def __call__(self, seconds: float) -> None:
        now = time.monotonic()
        self.started = now if self.started is None else self.started
        if now - self.started + seconds > self.limit or self.stop.wait(seconds):
            raise KeyboardInterrupt


@dataclass
class Release:
    name: str
    case: Case
    stack: SerialStack
    service: SyntheticService
    metrics: Scoped
    audit: Path
    shown: list[str] = field(default_factory=list)
    future: Optional[Future] = None

    @property
    def namespace(self) -> str:
        return self.service.namespace

    def driver(self, stop: threading.Event) -> Driver:
        smoke = lambda address: _status_of(self.service.url + "/" + address.split("/", 3)[-1])  # noqa: E731 (as `python -m release`)
        return Driver(
            self.stack, self.metrics, AuditLog(self.audit, self.stack.name), RehearsalImages(),
            sleep=Deadline(self.case.limit, stop), show=self.shown.append, http_get=smoke, history_step=HISTORY_STEP,
        )

    def run(self) -> ReleaseRun:
        """The release's run; a release past its time limit fails its test (the KeyboardInterrupt
        of its `Deadline` would end the whole pytest session)."""
        assert self.future is not None, f"{self.name} was never started"
        error = self.future.exception(timeout=self.case.limit + 60)
        if isinstance(error, KeyboardInterrupt):
            pytest.fail(f"{self.name}: no outcome within {self.case.limit:g} s\n" + "\n".join(self.shown[-3:]))
        return self.future.result()

    def story(self, run: ReleaseRun) -> str:
        """For a failure message: the outcome, the canary's weights and the last checks."""
        return "\n".join([f"{self.name}: {run.outcome} ({run.message})", f"canary weights: {self.canary_weights()}", *self.shown[-4:]])

    def entries(self) -> list[dict[str, Any]]:
        return AuditLog(self.audit, self.stack.name).entries()

    def canary_weights(self) -> list[int]:
        """The canary's weight after each `up` of the offline stack (the first: before the release)."""
        weights = []
        for plan in self.stack.plans:
            routes = plan.one("kubernetes:networking.istio.io/v1:VirtualService").inputs["spec"]["http"]
            weights.append({d["destination"]["subset"]: d["weight"] for d in routes[-1]["route"]}.get("canary", 0))
        return weights


def _status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@dataclass
class World:
    url: str
    releases: dict[str, Release]
    started: float  # wall-clock time the releases started


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("loopback")
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        releases: dict[str, Release] = {}
        for seed, (name, case) in enumerate(CASES.items()):
            offline = SerialStack("staging", case.overrides, directory / "offline" / name)
            service = SyntheticService(f"rehearsal-{name}", case.candidate, case.scenario, lambda offline=offline: tracks_of(offline), seed=seed)
            stack.enter_context(service)
            releases[name] = Release(name, case, offline, service, None, directory / f"{name}.jsonl")  # type: ignore[arg-type]
        url = stack.enter_context(running_prometheus([r.service.target for r in releases.values()]))
        for release in releases.values():
            release.metrics = Scoped(PrometheusMetrics(url, service="chat-api"), release.namespace)
            wait_for_series(url, f'http_requests_total{{namespace="{release.namespace}"}}')
        time.sleep(WARM_UP)
        started = time.time()
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=len(releases)))
        stack.callback(stop.set)  # runs first: interrupts any release still in flight
        for name, release in releases.items():
            if name != "quiet":
                release.future = pool.submit(release.driver(stop).run, CANDIDATE)
        yield World(url, releases, started)


def _gate_views(run: ReleaseRun, gate: str) -> list[Any]:
    return [g for o in run.observations for g in o.gates if g.gate == gate]


# --- releases ---------------------------------------------------------------------------------


def test_a_good_canary_is_promoted(world):
    release = world.releases["good"]
    run = release.run()
    assert run.outcome == "promoted", release.story(run)
    config = release.stack.config()["services"]["chat-api"]
    assert config["tag"] == CANDIDATE
    assert "tag" not in config["rollout"]["canary"] and config["rollout"]["canary"]["weight"] == 0
    weights = release.canary_weights()
    steps = [w for i, w in enumerate(weights) if i == 0 or w != weights[i - 1]]
    assert steps[0] == 0 and steps[-2:] == [100, 0] and steps[1:-1] == sorted(steps[1:-1]), "up the ladder, then promoted"
    assert 0 < steps[1] < 100, f"it opened at a partial weight: {steps}"
    assert run.observations[-1].verdict == "promote"
    errors = _gate_views(run, "errors")
    assert errors[-1].state == "pass" and errors[-1].candidate is not None and errors[-1].reference is not None
    assert release.metrics.asked == {STACK_NAMESPACE}, "the driver asks for its stack's namespace"
    assert [(e["action"], e.get("event")) for e in release.entries() if e["action"] != "analysis"][-2:] == [("promote", "applied"), ("release", "ended")]


def test_a_model_that_only_triages_worse_is_rolled_back(world):
    release = world.releases["bad-model"]
    run = release.run()
    assert run.outcome == "rolled back", release.story(run)
    assert run.message.startswith("analysis: ") and "triage-success" in run.message, release.story(run)
    assert "errors" not in run.message, "no extra 5xx: the errors gate had nothing against it"
    assert all(g.state != "fail" for g in _gate_views(run, "errors"))
    config = release.stack.config()["services"]["chat-api"]
    assert config["tag"] == STABLE and "tag" not in config["rollout"]["canary"]
    weights = release.canary_weights()
    assert weights[1] > 0 and weights[-1] == 0, "it took traffic, then none"
    assert run.observations[-1].verdict == "rollback"
    # Not asserted: that it never took most of the traffic. Opening at 50 %, the next step is a
    # matter of chance: it moves on when the first checks happen to favour it, which they do
    # when stable's share, estimated from a short warm-up, happens to read high (seen in 3 of
    # about 20 runs, all on a loaded machine: stable's triage failures read 0.073-0.084, not 0.05).


def _assert_held_then_aborted(release: Release, run: ReleaseRun) -> None:
    assert run.outcome == "rolled back"
    assert run.message.startswith("inconclusive for 10 s"), run.message
    assert run.observations and {o.verdict for o in run.observations} == {"hold"}
    assert all(o.reasons[0].startswith("inconclusive: no usable data for errors") for o in run.observations), run.observations[-1].reasons
    assert run.observations[-1].seconds >= 10
    weights = release.canary_weights()
    assert len(weights) == 3 and weights[0] == weights[2] == 0 and weights[1] > 0, f"never advanced past its first weight: {weights}"
    config = release.stack.config()["services"]["chat-api"]
    assert config["tag"] == STABLE and "tag" not in config["rollout"]["canary"]
    analyses = [e for e in release.entries() if e["action"] == "analysis"]
    assert len(analyses) == len(run.observations) and {e["verdict"] for e in analyses} == {"hold"}


def test_nan_holds_then_aborts(world):
    release = world.releases["nan"]
    run = release.run()
    _assert_held_then_aborted(release, run)
    # The candidate's series were there, and NaN: read as no data, not as an unanswered query.
    values = query(world.url, f'last_over_time(http_requests_total{{namespace="{release.namespace}", track="canary"}}[10m])')
    assert values and all(math.isnan(float(series["value"][1])) for series in values)


def test_no_metrics_for_the_candidate_holds_then_aborts(world):
    release = world.releases["no-metrics"]
    run = release.run()
    _assert_held_then_aborted(release, run)
    assert query(world.url, f'last_over_time(http_requests_total{{namespace="{release.namespace}", track="canary"}}[10m])') == []
    stable = query(world.url, f'last_over_time(http_requests_total{{namespace="{release.namespace}", track="stable"}}[10m])')
    assert stable, "stable kept answering: only the candidate was silent"


def test_a_baseline_of_nan_is_no_request_rate(world):
    """Traffic the baseline cannot count is unknown traffic: the release opens at the ladder's
    first step. (Found as a bug in `release.driver.request_rate`: it summed the `total` of every
    baseline reading, NaN included, so the rate was NaN, and `core.release.next_weight(steps, 0,
    nan, ...)`, finding no step whose `rate > 0`, returned the LAST: the canary opened at 100 %.)"""
    release = world.releases["nan-baseline"]
    assert release.future is not None
    error = release.future.exception(timeout=60)
    assert isinstance(error, KeyboardInterrupt), f"interrupted at its first check (only its start is judged here), not {error!r}"
    canary = release.stack.config()["services"]["chat-api"]["rollout"]["canary"]
    assert canary["tag"] == CANDIDATE
    first = settings_of(release.stack.config(), "staging").service("chat-api").rollout.canary.steps[0]
    assert canary["weight"] == first


# --- the adapter on a real server -----------------------------------------------------------------


def test_every_signal_reads_from_the_synthetic_service(world):
    quiet = world.releases["quiet"]
    check = PrometheusMetrics(world.url, service="chat-api").read((quiet.namespace,), CHAT_API, "track", {"reference": "stable"}, 10, 2)
    assert set(check) == {s.name for s in CHAT_API}
    for signal in CHAT_API:
        reading = check[signal.name].get("reference")
        assert reading is not None and finite(reading), f"{signal.name}: {reading}"
        kind = {"ratio": Ratio, "distribution": Histogram, "gauge": Level, "count": Level}[signal.kind]
        assert isinstance(reading, kind), signal.name
    assert check["errors"]["reference"].total > 200, "about 100 requests a second for 10 s"
    assert check["cpu"]["reference"].limit == 1.0


def test_history_reads_the_warm_up_one_reading_per_step(world):
    quiet = world.releases["quiet"]
    history = PrometheusMetrics(world.url, service="chat-api").history((quiet.namespace,), CHAT_API, "track", "stable", WARM_UP - 5, HISTORY_STEP, world.started)
    assert set(history) == {s.name for s in CHAT_API if s.statistical}
    errors = history["errors"]
    assert len(errors) == 3, "(10 s / 5 s) + 1 steps"
    assert all(finite(r) and isinstance(r, Ratio) and 250 < r.total < 1000 for r in errors), errors


def test_a_namespace_without_series_reads_as_no_data(world):
    check = PrometheusMetrics(world.url, service="chat-api").read(("nowhere",), CHAT_API, "track", {"candidate": "canary", "reference": "stable"}, 60, 2)
    assert check == {s.name: {} for s in CHAT_API}


@pytest.mark.parametrize(
    ("promql", "message"),
    [
        ("http_requests_total[1m]", "expected a vector result, got 'matrix'"),
        ("scalar(vector(1))", "expected a vector result, got 'scalar'"),
        ('"text"', "expected a vector result, got 'string'"),
        ("sum(http_requests_total", "HTTP 400: .*parse error"),
        ("rate(http_requests_total)", "HTTP 400: .*"),
    ],
    ids=["range selector", "scalar", "string", "syntax error", "wrong argument"],
)
def test_a_query_prometheus_cannot_answer_as_a_vector_raises_metrics_error(world, promql, message):
    with pytest.raises(MetricsError, match=message):
        PrometheusMetrics(world.url, service="chat-api").vector(promql)


def test_a_range_query_prometheus_refuses_raises_metrics_error(world):
    metrics = PrometheusMetrics(world.url, service="chat-api")
    with pytest.raises(MetricsError, match="HTTP 400: .*end timestamp must not be before start time"):
        metrics.matrix("up", world.started, world.started - 60, 5)
    with pytest.raises(MetricsError, match="HTTP 400: .*exceeded maximum resolution"):
        metrics.matrix("up", world.started - 86400, world.started, 1)


def test_nan_and_inf_from_prometheus_pass_through(world):
    metrics = PrometheusMetrics(world.url, service="chat-api")
    [(_, nan)] = metrics.vector("vector(0) / 0")
    [(_, inf)] = metrics.vector("vector(1) / 0")
    assert math.isnan(nan) and inf == math.inf

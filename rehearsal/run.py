"""A rehearsal's moving parts: the offline stack's traffic split for one service feeding the
synthetic service, Prometheus scraping it, and the faster pace a rehearsal runs at; for a
promotion path, one such pair per stage."""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from core.actions import key
from core.release import DEFAULT_SERVICE, plan_release
from rehearsal.exporter import SyntheticService, TrackLoad
from rehearsal.prometheus import running_prometheus, wait_for_series
from release.stackfile import settings_of

HISTORY_STEP = 5.0  # five scrapes a point
WARM_UP = 30.0  # seconds of stable traffic before the release: its baseline


def pace(service: str = DEFAULT_SERVICE) -> dict[str, Any]:
    """A rehearsal's overrides of the service's analysis: time runs faster, checks every 2 s on a
    Prometheus scraping every second."""
    return {
        key(service, "rollout.analysis.intervalSeconds"): 2,
        key(service, "rollout.analysis.stepBudgetSeconds"): 10,
        key(service, "rollout.analysis.maxInconclusiveSeconds"): 30,
        key(service, "rollout.analysis.baselineSeconds"): 60,
        key(service, "rollout.analysis.bakeSeconds"): 20,
    }


def tracks_of(stack, service: str = DEFAULT_SERVICE) -> list[TrackLoad]:
    """What the stack's config serves of the service now: each track's version, share of traffic and pods."""
    plan = plan_release(settings_of(stack.config(), stack.name), service)
    weights = dict(plan.weights)
    return [TrackLoad(t.track, t.tag, float(weights.get(t.track, 0)), max(t.replicas, 1)) for t in plan.tracks]


@dataclass(frozen=True)
class Rehearsed:
    """One stack's rehearsal: its Prometheus and its synthetic service."""

    prometheus_url: str
    synthetic: SyntheticService


@contextlib.contextmanager
def _scraped(stack, candidate: str, scenario: str, requests_per_second: float, service: str) -> Iterator[Rehearsed]:
    """The synthetic `service` of `stack` (reached by the stack's tester header) and a Prometheus
    on loopback that has scraped it once."""
    settings = settings_of(stack.config(), stack.name)
    tester = settings.service(service).rollout.canary.header

    def tracks() -> list[TrackLoad]:  # asked at every step of the simulation: the driver moves them
        return tracks_of(stack, service)

    with SyntheticService(
        settings.namespace, candidate, scenario, tracks, requests_per_second, service=service, header=(tester.name, tester.value)
    ) as synthetic:
        with running_prometheus([synthetic.target]) as url:
            wait_for_series(url, "http_requests_total")
            yield Rehearsed(url, synthetic)


@contextlib.contextmanager
def rehearsal(
    stack, candidate: str, scenario: str, requests_per_second: float = 100.0, warm_up: float = WARM_UP, service: str = DEFAULT_SERVICE,
) -> Iterator[tuple[str, SyntheticService]]:
    """The synthetic `service` of `stack` and a Prometheus on loopback scraping it; yields the
    Prometheus URL and the service, after `warm_up` seconds of traffic."""
    with _scraped(stack, candidate, scenario, requests_per_second, service) as rehearsed:
        time.sleep(warm_up)
        yield rehearsed.prometheus_url, rehearsed.synthetic


@contextlib.contextmanager
def path_rehearsal(
    stacks: Sequence[Any], candidate: str, scenario: str, service: str = DEFAULT_SERVICE,
    requests_per_second: float = 100.0, warm_up: float = WARM_UP,
) -> Iterator[dict[str, Rehearsed]]:
    """A rehearsal per stage of a promotion path: each stack's synthetic `service` (in its own
    namespace, at its own split) and a Prometheus of its own scraping it, as each cluster has its
    own; yields stack name -> `Rehearsed` after one `warm_up` shared by all (they start at once
    and run side by side, so a path of three stages starts and warms up once, not three times).
    Everything is stopped after, also when a stage fails to start or the block raises."""
    with contextlib.ExitStack() as running:

        def start(stack: Any) -> Rehearsed:
            scraped = _scraped(stack, candidate, scenario, requests_per_second, service)
            rehearsed = scraped.__enter__()
            # Registered by the thread that started it, at once: a stage that started is stopped even
            # when another failed, or the path was interrupted, while it was starting.
            running.push(scraped.__exit__)
            return rehearsed

        with ThreadPoolExecutor(max_workers=max(len(stacks), 1), thread_name_prefix="path-rehearsal") as pool:
            starting = [(stack.name, pool.submit(start, stack)) for stack in stacks]
        # Out of the pool: every stage has started or failed to.
        rehearsed = {name: future.result() for name, future in starting}  # the first failure, if any, raises here
        time.sleep(warm_up)
        yield rehearsed

"""A rehearsal's moving parts: the offline stack's traffic split for one service feeding the
synthetic service, Prometheus scraping it, and the faster pace a rehearsal runs at."""

from __future__ import annotations

import contextlib
import time
from typing import Any, Iterator

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


@contextlib.contextmanager
def rehearsal(
    stack, candidate: str, scenario: str, requests_per_second: float = 100.0, warm_up: float = WARM_UP, service: str = DEFAULT_SERVICE,
) -> Iterator[tuple[str, SyntheticService]]:
    """The synthetic `service` of `stack` and a Prometheus on loopback scraping it; yields the
    Prometheus URL and the service, after `warm_up` seconds of traffic."""
    settings = settings_of(stack.config(), stack.name)

    def tracks() -> list[TrackLoad]:  # asked at every step of the simulation: the driver moves them
        return tracks_of(stack, service)

    with SyntheticService(settings.namespace, candidate, scenario, tracks, requests_per_second, service=service) as synthetic:
        with running_prometheus([synthetic.target]) as url:
            wait_for_series(url, "http_requests_total")
            time.sleep(warm_up)
            yield url, synthetic

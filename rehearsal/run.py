"""A rehearsal's moving parts: the offline stack's traffic split feeding the synthetic service,
Prometheus scraping it, and the faster pace a rehearsal runs at."""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

from core.release import plan_release
from rehearsal.exporter import SyntheticService, TrackLoad
from rehearsal.prometheus import running_prometheus, wait_for_series
from release.stackfile import settings_of

# Time runs faster: checks every 2 s on a Prometheus scraping every second.
PACE = {
    "rollout.analysis.intervalSeconds": 2,
    "rollout.analysis.stepBudgetSeconds": 10,
    "rollout.analysis.maxInconclusiveSeconds": 30,
    "rollout.analysis.baselineSeconds": 60,
    "rollout.analysis.bakeSeconds": 20,
}
HISTORY_STEP = 5.0  # five scrapes a point
WARM_UP = 30.0  # seconds of stable traffic before the release: its baseline


def tracks_of(stack) -> list[TrackLoad]:
    """What the stack's config serves now: each track's version, share of traffic and pods."""
    plan = plan_release(settings_of(stack.config(), stack.name))
    weights = dict(plan.weights)
    return [TrackLoad(t.track, t.tag, float(weights.get(t.track, 0)), max(t.replicas, 1)) for t in plan.tracks]


@contextlib.contextmanager
def rehearsal(stack, candidate: str, scenario: str, requests_per_second: float = 100.0, warm_up: float = WARM_UP) -> Iterator[tuple[str, SyntheticService]]:
    """The synthetic service for `stack` and a Prometheus on loopback scraping it; yields the
    Prometheus URL and the service, after `warm_up` seconds of traffic."""
    settings = settings_of(stack.config(), stack.name)
    with SyntheticService(settings.namespace, candidate, scenario, lambda: tracks_of(stack), requests_per_second) as service:
        with running_prometheus([service.target]) as url:
            wait_for_series(url, "http_requests_total")
            time.sleep(warm_up)
            yield url, service

"""The release plan: which versions of chat-api run and how traffic reaches them.

`plan_release(settings)` is pure. The rules live here; components only render
the plan:

- weights are percents over the production entrypoint and sum to 100;
- every track that gets traffic (weighted, header or test route) exists and has
  at least one replica;
- the stable track (the active colour, for blue/green) always exists at full
  size, so rolling back is a routing change, never a wait for pods;
- blue/green: the idle colour runs `idleReplicas` (default: full size); scaled
  to zero it keeps its Deployment but gets no route.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional, Sequence

from core.settings import COLOURS, Settings

Track = Literal["stable", "canary", "blue", "green"]
APP = "chat-api"
SERVICE_PORT = 80  # every track's Service, and the mesh host, serve HTTP on 80
DEPLOYMENTS: dict[str, str] = {
    "stable": APP,
    "canary": f"{APP}-canary",
    "blue": f"{APP}-blue",
    "green": f"{APP}-green",
}


@dataclass(frozen=True)
class TrackSpec:
    """One version of chat-api: Deployment, Service and PDB named `deployment`."""

    track: Track
    tag: str
    replicas: int
    namespace: str

    @property
    def deployment(self) -> str:
        return DEPLOYMENTS[self.track]

    @property
    def selector(self) -> dict[str, str]:
        """The labels that select this track's pods; they never change for a track."""
        return {"app.kubernetes.io/name": APP, "track": self.track}


@dataclass(frozen=True)
class ReleasePlan:
    strategy: str
    tracks: tuple[TrackSpec, ...]
    weights: tuple[tuple[Track, int], ...]  # production traffic, percent per track
    header_track: Optional[Track] = None  # canary: the track the tester header reaches
    test_track: Optional[Track] = None  # blue/green: the idle colour behind the test listener

    def track(self, name: str) -> TrackSpec:
        return next(t for t in self.tracks if t.track == name)

    @property
    def serving(self) -> TrackSpec:
        """The track that serves when nothing is in flight: stable, or the active colour."""
        return self.tracks[0]

    @property
    def production_tracks(self) -> tuple[TrackSpec, ...]:
        """Tracks the production entrypoint routes to (by weight, or by the tester header): their
        pods must be ready before the route moves to them."""
        routed = {track for track, weight in self.weights if weight > 0} | {self.header_track}
        return tuple(t for t in self.tracks if t.track in routed)

    @property
    def other_tracks(self) -> tuple[TrackSpec, ...]:
        """The rest (an idle colour, a canary): a scale-down of these waits until traffic has left."""
        return tuple(t for t in self.tracks if t not in self.production_tracks)

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.namespace for t in self.tracks))


def idle_colour(active: str) -> str:
    return next(c for c in COLOURS if c != active)


def canary_replicas(stable_replicas: int, weight: int) -> int:
    """The canary's share of the stable size, at least one pod, never more than stable."""
    return min(stable_replicas, max(1, math.ceil(stable_replicas * weight / 100)))


def next_weight(steps: Sequence[int], current: int, requests_per_second: float, interval_seconds: float, min_step_requests: int, budget_seconds: float) -> int:
    """The next canary weight: the next step of the ladder whose `min_step_requests` arrive within
    `budget_seconds` at the service's traffic (the last step always qualifies).

    Exposure is counted in requests, not minutes: at high traffic the release starts at the
    ladder's smallest weight, so few patients meet an unproven canary and a bad one fails few
    requests per check; at low traffic the steps too slow to fill are skipped, so a decision
    comes within the budget. A step is never shorter than one check `interval_seconds`. Unknown
    traffic (0) moves one step at a time."""
    following = [step for step in steps if step > current]
    if not requests_per_second > 0:  # traffic unknown (0 or NaN): one step at a time
        return following[0] if following else current
    for step in following:
        rate = requests_per_second * step / 100
        if rate > 0 and max(min_step_requests / rate, interval_seconds) <= budget_seconds:
            return step
    return following[-1] if following else current


def canary_move(weight: int, steps: Sequence[int], accepted: bool, filled: bool) -> Literal["promote", "advance", "stay"]:
    """After a passing check: from the last step, promote once every critical gate accepts the
    canary (`accepted`); before it, advance once the step has had its requests (`filled`)."""
    if weight == steps[-1]:
        return "promote" if accepted else "stay"
    return "advance" if filled else "stay"


def plan_release(settings: Settings) -> ReleasePlan:
    rollout, replicas, namespace = settings.rollout, settings.chat_api.replicas, settings.namespace
    if rollout.strategy == "blue-green":
        blue_green = rollout.blue_green
        active = blue_green.active
        idle = idle_colour(active)
        idle_replicas = replicas if blue_green.idle_replicas is None else blue_green.idle_replicas
        isolated = blue_green.isolation == "namespace"

        def colour(name: Track, count: int) -> TrackSpec:
            return TrackSpec(name, getattr(blue_green, name).tag, count, f"{namespace}-{name}" if isolated else namespace)

        tracks = (colour(active, replicas), colour(idle, idle_replicas))
        weights: tuple[tuple[Track, int], ...] = ((active, 100),)
        if blue_green.green_weight is not None:
            weights = (("blue", 100 - blue_green.green_weight), ("green", blue_green.green_weight))
        # An idle colour scaled to zero keeps its Deployment (switching back scales it up) but has
        # no pods to test, so it gets no route.
        return ReleasePlan(rollout.strategy, tracks, weights, test_track=idle if idle_replicas > 0 else None)

    stable = TrackSpec("stable", settings.chat_api.tag, replicas, namespace)
    canary = rollout.canary
    if rollout.strategy == "rolling" or canary.tag is None:
        return ReleasePlan(rollout.strategy, (stable,), (("stable", 100),))
    canary_count = canary.replicas if canary.replicas is not None else canary_replicas(replicas, canary.weight)
    canary_track = TrackSpec("canary", canary.tag, canary_count, namespace)
    weights = (("stable", 100 - canary.weight), ("canary", canary.weight))
    return ReleasePlan(rollout.strategy, (stable, canary_track), weights, header_track="canary")


GATEWAY_BACKEND = "gateway"


def edge_backends(plan: ReleasePlan, mesh_enabled: bool) -> tuple[str, ...]:
    """The ALB's target groups: the mesh's ingress gateway when the mesh routes, else one per track."""
    return (GATEWAY_BACKEND,) if mesh_enabled else tuple(t.track for t in plan.tracks)

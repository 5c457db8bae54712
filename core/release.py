"""The release plan: which versions of chat-api run and how traffic reaches them.

`plan_release(settings)` is pure. The rules live here; components only render
the plan:

- weights are percents over the production entrypoint and sum to 100;
- every track that gets traffic (weighted, header or test route) exists and has
  at least one replica;
- the stable track (the active colour, for blue/green) always exists at full
  size, so rolling back is a routing change, never a wait for pods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional

from core.settings import COLOURS, Settings

Track = Literal["stable", "canary", "blue", "green"]
APP = "chat-api"
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


def canary_replicas(stable_replicas: int, weight: int) -> int:
    """The canary's share of the stable size, at least one pod, never more than stable."""
    return min(stable_replicas, max(1, math.ceil(stable_replicas * weight / 100)))


def plan_release(settings: Settings) -> ReleasePlan:
    rollout, replicas = settings.rollout, settings.chat_api.replicas
    if rollout.strategy == "blue-green":
        blue_green = rollout.blue_green
        active = blue_green.active
        idle = next(c for c in COLOURS if c != active)
        tracks = tuple(TrackSpec(c, getattr(blue_green, c).tag, replicas) for c in (active, idle))
        return ReleasePlan(rollout.strategy, tracks, ((active, 100),), test_track=idle)

    stable = TrackSpec("stable", settings.chat_api.tag, replicas)
    canary = rollout.canary
    if rollout.strategy == "rolling" or canary.tag is None:
        return ReleasePlan(rollout.strategy, (stable,), (("stable", 100),))
    canary_track = TrackSpec("canary", canary.tag, canary_replicas(replicas, canary.weight))
    weights = (("stable", 100 - canary.weight), ("canary", canary.weight))
    return ReleasePlan(rollout.strategy, (stable, canary_track), weights, header_track="canary")

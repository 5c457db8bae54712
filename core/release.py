"""The release plan: which versions of a service run and how traffic reaches them.

`plan_release(settings, service)` is pure. The rules live here; components only render
the plan:

- weights are percents over the production entrypoint and sum to 100;
- every track that gets traffic (weighted, header or test route) exists and has
  at least one replica;
- the stable track (the active colour, for blue/green) always exists at full
  size, so rolling back is a routing change, never a wait for pods;
- blue/green: the idle colour runs `idleReplicas` (default: full size; full size
  too while a release is in flight); scaled to zero it keeps its Deployment but
  gets no route.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from typing import Any, Literal, Optional, Sequence

from core.settings import Settings

Track = Literal["stable", "canary", "blue", "green"]
TRACKS: tuple[Track, ...] = typing.get_args(Track)
DEFAULT_SERVICE = "chat-api"
SERVICE_PORT = 80  # every track's Service, and the mesh host, serve HTTP on 80


def deployment_name(service: str, track: str) -> str:
    """A track's Deployment (and Service, PDB): the stable track has the service's own name
    (`chat-api`), the others a suffix (`chat-api-canary`, `chat-api-blue`)."""
    return service if track == "stable" else f"{service}-{track}"


def deployments(service: str) -> dict[str, str]:
    """Every Deployment a service can have, by track."""
    return {track: deployment_name(service, track) for track in TRACKS}


@dataclass(frozen=True)
class TrackSpec:
    """One version of a service: Deployment, Service and PDB named `deployment`."""

    service: str
    track: Track
    tag: str
    replicas: int
    namespace: str

    @property
    def deployment(self) -> str:
        return deployment_name(self.service, self.track)

    @property
    def selector(self) -> dict[str, str]:
        """The labels that select this track's pods; they never change for a track."""
        return {"app.kubernetes.io/name": self.service, "track": self.track}


@dataclass(frozen=True)
class ReleasePlan:
    service: str
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
        """In name order, so a blue/green switch (which reorders the tracks) changes nothing that
        lists them (the ServiceMonitor's namespace selector)."""
        return tuple(sorted({t.namespace for t in self.tracks}))


def idle_colour(active: str) -> Track:
    return "green" if active == "blue" else "blue"


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


def plan_release(settings: Settings, service: str) -> ReleasePlan:
    config = settings.service(service)
    rollout, replicas, namespace = config.rollout, config.replicas, settings.namespace
    if rollout.strategy == "blue-green":
        blue_green = rollout.blue_green
        active: Track = blue_green.active
        idle = idle_colour(active)
        # A release in flight keeps both colours at full size: the candidate is smoke-tested and
        # takes all traffic, the colour it replaces stays ready to take it back.
        idle_replicas = blue_green.idle_replicas if blue_green.idle_replicas is not None and rollout.in_flight is None else replicas
        isolated = blue_green.isolation == "namespace"

        def colour(name: Track, count: int) -> TrackSpec:
            return TrackSpec(service, name, getattr(blue_green, name).tag, count, f"{namespace}-{name}" if isolated else namespace)

        tracks = (colour(active, replicas), colour(idle, idle_replicas))
        weights: tuple[tuple[Track, int], ...] = ((active, 100),)
        if blue_green.green_weight is not None:
            weights = (("blue", 100 - blue_green.green_weight), ("green", blue_green.green_weight))
        # An idle colour scaled to zero keeps its Deployment (switching back scales it up) but has
        # no pods to test, so it gets no route.
        return ReleasePlan(service, rollout.strategy, tracks, weights, test_track=idle if idle_replicas > 0 else None)

    assert config.tag is not None, "parse requires a tag for the rolling and canary strategies"
    stable = TrackSpec(service, "stable", config.tag, replicas, namespace)
    canary = rollout.canary
    if rollout.strategy == "rolling" or canary.tag is None:
        return ReleasePlan(service, rollout.strategy, (stable,), (("stable", 100),))
    canary_count = canary.replicas if canary.replicas is not None else canary_replicas(replicas, canary.weight)
    canary_track = TrackSpec(service, "canary", canary.tag, canary_count, namespace)
    weights = (("stable", 100 - canary.weight), ("canary", canary.weight))
    return ReleasePlan(service, rollout.strategy, (stable, canary_track), weights, header_track="canary")


@dataclass(frozen=True)
class TrackState:
    tag: str
    replicas: int
    weight: int  # percent of production traffic
    namespace: str


@dataclass(frozen=True)
class ReleaseState:
    """What a service serves, as the program exports it (stack output `releases.<service>`) after every
    successful update, and as a config would have it: the driver compares the two before acting.

    `tracks` maps each track to its version, size, weight and namespace; `testers` is the track
    the tester header or test listener reaches; `active` the serving colour (blue/green);
    `in_flight` the release under way (`rollout.inFlight`)."""

    strategy: str
    tracks: tuple[tuple[str, TrackState], ...]
    testers: Optional[str] = None
    active: Optional[str] = None
    in_flight: Optional[tuple[tuple[str, str], ...]] = None  # id, tag, previous

    def track(self, name: str) -> Optional[TrackState]:
        return dict(self.tracks).get(name)

    @property
    def candidate(self) -> Optional[str]:
        return dict(self.in_flight or ()).get("tag")

    def to_output(self) -> dict:
        return {
            "strategy": self.strategy,
            "tracks": {name: {"tag": t.tag, "replicas": t.replicas, "weight": t.weight, "namespace": t.namespace} for name, t in self.tracks},
            "testers": self.testers,
            "active": self.active,
            "inFlight": dict(self.in_flight) if self.in_flight else None,
        }

    @classmethod
    def from_output(cls, value: Any) -> Optional["ReleaseState"]:
        """The state from a stack output (None: absent or not one this program wrote)."""
        try:
            tracks = tuple(
                (_text(name), TrackState(_text(t["tag"]), _whole(t["replicas"]), _whole(t["weight"]), _text(t["namespace"])))
                for name, t in sorted(value["tracks"].items())
            )
            in_flight = value.get("inFlight")
            return cls(
                _text(value["strategy"]),
                tracks,
                value.get("testers") and _text(value["testers"]),
                value.get("active") and _text(value["active"]),
                tuple(sorted((_text(k), _text(v)) for k, v in in_flight.items() if v is not None)) if in_flight else None,
            )
        except (AttributeError, KeyError, TypeError, ValueError):
            return None

    def describe(self) -> str:
        """One line: who serves what."""
        parts = [f"{name} {t.tag} {t.weight} %" + (" +testers" if name == self.testers else "") for name, t in self.tracks if t.weight or name == self.testers or len(self.tracks) == 1]
        idle = [f"{name} {t.tag} idle ({t.replicas} pods)" for name, t in self.tracks if not t.weight and name != self.testers and len(self.tracks) > 1]
        return ", ".join(parts + idle)

    def differences(self, other: "ReleaseState") -> list[str]:
        """What `other` has that this state does not, one line each (`key: this -> other`)."""
        lines = []
        if self.strategy != other.strategy:
            lines.append(f"strategy: {self.strategy} -> {other.strategy}")
        for name in sorted(set(dict(self.tracks)) | set(dict(other.tracks))):
            mine, theirs = self.track(name), other.track(name)
            if mine != theirs:
                show = lambda t: f"{t.tag} x{t.replicas} {t.weight} % in {t.namespace}" if t else "absent"  # noqa: E731
                lines.append(f"{name}: {show(mine)} -> {show(theirs)}")
        for label, mine_value, their_value in (("testers", self.testers, other.testers), ("active", self.active, other.active), ("in flight", self.in_flight, other.in_flight)):
            if mine_value != their_value:
                lines.append(f"{label}: {_plain(mine_value)} -> {_plain(their_value)}")
        return lines


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {value!r}")
    return value


def _whole(value: Any) -> int:
    """An integer as the program wrote it (Pulumi's mocks hand integers back as floats)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ValueError(f"expected a whole number, got {value!r}")
    return int(value)


def _plain(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(f"{k}={v}" for k, v in value)
    return "none" if value is None else str(value)


def release_state(settings: Settings, service: str) -> ReleaseState:
    """The state `settings` deploy for a service: the program exports it, the driver compares with it."""
    plan = plan_release(settings, service)
    rollout = settings.service(service).rollout
    weights = dict(plan.weights)
    in_flight = rollout.in_flight
    return ReleaseState(
        strategy=plan.strategy,
        tracks=tuple(sorted((t.track, TrackState(t.tag, t.replicas, weights.get(t.track, 0), t.namespace)) for t in plan.tracks)),
        testers=plan.header_track or plan.test_track,
        active=rollout.blue_green.active if plan.strategy == "blue-green" else None,
        in_flight=tuple(sorted((k, v) for k, v in (("id", in_flight.id), ("tag", in_flight.tag), ("previous", in_flight.previous)) if v is not None)) if in_flight else None,
    )


def release_states(settings: Settings) -> dict[str, ReleaseState]:
    """Every service's state, by name: the stack output `releases`."""
    return {service: release_state(settings, service) for service in settings.services}

"""The release driver's actions, as pure rules: each is the one config write that carries it out.

An action reads the stack's settings and answers, for one service, the keys it changes (all of
them, written at once, under `services.<service>.`) or refuses with `Refused`: a command the
service's strategy does not have, or one its release's state does not allow. The release record
`services.<service>.rollout.inFlight` is written with the first step of a release and removed
with its last, in the same write.

| command | canary | blue-green | rolling |
|---|---|---|---|
| start | canary at the first step | candidate on the idle colour | the new tag |
| advance | next weight step | - | - |
| promote | canary becomes stable | - | - |
| switch | - | production to the other colour | - |
| abort | all traffic to stable, canary removed | back to the colour it replaced | back to the previous tag |

After a canary's promotion nothing is in flight; a regression in its watch (`release.promotion`)
is undone with `revert` (stable back to the replaced tag). Blue/green and rolling releases stay in
flight through their watch, so `abort` undoes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from core.paths import UNSET
from core.release import canary_replicas, idle_colour
from core.settings import STRATEGIES, ServiceSettings, Settings

COMMANDS: dict[str, tuple[str, ...]] = {
    "status": STRATEGIES,
    "start": STRATEGIES,
    "run": STRATEGIES,
    "abort": STRATEGIES,
    "deploy": STRATEGIES,
    "advance": ("canary",),
    "promote": ("canary",),
    "switch": ("blue-green",),
}


class Refused(ValueError):
    """What a service's strategy or its release's state does not allow; nothing was written."""


@dataclass(frozen=True)
class Action:
    name: str
    changes: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""


def key(service: str, path: str) -> str:
    """A service's config path, as the stack file's writes take it (`services.chat-api.tag`)."""
    return f"services.{service}.{path}"


def _where(settings: Settings, service: str) -> str:
    return f"stack {settings.stack}, service {service}"


def supported(command: str, settings: Settings, service: str) -> None:
    """Refuse a command the service's strategy does not have (`UnknownService` for a service the
    stack does not have)."""
    strategy = settings.service(service).rollout.strategy
    if strategy not in COMMANDS[command]:
        own = [name for name, strategies in COMMANDS.items() if strategy in strategies]
        raise Refused(f"{_where(settings, service)} releases {strategy}: `{command}` is for {' and '.join(COMMANDS[command])} services (its commands: {', '.join(own)})")


def _record(release_id: str, tag: str, previous: Optional[str], started: str) -> dict[str, Any]:
    return {"id": release_id, "tag": tag, **({"previous": previous} if previous else {}), "started": started}


def start(settings: Settings, service: str, tag: str, release_id: str, started: str, first_weight: int) -> Action:
    """The release's first step, with its record. `first_weight`: the canary's opening weight
    (0 for a shadow step)."""
    config = settings.service(service)
    rollout, where = config.rollout, _where(settings, service)
    if rollout.in_flight is not None:
        same = rollout.in_flight.tag == tag
        raise Refused(
            f"{where}: {rollout.in_flight.tag} is already in flight (release {rollout.in_flight.id})"
            + (": `run` resumes it" if same else ": promote or abort it first")
        )
    record = key(service, "rollout.inFlight")
    if rollout.strategy == "canary":
        if rollout.canary.tag is not None:
            raise Refused(f"{where}: a canary ({rollout.canary.tag}) is already deployed: promote or abort it first")
        if tag == config.tag:
            raise Refused(f"{where}: {tag} is already the stable version")
        return Action(
            "start",
            {
                key(service, "rollout.canary.tag"): tag,
                key(service, "rollout.canary.weight"): first_weight,
                # Pinned, so a later weight step changes only the route (see `scale_canary`).
                key(service, "rollout.canary.replicas"): canary_replicas(config.replicas, first_weight),
                record: _record(release_id, tag, config.tag, started),
            },
            f"canary {tag} at {first_weight} %" + ((" (shadow)" if rollout.canary.mirror else " (testers only)") if first_weight == 0 else ""),
        )
    if rollout.strategy == "blue-green":
        if rollout.blue_green.green_weight is not None:
            raise Refused(
                f"{where}: {key(service, 'rollout.blueGreen.greenWeight')} ({rollout.blue_green.green_weight}) splits production "
                "traffic over both colours by hand, so a candidate on the idle colour would take patient traffic untested: unset it first"
            )
        active = rollout.blue_green.active
        idle = idle_colour(active)
        if getattr(rollout.blue_green, active).tag == tag:
            raise Refused(f"{where}: {tag} already serves on {active}")
        # While the record is there both colours run at full size (`plan_release`): the candidate
        # is smoke-tested and takes all traffic, the colour it replaces waits to take it back.
        return Action(
            "start",
            {key(service, f"rollout.blueGreen.{idle}.tag"): tag, record: _record(release_id, tag, getattr(rollout.blue_green, active).tag, started)},
            f"{tag} on the idle colour {idle}, behind the test listener",
        )
    if tag == config.tag:
        raise Refused(f"{where}: {tag} is already deployed")
    return Action("start", {key(service, "tag"): tag, record: _record(release_id, tag, config.tag, started)}, f"rolling update to {tag}")


def _canary_in_flight(settings: Settings, service: str, command: str) -> str:
    tag = settings.service(service).rollout.canary.tag
    if tag is None:
        raise Refused(f"{_where(settings, service)}: no canary in flight to {command}")
    return tag


def scale_canary(settings: Settings, service: str, weight: int) -> Optional[Action]:
    """The canary pods a weight needs, in a write of their own before the weight step, so the
    step itself changes only the route (None: it has them already)."""
    config = settings.service(service)
    canary = config.rollout.canary
    needed = canary_replicas(config.replicas, weight)
    if canary.replicas is not None and canary.replicas >= needed:
        return None
    return Action("scale-canary", {key(service, "rollout.canary.replicas"): needed}, f"canary to {needed} pods for {weight} %")


def advance(settings: Settings, service: str, weight: Optional[int] = None) -> Action:
    """The next canary step, or `weight` (a later step of the ladder)."""
    supported("advance", settings, service)
    tag = _canary_in_flight(settings, service, "advance")
    canary, where = settings.service(service).rollout.canary, _where(settings, service)
    following = [step for step in canary.steps if step > canary.weight]
    if not following:
        raise Refused(f"{where}: the canary is at the last step ({canary.weight} %): promote it or abort")
    if weight is not None and weight not in following:
        raise Refused(f"{where}: {weight} % is not a later step of {key(service, 'rollout.canary.steps')} (next: {', '.join(map(str, following))})")
    target = weight if weight is not None else following[0]
    return Action("advance", {key(service, "rollout.canary.weight"): target}, f"canary {tag} to {target} %")


def _canary_removed(service: str) -> dict[str, Any]:
    """The keys that end a canary release: no canary, weight 0, no record."""
    return {
        key(service, "rollout.canary.tag"): UNSET,
        key(service, "rollout.canary.replicas"): UNSET,
        key(service, "rollout.canary.weight"): 0,
        key(service, "rollout.inFlight"): UNSET,
    }


def promote(settings: Settings, service: str) -> Action:
    supported("promote", settings, service)
    tag = _canary_in_flight(settings, service, "promote")
    return Action("promote", {key(service, "tag"): tag, **_canary_removed(service)}, f"{tag} promoted to stable")


def switch(settings: Settings, service: str) -> Action:
    supported("switch", settings, service)
    blue_green = settings.service(service).rollout.blue_green
    target = idle_colour(blue_green.active)
    tag = getattr(blue_green, target).tag
    return Action("switch", {key(service, "rollout.blueGreen.active"): target}, f"production to {target} ({tag})")


def switched(settings: Settings, service: str) -> bool:
    """Blue/green: the release in flight already serves production."""
    return _switched(settings.service(service))


def _switched(config: ServiceSettings) -> bool:
    in_flight, blue_green = config.rollout.in_flight, config.rollout.blue_green
    return in_flight is not None and getattr(blue_green, blue_green.active).tag == in_flight.tag


def abort(settings: Settings, service: str) -> Action:
    """Back to the version the release replaces."""
    config = settings.service(service)
    rollout, where = config.rollout, _where(settings, service)
    if rollout.strategy == "canary":
        tag = rollout.canary.tag or (rollout.in_flight.tag if rollout.in_flight else None)
        if tag is None:
            raise Refused(f"{where}: no canary in flight to abort")
        return Action("abort", _canary_removed(service), f"all traffic back on stable {config.tag}; canary {tag} removed")
    in_flight = rollout.in_flight
    if in_flight is None:
        what = "switch" if rollout.strategy == "blue-green" else "start --tag <earlier tag>"
        raise Refused(f"{where}: no release in flight to abort (to change versions anyway: `{what}`)")
    record = key(service, "rollout.inFlight")
    if rollout.strategy == "blue-green":
        if _switched(config):
            back = idle_colour(rollout.blue_green.active)
            return Action("abort", {key(service, "rollout.blueGreen.active"): back, record: UNSET}, f"production back to {back} ({in_flight.previous})")
        return Action("abort", {record: UNSET}, f"{in_flight.tag} never served production; the idle colour shrinks back")
    if in_flight.previous is None:
        raise Refused(f"{where}: the release record names no previous version to go back to")
    return Action("abort", {key(service, "tag"): in_flight.previous, record: UNSET}, f"rolling back to {in_flight.previous}")


def revert(settings: Settings, service: str, previous: str) -> Action:
    """A canary's promotion undone inside its watch: stable back to the version it replaced. Only
    with nothing in flight (a new release would make it a different decision)."""
    config = settings.service(service)
    if config.rollout.in_flight is not None or config.rollout.canary.tag is not None:
        raise Refused(f"{_where(settings, service)}: a release is in flight; not reverting under it")
    return Action("revert", {key(service, "tag"): previous}, f"{config.tag} rolled back to {previous}")


def complete(settings: Settings, service: str) -> Action:
    """Blue/green and rolling: the bake passed, the release is over (its record goes; blue/green:
    the colour left idle shrinks to `idleReplicas`)."""
    in_flight = settings.service(service).rollout.in_flight
    return Action("complete", {key(service, "rollout.inFlight"): UNSET}, f"{in_flight.tag if in_flight else '?'} released")

"""The release driver's actions, as pure rules: each is the one config write that carries it out.

An action reads the stack's settings and answers the keys it changes (all of them, written at
once) or refuses with `Refused`: a command its strategy does not have, or one the release's
state does not allow. The release record `rollout.inFlight` is written with the first step of a
release and removed with its last, in the same write.

| command | canary | blue-green | rolling |
|---|---|---|---|
| start | canary at the first step | candidate on the idle colour | the new tag |
| advance | next weight step | - | - |
| promote | canary becomes stable | - | - |
| switch | - | production to the other colour | - |
| abort | all traffic to stable, canary removed | back to the colour it replaced | back to the previous tag |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from core.paths import UNSET
from core.release import canary_replicas, idle_colour
from core.settings import STRATEGIES, Settings

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
    """What a stack's strategy or its release's state does not allow; nothing was written."""


@dataclass(frozen=True)
class Action:
    name: str
    changes: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""


def supported(command: str, settings: Settings) -> None:
    """Refuse a command the stack's strategy does not have."""
    strategy = settings.rollout.strategy
    if strategy not in COMMANDS[command]:
        own = [name for name, strategies in COMMANDS.items() if strategy in strategies]
        raise Refused(f"stack {settings.stack} releases {strategy}: `{command}` is for {' and '.join(COMMANDS[command])} stacks (its commands: {', '.join(own)})")


def _record(release_id: str, tag: str, previous: Optional[str], started: str) -> dict[str, Any]:
    return {"id": release_id, "tag": tag, **({"previous": previous} if previous else {}), "started": started}


def start(settings: Settings, tag: str, release_id: str, started: str, first_weight: int) -> Action:
    """The release's first step, with its record. `first_weight`: the canary's opening weight
    (0 for a shadow step)."""
    rollout = settings.rollout
    if rollout.in_flight is not None:
        same = rollout.in_flight.tag == tag
        raise Refused(
            f"stack {settings.stack}: {rollout.in_flight.tag} is already in flight (release {rollout.in_flight.id})"
            + (": `run` resumes it" if same else ": promote or abort it first")
        )
    if rollout.strategy == "canary":
        if rollout.canary.tag is not None:
            raise Refused(f"stack {settings.stack}: a canary ({rollout.canary.tag}) is already deployed: promote or abort it first")
        if tag == settings.chat_api.tag:
            raise Refused(f"stack {settings.stack}: {tag} is already the stable version")
        return Action(
            "start",
            {
                "rollout.canary.tag": tag,
                "rollout.canary.weight": first_weight,
                # Pinned, so a later weight step changes only the route (see `scale_canary`).
                "rollout.canary.replicas": canary_replicas(settings.chat_api.replicas, first_weight),
                "rollout.inFlight": _record(release_id, tag, settings.chat_api.tag, started),
            },
            f"canary {tag} at {first_weight} %" + (" (shadow)" if first_weight == 0 else ""),
        )
    if rollout.strategy == "blue-green":
        if rollout.blue_green.green_weight is not None:
            raise Refused(
                f"stack {settings.stack}: rollout.blueGreen.greenWeight ({rollout.blue_green.green_weight}) splits production "
                "traffic over both colours by hand, so a candidate on the idle colour would take patient traffic untested: unset it first"
            )
        active = rollout.blue_green.active
        idle = idle_colour(active)
        if getattr(rollout.blue_green, active).tag == tag:
            raise Refused(f"stack {settings.stack}: {tag} already serves on {active}")
        # While the record is there both colours run at full size (`plan_release`): the candidate
        # is smoke-tested and takes all traffic, the colour it replaces waits to take it back.
        return Action(
            "start",
            {f"rollout.blueGreen.{idle}.tag": tag, "rollout.inFlight": _record(release_id, tag, getattr(rollout.blue_green, active).tag, started)},
            f"{tag} on the idle colour {idle}, behind the test listener",
        )
    if tag == settings.chat_api.tag:
        raise Refused(f"stack {settings.stack}: {tag} is already deployed")
    return Action(
        "start",
        {"chatApi.tag": tag, "rollout.inFlight": _record(release_id, tag, settings.chat_api.tag, started)},
        f"rolling update to {tag}",
    )


def _canary_in_flight(settings: Settings, command: str) -> str:
    tag = settings.rollout.canary.tag
    if tag is None:
        raise Refused(f"stack {settings.stack}: no canary in flight to {command}")
    return tag


def scale_canary(settings: Settings, weight: int) -> Optional[Action]:
    """The canary pods a weight needs, in a write of their own before the weight step, so the
    step itself changes only the route (None: it has them already)."""
    canary = settings.rollout.canary
    needed = canary_replicas(settings.chat_api.replicas, weight)
    if canary.replicas is not None and canary.replicas >= needed:
        return None
    return Action("scale-canary", {"rollout.canary.replicas": needed}, f"canary to {needed} pods for {weight} %")


def advance(settings: Settings, weight: Optional[int] = None) -> Action:
    """The next canary step, or `weight` (a later step of the ladder)."""
    supported("advance", settings)
    tag = _canary_in_flight(settings, "advance")
    canary = settings.rollout.canary
    following = [step for step in canary.steps if step > canary.weight]
    if not following:
        raise Refused(f"stack {settings.stack}: the canary is at the last step ({canary.weight} %): promote it or abort")
    if weight is not None and weight not in following:
        raise Refused(f"stack {settings.stack}: {weight} % is not a later step of rollout.canary.steps (next: {', '.join(map(str, following))})")
    target = weight if weight is not None else following[0]
    return Action("advance", {"rollout.canary.weight": target}, f"canary {tag} to {target} %")


def promote(settings: Settings) -> Action:
    supported("promote", settings)
    tag = _canary_in_flight(settings, "promote")
    return Action(
        "promote",
        {"chatApi.tag": tag, "rollout.canary.tag": UNSET, "rollout.canary.replicas": UNSET, "rollout.canary.weight": 0, "rollout.inFlight": UNSET},
        f"{tag} promoted to stable",
    )


def switch(settings: Settings) -> Action:
    supported("switch", settings)
    target = idle_colour(settings.rollout.blue_green.active)
    tag = getattr(settings.rollout.blue_green, target).tag
    return Action("switch", {"rollout.blueGreen.active": target}, f"production to {target} ({tag})")


def switched(settings: Settings) -> bool:
    """Blue/green: the release in flight already serves production."""
    in_flight, blue_green = settings.rollout.in_flight, settings.rollout.blue_green
    return in_flight is not None and getattr(blue_green, blue_green.active).tag == in_flight.tag


def abort(settings: Settings) -> Action:
    """Back to the version the release replaces."""
    rollout = settings.rollout
    if rollout.strategy == "canary":
        tag = rollout.canary.tag or (rollout.in_flight.tag if rollout.in_flight else None)
        if tag is None:
            raise Refused(f"stack {settings.stack}: no canary in flight to abort")
        changes = {"rollout.canary.tag": UNSET, "rollout.canary.replicas": UNSET, "rollout.canary.weight": 0, "rollout.inFlight": UNSET}
        return Action("abort", changes, f"all traffic back on stable {settings.chat_api.tag}; canary {tag} removed")
    in_flight = rollout.in_flight
    if in_flight is None:
        what = "switch" if rollout.strategy == "blue-green" else "start --tag <earlier tag>"
        raise Refused(f"stack {settings.stack}: no release in flight to abort (to change versions anyway: `{what}`)")
    if rollout.strategy == "blue-green":
        if switched(settings):
            back = idle_colour(rollout.blue_green.active)
            return Action("abort", {"rollout.blueGreen.active": back, "rollout.inFlight": UNSET}, f"production back to {back} ({in_flight.previous})")
        return Action("abort", {"rollout.inFlight": UNSET}, f"{in_flight.tag} never served production; the idle colour shrinks back")
    if in_flight.previous is None:
        raise Refused(f"stack {settings.stack}: the release record names no previous version to go back to")
    return Action("abort", {"chatApi.tag": in_flight.previous, "rollout.inFlight": UNSET}, f"rolling back to {in_flight.previous}")


def complete(settings: Settings) -> Action:
    """Blue/green and rolling: the bake passed, the release is over (its record goes; blue/green:
    the colour left idle shrinks to `idleReplicas`)."""
    tag = settings.rollout.in_flight.tag if settings.rollout.in_flight else "?"
    return Action("complete", {"rollout.inFlight": UNSET}, f"{tag} released")

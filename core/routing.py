"""A service's HTTP routes, in order, as data every in-cluster router renders (pure): the Istio
router as VirtualService routes, the Gateway API router as HTTPRoute rules.

Order is the rule, first match wins:

1. testers: requests with the tester header go to the canary;
2. pinned conversations (stickiness): a request carrying the release's pin cookie
   goes to the track named in it (canary pins first, then stable pins, with the
   mirror applied to stable-pinned requests on the mirrored paths);
3. shadow: unpinned requests on the mirrored paths, split like the rest, with a
   copy of `mirror.percent` of them sent to the canary (its answers discarded);
4. the weighted split; with stickiness each destination sets the pin cookie.

Pins are cookies named `carepath-track` whose value names the track and the
canary's version (`canary-v2.0.0`): a pin holds for one release only. With no
canary in flight there are no pin routes and no cookies, so pins are dropped
after promotion (both tracks would run the same version) and after abort (every
conversation returns to stable).

A router whose matching is not first-match-wins (the Gateway API ranks matches by
how specific they are) renders the same order through `Route.matches`: see its file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from core.release import ReleasePlan
from core.settings import HeaderSettings, MirrorSettings

PIN_COOKIE = "carepath-track"
PIN_MAX_AGE_SECONDS = 24 * 3600  # longer than any conversation; a release that ends drops the pins anyway


@dataclass(frozen=True)
class Match:
    """All of its parts must hold (absent parts hold for every request)."""

    header: Optional[tuple[str, str]] = None  # name, exact value
    pin: Optional[str] = None  # the pin cookie's value
    path: Optional[str] = None  # `/v1/models` (exact) or `/v1/conversations/*` (prefix)


@dataclass(frozen=True)
class Destination:
    track: str
    weight: int
    pin: Optional[str] = None  # set the pin cookie to this value on the answer


@dataclass(frozen=True)
class Route:
    name: str
    matches: tuple[Match, ...]  # any of them; none: every request
    destinations: tuple[Destination, ...]
    mirror: Optional[tuple[str, int]] = None  # track, percent of the requests copied to it


def pin_value(track: str, release: str) -> str:
    return f"{track}-{release}"


def pin_regex(pin: str) -> str:
    """A Cookie header that carries exactly this pin."""
    return f"^(.*; ?)?{PIN_COOKIE}={re.escape(pin)}(;.*)?$"


def set_pin_cookie(pin: str) -> str:
    return f"{PIN_COOKIE}={pin}; Path=/; Max-Age={PIN_MAX_AGE_SECONDS}; HttpOnly; SameSite=Lax"


def path_prefix(path: str) -> Optional[str]:
    """The prefix a `/x/*` path stands for (None: an exact path)."""
    return path[:-1] if path.endswith("/*") else None


def canary_routes(plan: ReleasePlan, header: HeaderSettings, stickiness: bool, mirror: Optional[MirrorSettings]) -> tuple[Route, ...]:
    """The routes of `plan` (a canary release, or stable only), in order."""
    canary = plan.header_track
    if canary is None:
        return (Route("split", (), tuple(Destination(track, weight) for track, weight in plan.weights)),)

    release = plan.track(canary).tag
    shadow = mirror if mirror is not None and mirror.percent > 0 else None
    mirrored = (canary, shadow.percent) if shadow else None
    paths = shadow.paths if shadow else ()
    split = tuple(Destination(track, weight, pin_value(track, release) if stickiness else None) for track, weight in plan.weights)

    routes = [Route("testers", (Match(header=(header.name, header.value)),), (Destination(canary, 100),))]
    if stickiness:
        routes.append(Route("pinned-canary", (Match(pin=pin_value(canary, release)),), (Destination(canary, 100),)))
        stable_pin = pin_value("stable", release)
        if shadow:
            routes.append(Route("pinned-stable-shadowed", tuple(Match(pin=stable_pin, path=path) for path in paths), (Destination("stable", 100),), mirrored))
        routes.append(Route("pinned-stable", (Match(pin=stable_pin),), (Destination("stable", 100),)))
    if shadow:
        routes.append(Route("shadowed", tuple(Match(path=path) for path in paths), split, mirrored))
    routes.append(Route("split", (), split))
    return tuple(routes)

"""A service's HTTP routes, in order, as data every in-cluster router renders (pure): the Istio
router as VirtualService routes, the Gateway API router as HTTPRoute rules.

Order is the rule, first match wins:

1. testers: requests with the tester header go to the canary;
2. pinned conversations (stickiness): a request carrying the release's pin cookie
   goes to the track named in it (canary pins first, then stable pins, with the
   mirror applied to stable-pinned reads on the mirrored paths);
3. shadow: unpinned reads on the mirrored paths, split like the rest, with a
   copy of `mirror.percent` of them sent to the canary (its answers discarded);
4. the weighted split; with stickiness each destination sets the pin cookie.

Only reads (GET, HEAD) are ever copied: the mirror routes match the method as well
as the path, so a write on a mirrored path (a POST on `/v1/conversations/*`) takes
the next route that holds (its pin, or the split) and reaches one track, once.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

from core.release import ReleasePlan
from core.settings import HeaderSettings, MirrorSettings

PIN_COOKIE = "carepath-track"
PIN_MAX_AGE_SECONDS = 24 * 3600  # longer than any conversation; a release that ends drops the pins anyway
READS = ("GET", "HEAD")  # the only methods shadow traffic copies: a copied write would be acted on twice


@dataclass(frozen=True)
class Match:
    """All of its parts must hold (absent parts hold for every request)."""

    header: Optional[tuple[str, str]] = None  # name, exact value
    pin: Optional[str] = None  # the pin cookie's value
    path: Optional[str] = None  # `/v1/models` (exact) or `/v1/conversations/*` (it and every path under it)
    method: Optional[str] = None  # `GET` (exact)

    def holds(self, method: str, path: str, headers: Mapping[str, str]) -> bool:
        """Whether a request meets it (`headers` by lowercase name)."""
        prefix = path_prefix(self.path) if self.path is not None else None
        return (
            (self.method is None or method == self.method)
            and (self.path is None or ((path == prefix[:-1] or path.startswith(prefix)) if prefix else path == self.path))
            and (self.header is None or headers.get(self.header[0].lower()) == self.header[1])
            and (self.pin is None or re.search(pin_regex(self.pin), headers.get("cookie", "")) is not None)
        )


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


def route_for(routes: Sequence[Route], method: str, path: str, headers: Mapping[str, str]) -> Route:
    """The route a request takes: the first that holds (the order's meaning, which each router's
    rendering is tested against)."""
    return next(route for route in routes if not route.matches or any(m.holds(method, path, headers) for m in route.matches))


def pin_value(track: str, release: str) -> str:
    return f"{track}-{release}"


def pin_regex(pin: str) -> str:
    """A Cookie header that carries exactly this pin."""
    return f"^(.*; ?)?{PIN_COOKIE}={re.escape(pin)}(;.*)?$"


def set_pin_cookie(pin: str) -> str:
    return f"{PIN_COOKIE}={pin}; Path=/; Max-Age={PIN_MAX_AGE_SECONDS}; HttpOnly; SameSite=Lax"


def path_prefix(path: str) -> Optional[str]:
    """The prefix `/x/` of a `/x/*` path (None: an exact path). Like the Gateway API's path
    prefixes, which match whole segments, `/x/*` covers `/x` itself too."""
    return path[:-1] if path.endswith("/*") else None


def canary_routes(plan: ReleasePlan, header: HeaderSettings, stickiness: bool, mirror: Optional[MirrorSettings]) -> tuple[Route, ...]:
    """The routes of `plan` (a canary release, or stable only), in order."""
    canary = plan.header_track
    if canary is None:
        return (Route("split", (), tuple(Destination(track, weight) for track, weight in plan.weights)),)

    release = plan.track(canary).tag
    shadow = mirror if mirror is not None and mirror.percent > 0 else None
    mirrored = (canary, shadow.percent) if shadow else None
    reads = [(path, method) for path in (shadow.paths if shadow else ()) for method in READS]
    split = tuple(Destination(track, weight, pin_value(track, release) if stickiness else None) for track, weight in plan.weights)

    routes = [Route("testers", (Match(header=(header.name, header.value)),), (Destination(canary, 100),))]
    if stickiness:
        routes.append(Route("pinned-canary", (Match(pin=pin_value(canary, release)),), (Destination(canary, 100),)))
        stable_pin = pin_value("stable", release)
        if shadow:
            routes.append(Route("pinned-stable-shadowed", tuple(Match(pin=stable_pin, path=path, method=method) for path, method in reads), (Destination("stable", 100),), mirrored))
        routes.append(Route("pinned-stable", (Match(pin=stable_pin),), (Destination("stable", 100),)))
    if shadow:
        routes.append(Route("shadowed", tuple(Match(path=path, method=method) for path, method in reads), split, mirrored))
    routes.append(Route("split", (), split))
    return tuple(routes)

"""The canary's HTTP routes, in order, as the VirtualService carries them (pure).

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
"""

from __future__ import annotations

import re
from typing import Any, Optional

from core.release import SERVICE_PORT, ReleasePlan
from core.settings import HeaderSettings, MirrorSettings

PIN_COOKIE = "carepath-track"
PIN_MAX_AGE_SECONDS = 24 * 3600  # longer than any conversation; a release that ends drops the pins anyway


def pin_value(track: str, release: str) -> str:
    return f"{track}-{release}"


def _cookie_match(track: str, release: str) -> dict[str, Any]:
    value = re.escape(pin_value(track, release))
    return {"cookie": {"regex": f"^(.*; ?)?{PIN_COOKIE}={value}(;.*)?$"}}


def _uri(path: str) -> dict[str, str]:
    return {"prefix": path[:-1]} if path.endswith("/*") else {"exact": path}


def canary_routes(
    plan: ReleasePlan,
    host: str,
    header: HeaderSettings,
    stickiness: bool,
    mirror: Optional[MirrorSettings],
) -> list[dict[str, Any]]:
    """The `http` routes of the VirtualService for `plan` (a canary release, or stable only)."""

    def destination(subset: str, weight: int, pin: Optional[str] = None) -> dict[str, Any]:
        route: dict[str, Any] = {"destination": {"host": host, "subset": subset, "port": {"number": SERVICE_PORT}}, "weight": weight}
        if pin is not None:
            cookie = f"{PIN_COOKIE}={pin}; Path=/; Max-Age={PIN_MAX_AGE_SECONDS}; HttpOnly; SameSite=Lax"
            route["headers"] = {"response": {"add": {"set-cookie": cookie}}}
        return route

    canary = plan.header_track
    if canary is None:
        return [{"name": "split", "route": [destination(track, weight) for track, weight in plan.weights]}]

    release = plan.track(canary).tag
    shadow = mirror if mirror is not None and mirror.percent > 0 else None
    mirrored = {"mirror": {"host": host, "subset": canary, "port": {"number": SERVICE_PORT}}, "mirrorPercentage": {"value": float(shadow.percent)}} if shadow else {}
    paths = [_uri(path) for path in shadow.paths] if shadow else []
    split = [destination(track, weight, pin_value(track, release) if stickiness else None) for track, weight in plan.weights]

    routes: list[dict[str, Any]] = [
        {"name": "testers", "match": [{"headers": {header.name: {"exact": header.value}}}], "route": [destination(canary, 100)]}
    ]
    if stickiness:
        routes.append({"name": "pinned-canary", "match": [{"headers": _cookie_match(canary, release)}], "route": [destination(canary, 100)]})
        stable_pin = {"headers": _cookie_match("stable", release)}
        if shadow:
            routes.append(
                {
                    "name": "pinned-stable-shadowed",
                    "match": [{**stable_pin, "uri": uri} for uri in paths],
                    "route": [destination("stable", 100)],
                    **mirrored,
                }
            )
        routes.append({"name": "pinned-stable", "match": [stable_pin], "route": [destination("stable", 100)]})
    if shadow:
        routes.append({"name": "shadowed", "match": [{"uri": uri} for uri in paths], "route": split, **mirrored})
    routes.append({"name": "split", "route": split})
    return routes

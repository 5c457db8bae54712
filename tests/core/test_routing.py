"""The canary's routes: order, pins, shadow copies; property tests over release sequences."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.release import ReleasePlan, TrackSpec
from core.routing import PIN_COOKIE, canary_routes
from core.settings import HeaderSettings, MirrorSettings

HOST = "chat-api-mesh.carepath-staging.svc.cluster.local"
HEADER = HeaderSettings()
MIRROR = MirrorSettings(percent=20, paths=("/v1/models", "/v1/conversations/*"))


def in_flight(weight: int, tag: str = "v2.0.0") -> ReleasePlan:
    return ReleasePlan(
        "canary",
        (TrackSpec("stable", "v1.4.0", 4, "carepath-staging"), TrackSpec("canary", tag, 1, "carepath-staging")),
        (("stable", 100 - weight), ("canary", weight)),
        header_track="canary",
    )


STABLE_ONLY = ReleasePlan("canary", (TrackSpec("stable", "v2.0.0", 4, "carepath-staging"),), (("stable", 100),))


def names(routes):
    return [r["name"] for r in routes]


@pytest.mark.parametrize(
    "stickiness, mirror, expected",
    [
        (True, MIRROR, ["testers", "pinned-canary", "pinned-stable-shadowed", "pinned-stable", "shadowed", "split"]),
        (True, None, ["testers", "pinned-canary", "pinned-stable", "split"]),
        (False, MIRROR, ["testers", "shadowed", "split"]),
        (False, None, ["testers", "split"]),
    ],
)
def test_testers_win_then_pinned_conversations_then_the_split(stickiness, mirror, expected):
    routes = canary_routes(in_flight(10), HOST, HEADER, stickiness, mirror)
    assert names(routes) == expected
    assert routes[0]["match"] == [{"headers": {"x-version": {"exact": "canary"}}}]
    assert "match" not in routes[-1], "the split is the catch-all, last"


def test_the_split_pins_each_new_conversation_to_its_track_for_this_release():
    split = canary_routes(in_flight(10), HOST, HEADER, True, None)[-1]["route"]
    cookies = {r["destination"]["subset"]: r["headers"]["response"]["add"]["set-cookie"] for r in split}
    assert cookies["canary"].startswith(f"{PIN_COOKIE}=canary-v2.0.0;")
    assert cookies["stable"].startswith(f"{PIN_COOKIE}=stable-v2.0.0;")
    assert "HttpOnly" in cookies["canary"]


@pytest.mark.parametrize(
    "cookie, matches",
    [
        ("carepath-track=canary-v2.0.0", True),
        ("session=abc; carepath-track=canary-v2.0.0", True),
        ("carepath-track=canary-v2.0.0; session=abc", True),
        ("carepath-track=canary-v2.0.1", False),  # another release's pin
        ("carepath-track=canary-v2x0x0", False),  # dots are literal
        ("xcarepath-track=canary-v2.0.0", False),
    ],
)
def test_the_pin_route_matches_exactly_this_releases_cookie(cookie, matches):
    pinned = next(r for r in canary_routes(in_flight(10), HOST, HEADER, True, None) if r["name"] == "pinned-canary")
    pattern = pinned["match"][0]["headers"]["cookie"]["regex"]
    assert bool(re.fullmatch(pattern, cookie)) is matches


def test_shadow_copies_read_only_paths_to_the_canary():
    routes = {r["name"]: r for r in canary_routes(in_flight(0), HOST, HEADER, True, MIRROR)}
    for name in ("shadowed", "pinned-stable-shadowed"):
        route = routes[name]
        assert route["mirror"]["subset"] == "canary"
        assert route["mirrorPercentage"] == {"value": 20.0}
        assert [m["uri"] for m in route["match"]] == [{"exact": "/v1/models"}, {"prefix": "/v1/conversations/"}]
    assert "mirror" not in routes["split"] and "mirror" not in routes["pinned-stable"]
    # the shadow phase: weight 0, so patients still all reach stable
    assert [(r["destination"]["subset"], r["weight"]) for r in routes["shadowed"]["route"]] == [("stable", 100), ("canary", 0)]


def test_with_no_canary_in_flight_there_are_no_pins_no_cookies_and_no_shadow():
    routes = canary_routes(STABLE_ONLY, HOST, HEADER, True, MIRROR)
    assert routes == [{"name": "split", "route": [{"destination": {"host": HOST, "subset": "stable", "port": {"number": 80}}, "weight": 100}]}]


def _pinned(routes):
    return {r["name"]: r for r in routes if r["name"].startswith("pinned")}


@given(st.lists(st.integers(0, 100), min_size=1, max_size=8), st.booleans())
def test_a_pinned_conversation_keeps_its_route_until_the_release_ends(weights, mirror):
    steps = [canary_routes(in_flight(w), HOST, HEADER, True, MIRROR if mirror else None) for w in weights]
    first = _pinned(steps[0])
    assert set(first) >= {"pinned-canary", "pinned-stable"}
    for routes in steps[1:]:
        assert _pinned(routes) == first


@given(st.lists(st.integers(0, 100), min_size=1, max_size=8), st.booleans(), st.booleans())
def test_after_abort_no_route_leads_to_the_canary(weights, stickiness, mirror):
    for weight in weights:
        canary_routes(in_flight(weight), HOST, HEADER, stickiness, MIRROR if mirror else None)
    aborted = canary_routes(STABLE_ONLY, HOST, HEADER, stickiness, MIRROR if mirror else None)
    destinations = [d["destination"]["subset"] for r in aborted for d in r["route"]]
    assert destinations == ["stable"] and not any("mirror" in r for r in aborted)


@given(st.integers(0, 100), st.booleans(), st.booleans())
def test_every_route_sums_to_100_and_names_an_existing_subset(weight, stickiness, mirror):
    for route in canary_routes(in_flight(weight), HOST, HEADER, stickiness, MIRROR if mirror else None):
        assert sum(d["weight"] for d in route["route"]) == 100
        assert {d["destination"]["subset"] for d in route["route"]} <= {"stable", "canary"}

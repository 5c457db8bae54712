"""A service's routes, router-neutral: order, pins, shadow copies; property tests over release
sequences. (How a router renders them, a VirtualService or an HTTPRoute, is its own test's.)"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.release import ReleasePlan, TrackSpec
from core.routing import PIN_COOKIE, PIN_MAX_AGE_SECONDS, READS, Destination, Match, Route, canary_routes, path_prefix, pin_regex, route_for, set_pin_cookie
from core.settings import HeaderSettings, MirrorSettings

HEADER = HeaderSettings()
MIRROR = MirrorSettings(percent=20, paths=("/v1/models", "/v1/conversations/*"))
NAMESPACE = "carepath-staging"


def in_flight(weight: int, tag: str = "v2.0.0", service: str = "chat-api") -> ReleasePlan:
    return ReleasePlan(
        service,
        "canary",
        (TrackSpec(service, "stable", "v1.4.0", 4, NAMESPACE), TrackSpec(service, "canary", tag, 1, NAMESPACE)),
        (("stable", 100 - weight), ("canary", weight)),
        header_track="canary",
    )


STABLE_ONLY = ReleasePlan("chat-api", "canary", (TrackSpec("chat-api", "stable", "v2.0.0", 4, NAMESPACE),), (("stable", 100),))


def by_name(routes: tuple[Route, ...]) -> dict[str, Route]:
    return {route.name: route for route in routes}


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
    routes = canary_routes(in_flight(10), HEADER, stickiness, mirror)
    assert [route.name for route in routes] == expected
    assert routes[0].matches == (Match(header=("x-version", "canary")),)
    assert routes[0].destinations == (Destination("canary", 100),)
    assert routes[-1].matches == (), "the split is the catch-all, last"


def test_the_tester_header_is_the_services_own():
    testers = canary_routes(in_flight(10), HeaderSettings(name="x-tester", value="triage-v2"), False, None)[0]
    assert testers.matches == (Match(header=("x-tester", "triage-v2")),)


def test_the_split_pins_each_new_conversation_to_its_track_for_this_release():
    split = by_name(canary_routes(in_flight(10), HEADER, True, None))["split"]
    assert split.destinations == (Destination("stable", 90, "stable-v2.0.0"), Destination("canary", 10, "canary-v2.0.0"))
    assert by_name(canary_routes(in_flight(10), HEADER, False, None))["split"].destinations == (Destination("stable", 90), Destination("canary", 10))


def test_the_pin_cookie_lasts_longer_than_a_conversation_and_stays_out_of_scripts():
    cookie = set_pin_cookie("canary-v2.0.0")
    assert cookie.startswith(f"{PIN_COOKIE}=canary-v2.0.0;")
    assert f"Max-Age={PIN_MAX_AGE_SECONDS}" in cookie and "Path=/" in cookie and "HttpOnly" in cookie


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
    pinned = by_name(canary_routes(in_flight(10), HEADER, True, None))["pinned-canary"]
    assert pinned.matches == (Match(pin="canary-v2.0.0"),) and pinned.destinations == (Destination("canary", 100),)
    pin = pinned.matches[0].pin
    assert pin is not None and bool(re.fullmatch(pin_regex(pin), cookie)) is matches


def test_shadow_copies_reads_on_the_listed_paths_to_the_canary():
    routes = by_name(canary_routes(in_flight(0), HEADER, True, MIRROR))
    reads = [("/v1/models", "GET"), ("/v1/models", "HEAD"), ("/v1/conversations/*", "GET"), ("/v1/conversations/*", "HEAD")]
    assert routes["shadowed"].matches == tuple(Match(path=path, method=method) for path, method in reads)
    assert routes["pinned-stable-shadowed"].matches == tuple(Match(pin="stable-v2.0.0", path=path, method=method) for path, method in reads)
    for name in ("shadowed", "pinned-stable-shadowed"):
        assert routes[name].mirror == ("canary", 20)
    assert routes["split"].mirror is None and routes["pinned-stable"].mirror is None
    # the shadow phase: weight 0, so patients still all reach stable
    assert [(d.track, d.weight) for d in routes["shadowed"].destinations] == [("stable", 100), ("canary", 0)]


def test_a_mirror_of_0_percent_copies_nothing():
    assert [route.name for route in canary_routes(in_flight(10), HEADER, False, MirrorSettings(percent=0, paths=("/v1/models",)))] == ["testers", "split"]


METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")
PATHS = ("/", "/v1/models", "/v1/models/x", "/v1/conversations", "/v1/conversations/42", "/v1/conversations-archive", "/v1/other")
TESTER = st.sampled_from([{}, {"x-version": "canary"}, {"x-version": "stable"}])
COOKIE = st.sampled_from([{}, *({"cookie": f"session=1; {PIN_COOKIE}={pin}"} for pin in ("canary-v2.0.0", "stable-v2.0.0", "canary-v1.0.0"))])


@given(st.integers(0, 100), st.booleans(), st.sampled_from(METHODS), st.sampled_from(PATHS), TESTER, COOKIE)
def test_a_mirror_copies_reads_on_its_paths_and_never_moves_a_request(weight, stickiness, method, path, tester, cookie):
    """Every request reaches the track it would without the mirror; only a read on a listed path,
    bound for stable or the split, is also copied to the canary."""
    headers = {**tester, **cookie}
    shadowed = route_for(canary_routes(in_flight(weight), HEADER, stickiness, MIRROR), method, path, headers)
    plain = route_for(canary_routes(in_flight(weight), HEADER, stickiness, None), method, path, headers)
    assert shadowed.destinations == plain.destinations
    listed = path in ("/v1/models", "/v1/conversations") or path.startswith("/v1/conversations/")
    copied = method in READS and listed and plain.name in ("pinned-stable", "split")
    assert shadowed.mirror == (("canary", 20) if copied else None), (shadowed.name, plain.name)


def test_a_write_on_a_mirrored_path_keeps_its_pin_and_is_not_copied():
    routes = canary_routes(in_flight(10), HEADER, True, MIRROR)
    pinned = {"cookie": f"{PIN_COOKIE}=stable-v2.0.0"}
    assert route_for(routes, "GET", "/v1/conversations/42", pinned).name == "pinned-stable-shadowed"
    assert route_for(routes, "POST", "/v1/conversations/42", pinned).name == "pinned-stable"
    assert route_for(routes, "POST", "/v1/conversations/42", {}).name == "split"
    assert route_for(routes, "HEAD", "/v1/models", {}).name == "shadowed"


@pytest.mark.parametrize("path, prefix", [("/v1/conversations/*", "/v1/conversations/"), ("/v1/models", None)])
def test_a_mirrored_path_is_a_prefix_exactly_when_it_ends_in_a_wildcard(path, prefix):
    assert path_prefix(path) == prefix


@pytest.mark.parametrize(
    "path, holds",
    [("/v1/conversations", True), ("/v1/conversations/", True), ("/v1/conversations/42/turns", True), ("/v1/conversations-archive", False), ("/v1", False)],
)
def test_a_wildcard_path_covers_itself_and_every_path_under_it_by_whole_segments(path, holds):
    assert Match(path="/v1/conversations/*").holds("GET", path, {}) is holds
    assert Match(path="/v1/conversations").holds("GET", path, {}) is (path == "/v1/conversations")


def test_with_no_canary_in_flight_there_are_no_pins_no_cookies_and_no_shadow():
    assert canary_routes(STABLE_ONLY, HEADER, True, MIRROR) == (Route("split", (), (Destination("stable", 100),)),)


@given(st.integers(0, 100), st.booleans(), st.booleans())
def test_routes_name_tracks_not_services(weight, stickiness, mirror):
    """The routes are the same for every service: a router adds the service's own hosts."""
    chosen = MIRROR if mirror else None
    assert canary_routes(in_flight(weight, service="triage-api"), HEADER, stickiness, chosen) == canary_routes(in_flight(weight), HEADER, stickiness, chosen)


def _pinned(routes: tuple[Route, ...]) -> dict[str, Route]:
    return {route.name: route for route in routes if route.name.startswith("pinned")}


@given(st.lists(st.integers(0, 100), min_size=1, max_size=8), st.booleans())
def test_a_pinned_conversation_keeps_its_route_until_the_release_ends(weights, mirror):
    steps = [canary_routes(in_flight(w), HEADER, True, MIRROR if mirror else None) for w in weights]
    first = _pinned(steps[0])
    assert set(first) >= {"pinned-canary", "pinned-stable"}
    for routes in steps[1:]:
        assert _pinned(routes) == first


@given(st.lists(st.integers(0, 100), min_size=1, max_size=8), st.booleans(), st.booleans())
def test_after_abort_no_route_leads_to_the_canary(weights, stickiness, mirror):
    for weight in weights:
        canary_routes(in_flight(weight), HEADER, stickiness, MIRROR if mirror else None)
    aborted = canary_routes(STABLE_ONLY, HEADER, stickiness, MIRROR if mirror else None)
    assert [d.track for route in aborted for d in route.destinations] == ["stable"]
    assert all(route.mirror is None for route in aborted)


@given(st.integers(0, 100), st.booleans(), st.booleans())
def test_every_route_sums_to_100_and_names_an_existing_track(weight, stickiness, mirror):
    plan = in_flight(weight)
    tracks = {t.track for t in plan.tracks}
    for route in canary_routes(plan, HEADER, stickiness, MIRROR if mirror else None):
        assert sum(d.weight for d in route.destinations) == 100
        assert {d.track for d in route.destinations} <= tracks
        assert route.mirror is None or route.mirror[0] in tracks

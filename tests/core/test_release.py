"""The release plan's rules hold for every valid config of every service, and one service's plan
never depends on another's (property tests, no mocks)."""

from __future__ import annotations

import itertools
import json
from typing import Any, Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.release import (
    TRACKS,
    ReleasePlan,
    ReleaseState,
    canary_move,
    canary_replicas,
    deployment_name,
    deployments,
    next_weight,
    plan_release,
    release_state,
    release_states,
)
from core.settings import STRATEGIES, Settings, UnknownService
from tests.conftest import one_service, settings_from

tags = st.from_regex(r"v[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}", fullmatch=True)
service_names = st.from_regex(r"[a-z]([a-z0-9-]{0,38}[a-z0-9])?", fullmatch=True)
EDGE = {"testCidrs": ["203.0.113.0/24"]}


@st.composite
def service_entries(draw) -> dict[str, Any]:
    """A valid `services.<name>` entry: any strategy, with a release in flight or not."""
    strategy = draw(st.sampled_from(STRATEGIES))
    stable_tag = draw(tags)
    replicas = draw(st.integers(1, 50))
    rollout: dict[str, Any] = {"strategy": strategy}
    candidates = [stable_tag]
    if strategy == "canary":
        candidates = []
        if draw(st.booleans()):
            rollout["canary"] = {"tag": draw(tags.filter(lambda t: t != stable_tag)), "weight": draw(st.integers(0, 100))}
            candidates = [rollout["canary"]["tag"]]
    if strategy == "blue-green":
        blue_green: dict[str, Any] = {"active": draw(st.sampled_from(["blue", "green"])), "blue": {"tag": draw(tags)}, "green": {"tag": draw(tags)}}
        if draw(st.booleans()):
            blue_green["idleReplicas"] = draw(st.integers(0, replicas))
        elif draw(st.booleans()):
            blue_green["greenWeight"] = draw(st.integers(0, 100))
        if draw(st.booleans()):
            blue_green["isolation"] = "namespace"
        rollout["blueGreen"] = blue_green
        candidates = [blue_green["blue"]["tag"], blue_green["green"]["tag"]]
    if candidates and draw(st.booleans()):
        rollout["inFlight"] = {"id": draw(st.from_regex(r"[0-9a-f]{6,32}", fullmatch=True)), "tag": draw(st.sampled_from(candidates)), "started": "2026-11-28T10:02:11Z"}
        if draw(st.booleans()):
            rollout["inFlight"]["previous"] = draw(tags)
    return {"tag": stable_tag, "replicas": replicas, "rollout": rollout}


def stack(entries: Mapping[str, Mapping[str, Any]]) -> Settings:
    """A stack of these services, each on a host of its own."""
    return settings_from({"services": {name: {**entry, "hosts": [f"{name}.example.org"]} for name, entry in entries.items()}, "edge": EDGE}, "test")


@st.composite
def services(draw) -> tuple[Settings, str]:
    """A stack with one service of any name and config, and that name."""
    name = draw(service_names)
    return stack({name: draw(service_entries())}), name


def apart(first: str, second: str) -> bool:
    """Two names that can share a stack (neither names the other's objects)."""
    return first != second and not first.startswith(f"{second}-") and not second.startswith(f"{first}-")


# --- names -----------------------------------------------------------------------------------


def test_chat_api_keeps_the_contracts_deployment_names():
    assert deployments("chat-api") == {"stable": "chat-api", "canary": "chat-api-canary", "blue": "chat-api-blue", "green": "chat-api-green"}
    assert deployments("triage-api") == {"stable": "triage-api", "canary": "triage-api-canary", "blue": "triage-api-blue", "green": "triage-api-green"}


@given(services())
def test_names_and_selectors_are_the_services(drawn):
    settings, name = drawn
    for track in plan_release(settings, name).tracks:
        assert track.service == name
        assert track.deployment == deployment_name(name, track.track) == deployments(name)[track.track]
        assert track.deployment == (name if track.track == "stable" else f"{name}-{track.track}")
        assert track.selector == {"app.kubernetes.io/name": name, "track": track.track}


def test_planning_a_service_the_stack_lacks_is_an_error():
    settings = settings_from(one_service({"tag": "v1.4.0", "rollout": {"strategy": "rolling"}}))
    with pytest.raises(UnknownService, match="has no service 'triage-api' \\(its services: chat-api\\)"):
        plan_release(settings, "triage-api")


# --- the plan's rules, per service -----------------------------------------------------------


@given(services())
def test_weights_sum_to_100_and_only_reach_existing_tracks_with_pods(drawn):
    settings, name = drawn
    plan = plan_release(settings, name)
    names = [t.track for t in plan.tracks]
    assert plan.service == name and set(names) <= set(TRACKS)
    assert sum(weight for _, weight in plan.weights) == 100
    assert all(0 <= weight <= 100 for _, weight in plan.weights)
    assert len(names) == len(set(names))
    routed = {t for t, weight in plan.weights if weight > 0} | {t for t in (plan.header_track, plan.test_track) if t}
    assert routed <= set(names)
    assert all(plan.track(track).replicas >= 1 for track in routed)


@given(services())
def test_the_serving_track_always_exists_at_full_size(drawn):
    settings, name = drawn
    config = settings.service(name)
    plan = plan_release(settings, name)
    serving = plan.serving
    assert serving.replicas == config.replicas
    if config.rollout.strategy == "blue-green":
        blue_green = config.rollout.blue_green
        assert serving.track == blue_green.active
        idle = plan.tracks[1]
        assert {serving.track, idle.track} == {"blue", "green"}
        # full size unless scaled down, and full size again while a release is in flight
        scaled_down = blue_green.idle_replicas is not None and config.rollout.in_flight is None
        assert idle.replicas == (blue_green.idle_replicas if scaled_down else config.replicas)
        assert plan.test_track == (idle.track if idle.replicas > 0 else None)
        if blue_green.green_weight is None:
            assert dict(plan.weights) == {blue_green.active: 100}
        else:
            assert dict(plan.weights) == {"blue": 100 - blue_green.green_weight, "green": blue_green.green_weight}
        isolated = blue_green.isolation == "namespace"
        assert {t.namespace for t in plan.tracks} == ({f"carepath-test-{t.track}" for t in plan.tracks} if isolated else {"carepath-test"})
    else:
        assert (serving.track, serving.deployment, serving.tag) == ("stable", name, config.tag)


@given(services())
def test_a_canary_exists_exactly_when_one_is_in_flight(drawn):
    settings, name = drawn
    rollout = settings.service(name).rollout
    plan = plan_release(settings, name)
    in_flight = rollout.strategy == "canary" and rollout.canary.tag is not None
    assert ("canary" in {t.track for t in plan.tracks}) == in_flight
    assert (plan.header_track == "canary") == in_flight
    if in_flight:
        assert dict(plan.weights) == {"stable": 100 - rollout.canary.weight, "canary": rollout.canary.weight}
        assert plan.track("canary").tag == rollout.canary.tag


@given(services())
def test_every_track_the_production_entrypoint_routes_to_comes_before_the_route(drawn):
    plan = plan_release(*drawn)
    first = {t.track for t in plan.production_tracks}
    assert {t for t, w in plan.weights if w > 0} <= first
    assert plan.header_track is None or plan.header_track in first
    assert set(plan.production_tracks) | set(plan.other_tracks) == set(plan.tracks)


@given(st.tuples(service_names, service_names).filter(lambda pair: apart(*pair)), service_entries(), service_entries())
def test_two_services_in_one_stack_plan_apart(names, first, second):
    together = stack(dict(zip(names, (first, second), strict=True)))
    plans = [plan_release(together, name) for name in names]
    assert plans == [plan_release(stack({name: entry}), name) for name, entry in zip(names, (first, second), strict=True)]
    assert release_states(together) == {name: release_state(stack({name: entry}), name) for name, entry in sorted(zip(names, (first, second), strict=True))}
    deployments_of = [{t.deployment for t in plan.tracks} for plan in plans]
    assert not deployments_of[0] & deployments_of[1], "no Deployment is both services'"


@given(st.integers(1, 100), st.integers(0, 100))
def test_canary_replicas_follow_its_share_within_one_and_stable(stable, weight):
    replicas = canary_replicas(stable, weight)
    assert 1 <= replicas <= stable
    assert replicas >= stable * weight / 100


# --- release sequences -------------------------------------------------------------


def _plan(canary_tag, weight, name="chat-api") -> ReleasePlan:
    rollout = {"strategy": "canary", "canary": {"weight": weight, **({"tag": canary_tag} if canary_tag else {})}}
    return plan_release(settings_from(one_service({"tag": "v1.0.0", "replicas": 4, "rollout": rollout}, name), "test"), name)


def _valid(plan: ReleasePlan) -> None:
    names = {t.track for t in plan.tracks}
    assert sum(w for _, w in plan.weights) == 100
    assert {t for t, _ in plan.weights} <= names
    assert plan.header_track is None or plan.header_track in names
    assert plan.serving.track == "stable" and plan.serving.replicas == 4


@given(st.lists(st.integers(1, 100), min_size=1, max_size=6, unique=True).map(sorted), st.booleans(), service_names)
def test_every_step_of_start_steps_promote_and_start_abort_is_a_valid_plan(steps, abort_midway, name):
    steps = [s for s in steps if s < 100] + [100]
    sequence = [_plan(None, 0, name)]  # nothing in flight
    for weight in steps[: len(steps) // 2 if abort_midway else len(steps)]:
        sequence.append(_plan("v2.0.0", weight, name))
    sequence.append(_plan(None, 0, name))  # promote (stable now runs v2) or abort: the canary leaves
    for before, after in itertools.pairwise(sequence):
        _valid(before)
        _valid(after)
        # A track that leaves the plan is not routed by the plan that removes it.
        gone = {t.track for t in before.tracks} - {t.track for t in after.tracks}
        assert not gone & ({t for t, _ in after.weights} | {after.header_track})


LADDER = (1, 5, 10, 25, 50, 75, 100)


@given(st.one_of(st.just(0.0), st.floats(0.01, 5000)), st.sampled_from((0,) + LADDER[:-1]), st.integers(1, 500), st.integers(10, 600))
def test_the_next_weight_is_on_the_ladder_above_the_current_one(rate, current, min_requests, budget):
    weight = next_weight(LADDER, current, rate, 10, min_requests, budget)
    assert weight in LADDER and weight > current
    if rate > 0 and weight != LADDER[-1]:
        assert max(min_requests / (rate * weight / 100), 10) <= budget, "a chosen step fills within the budget"
    skipped = [step for step in LADDER if current < step < weight]
    assert all(rate <= 0 or max(min_requests / (rate * step / 100), 10) > budget for step in skipped), "no step that fills in time is skipped"


def test_exposure_is_counted_in_requests_not_minutes():
    assert next_weight(LADDER, 0, 100, 10, 50, 60) == 1, "busy: the smallest weight"
    assert next_weight(LADDER, 0, 5, 10, 50, 60) == 25, "at night: the first step that fills in a minute"
    assert next_weight(LADDER, 0, 0, 10, 50, 60) == 1, "traffic unknown: one step at a time"
    assert next_weight(LADDER, 0, float("nan"), 10, 50, 60) == 1, "NaN traffic is unknown traffic, not a reason to open at 100 %"
    assert next_weight(LADDER, 100, 100, 10, 50, 60) == 100


@given(st.sampled_from(LADDER), st.booleans(), st.booleans())
def test_the_canary_is_promoted_only_from_the_last_step_and_advances_only_when_filled(weight, accepted, filled):
    move = canary_move(weight, LADDER, accepted, filled)
    if weight == LADDER[-1]:
        assert move == ("promote" if accepted else "stay")
    else:
        assert move == ("advance" if filled else "stay")


# --- the release state the program exports ---------------------------------------------


# The release state of any service's valid config, with a release in flight or not.
states = services().map(lambda drawn: release_state(*drawn))


@given(
    st.lists(st.tuples(service_names, service_entries()), min_size=1, max_size=4, unique_by=lambda pair: pair[0]).filter(
        lambda pairs: all(apart(a, b) for (a, _), (b, _) in itertools.combinations(pairs, 2))
    )
)
def test_release_states_hold_one_state_per_service(pairs):
    settings = stack(dict(pairs))
    states_by_service = release_states(settings)
    assert list(states_by_service) == sorted(name for name, _ in pairs) == list(settings.services)
    assert all(state == release_state(settings, name) for name, state in states_by_service.items())


def _floats(value):
    """The output as the Pulumi mocks return it: every number a float."""
    if isinstance(value, dict):
        return {key: _floats(item) for key, item in value.items()}
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


@given(states)
def test_the_release_state_survives_its_stack_output(state):
    output = state.to_output()
    assert ReleaseState.from_output(output) == state
    assert ReleaseState.from_output(json.loads(json.dumps(output))) == state
    assert ReleaseState.from_output(_floats(output)) == state


def test_mocked_outputs_with_integral_floats_read_as_counts():
    output = {"strategy": "rolling", "tracks": {"stable": {"tag": "v1.4.0", "replicas": 2.0, "weight": 100.0, "namespace": "carepath-demo"}}}
    state = ReleaseState.from_output(output)
    stable = state.track("stable") if state else None
    assert stable is not None and (stable.replicas, stable.weight) == (2, 100) and isinstance(stable.replicas, int)


GARBAGE = {
    "absent": None,
    "a string": "release",
    "a number": 42,
    "a list": [{"strategy": "rolling"}],
    "no tracks": {"strategy": "rolling"},
    "no strategy": {"tracks": {}},
    "tracks as a list": {"strategy": "rolling", "tracks": [{"tag": "v1.4.0"}]},
    "a track as a string": {"strategy": "rolling", "tracks": {"stable": "v1.4.0"}},
    "a track without replicas": {"strategy": "rolling", "tracks": {"stable": {"tag": "v1.4.0", "weight": 100, "namespace": "carepath-demo"}}},
    "replicas as words": {"strategy": "rolling", "tracks": {"stable": {"tag": "v1.4.0", "replicas": "two", "weight": 100, "namespace": "carepath-demo"}}},
    "in flight as a string": {"strategy": "rolling", "tracks": {}, "inFlight": "v2.0.0"},
}


@pytest.mark.parametrize("output", GARBAGE.values(), ids=GARBAGE.keys())
def test_an_output_this_program_did_not_write_reads_as_none(output):
    assert ReleaseState.from_output(output) is None


STABLE = {"tag": "v1.4.0", "replicas": 2, "weight": 100, "namespace": "carepath-demo"}
NEVER_WRITTEN = {
    "a fractional pod count": {"strategy": "rolling", "tracks": {"stable": {**STABLE, "replicas": 2.5}}},
    "a null tag": {"strategy": "rolling", "tracks": {"stable": {**STABLE, "tag": None}}},
}


@pytest.mark.parametrize("output", NEVER_WRITTEN.values(), ids=NEVER_WRITTEN.keys())
def test_from_output_refuses_values_it_would_have_to_invent(output):
    assert ReleaseState.from_output(output) is None, "read as " + repr(ReleaseState.from_output(output))


@given(states)
def test_a_state_has_no_differences_from_itself(state):
    assert state.differences(state) == []


@given(states, states)
def test_two_states_differ_exactly_when_differences_lists_something(first, second):
    assert (first.differences(second) == []) == (first == second)


def _canary(weight, in_flight=True):
    rollout: dict[str, Any] = {"strategy": "canary", "canary": {"tag": "v2.0.0", "weight": weight}}
    if in_flight:
        rollout["inFlight"] = {"id": "a1b2c3d4e5f6", "tag": "v2.0.0", "previous": "v1.4.0"}
    return release_state(settings_from(one_service({"tag": "v1.4.0", "replicas": 4, "rollout": rollout}), "staging"), "chat-api")


def test_differences_list_each_changed_track_and_the_release_record():
    stable = release_state(settings_from(one_service({"tag": "v1.4.0", "replicas": 4, "rollout": {"strategy": "canary"}}), "staging"), "chat-api")
    assert stable.differences(_canary(25)) == [
        "canary: absent -> v2.0.0 x1 25 % in carepath-staging",
        "stable: v1.4.0 x4 100 % in carepath-staging -> v1.4.0 x4 75 % in carepath-staging",
        "testers: none -> canary",
        "in flight: none -> id=a1b2c3d4e5f6 previous=v1.4.0 tag=v2.0.0",
    ]
    assert _canary(25).differences(_canary(50)) == [
        "canary: v2.0.0 x1 25 % in carepath-staging -> v2.0.0 x2 50 % in carepath-staging",
        "stable: v1.4.0 x4 75 % in carepath-staging -> v1.4.0 x4 50 % in carepath-staging",
    ]
    assert _canary(25).differences(_canary(25, in_flight=False)) == ["in flight: id=a1b2c3d4e5f6 previous=v1.4.0 tag=v2.0.0 -> none"]

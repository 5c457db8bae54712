"""The release plan's rules hold for every valid config (property tests, no mocks)."""

import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.release import DEPLOYMENTS, ReleaseState, canary_move, canary_replicas, next_weight, plan_release, release_state
from core.settings import parse

tags = st.from_regex(r"v[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}", fullmatch=True)


@st.composite
def settings(draw):
    strategy = draw(st.sampled_from(["rolling", "canary", "blue-green"]))
    stable_tag = draw(tags)
    rollout = {"strategy": strategy}
    if strategy == "canary" and draw(st.booleans()):
        rollout["canary"] = {"tag": draw(tags.filter(lambda t: t != stable_tag)), "weight": draw(st.integers(0, 100))}
    replicas = draw(st.integers(1, 50))
    edge = {}
    if strategy == "blue-green":
        rollout["blueGreen"] = {
            "active": draw(st.sampled_from(["blue", "green"])),
            "blue": {"tag": draw(tags)},
            "green": {"tag": draw(tags)},
        }
        if draw(st.booleans()):
            rollout["blueGreen"]["idleReplicas"] = draw(st.integers(0, replicas))
        elif draw(st.booleans()):
            rollout["blueGreen"]["greenWeight"] = draw(st.integers(0, 100))
        edge = {"testCidrs": ["203.0.113.0/24"]}
    raw = {"rollout": rollout, "chatApi": {"tag": stable_tag, "replicas": replicas}, "edge": edge}
    return parse(raw, "test")


@given(settings())
def test_weights_sum_to_100_and_only_reach_existing_tracks_with_pods(config):
    plan = plan_release(config)
    names = [t.track for t in plan.tracks]
    assert sum(weight for _, weight in plan.weights) == 100
    assert all(0 <= weight <= 100 for _, weight in plan.weights)
    assert len(names) == len(set(names))
    routed = {t for t, weight in plan.weights if weight > 0} | {t for t in (plan.header_track, plan.test_track) if t}
    assert routed <= set(names)
    assert all(plan.track(track).replicas >= 1 for track in routed)


@given(settings())
def test_the_serving_track_always_exists_at_full_size(config):
    plan = plan_release(config)
    serving = plan.serving
    assert serving.replicas == config.chat_api.replicas
    if config.rollout.strategy == "blue-green":
        blue_green = config.rollout.blue_green
        assert serving.track == blue_green.active
        idle = plan.tracks[1]
        assert {serving.track, idle.track} == {"blue", "green"}
        assert idle.replicas == (config.chat_api.replicas if blue_green.idle_replicas is None else blue_green.idle_replicas)
        assert plan.test_track == (idle.track if idle.replicas > 0 else None)
        if blue_green.green_weight is None:
            assert dict(plan.weights) == {blue_green.active: 100}
        else:
            assert dict(plan.weights) == {"blue": 100 - blue_green.green_weight, "green": blue_green.green_weight}
    else:
        assert (serving.track, serving.deployment, serving.tag) == ("stable", "chat-api", config.chat_api.tag)


@given(settings())
def test_names_and_selectors_follow_the_contract(config):
    for track in plan_release(config).tracks:
        assert track.deployment == DEPLOYMENTS[track.track]
        assert track.selector == {"app.kubernetes.io/name": "chat-api", "track": track.track}


@given(settings())
def test_a_canary_exists_exactly_when_one_is_in_flight(config):
    plan = plan_release(config)
    in_flight = config.rollout.strategy == "canary" and config.rollout.canary.tag is not None
    assert ("canary" in {t.track for t in plan.tracks}) == in_flight
    assert (plan.header_track == "canary") == in_flight
    if in_flight:
        assert dict(plan.weights) == {"stable": 100 - config.rollout.canary.weight, "canary": config.rollout.canary.weight}
        assert plan.track("canary").tag == config.rollout.canary.tag


@given(st.integers(1, 100), st.integers(0, 100))
def test_canary_replicas_follow_its_share_within_one_and_stable(stable, weight):
    replicas = canary_replicas(stable, weight)
    assert 1 <= replicas <= stable
    assert replicas >= stable * weight / 100


# --- release sequences -------------------------------------------------------------


def _plan(canary_tag, weight):
    rollout = {"strategy": "canary", "canary": {"weight": weight, **({"tag": canary_tag} if canary_tag else {})}}
    return plan_release(parse({"rollout": rollout, "chatApi": {"tag": "v1.0.0", "replicas": 4}}, "test"))


def _valid(plan):
    names = {t.track for t in plan.tracks}
    assert sum(w for _, w in plan.weights) == 100
    assert {t for t, _ in plan.weights} <= names
    assert plan.header_track is None or plan.header_track in names
    assert plan.serving.track == "stable" and plan.serving.replicas == 4


@given(st.lists(st.integers(1, 100), min_size=1, max_size=6, unique=True).map(sorted), st.booleans())
def test_every_step_of_start_steps_promote_and_start_abort_is_a_valid_plan(steps, abort_midway):
    steps = [s for s in steps if s < 100] + [100]
    sequence = [_plan(None, 0)]  # nothing in flight
    for weight in steps[: len(steps) // 2 if abort_midway else len(steps)]:
        sequence.append(_plan("v2.0.0", weight))
    sequence.append(_plan(None, 0))  # promote (stable now runs v2) or abort: the canary leaves
    for before, after in itertools.pairwise(sequence):
        _valid(before)
        _valid(after)
        # A track that leaves the plan is not routed by the plan that removes it.
        gone = {t.track for t in before.tracks} - {t.track for t in after.tracks}
        assert not gone & ({t for t, _ in after.weights} | {after.header_track})


@given(settings())
def test_every_track_the_production_entrypoint_routes_to_comes_before_the_route(config):
    plan = plan_release(config)
    first = {t.track for t in plan.production_tracks}
    assert {t for t, w in plan.weights if w > 0} <= first
    assert plan.header_track is None or plan.header_track in first
    assert set(plan.production_tracks) | set(plan.other_tracks) == set(plan.tracks)


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


@st.composite
def states(draw):
    """The release state of any valid config, with a release in flight or not."""
    config = draw(settings()).to_config()
    rollout = config["rollout"]
    candidates = {
        "canary": [rollout["canary"].get("tag")],
        "blue-green": [rollout["blueGreen"]["blue"]["tag"], rollout["blueGreen"]["green"]["tag"]],
        "rolling": [config["chatApi"]["tag"]],
    }[rollout["strategy"]]
    candidates = [tag for tag in candidates if tag]
    if candidates and draw(st.booleans()):
        rollout["inFlight"] = {"id": draw(st.from_regex(r"[0-9a-f]{6,32}", fullmatch=True)), "tag": draw(st.sampled_from(candidates)), "started": "2026-11-28T10:02:11Z"}
        if draw(st.booleans()):
            rollout["inFlight"]["previous"] = draw(tags)
    return release_state(parse(config, "test"))


def _floats(value):
    """The output as the Pulumi mocks return it: every number a float."""
    if isinstance(value, dict):
        return {key: _floats(item) for key, item in value.items()}
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


@given(states())
def test_the_release_state_survives_its_stack_output(state):
    output = state.to_output()
    assert ReleaseState.from_output(output) == state
    assert ReleaseState.from_output(json.loads(json.dumps(output))) == state
    assert ReleaseState.from_output(_floats(output)) == state


def test_mocked_outputs_with_integral_floats_read_as_counts():
    output = {"strategy": "rolling", "tracks": {"stable": {"tag": "v1.4.0", "replicas": 2.0, "weight": 100.0, "namespace": "carepath-demo"}}}
    stable = ReleaseState.from_output(output).track("stable")
    assert (stable.replicas, stable.weight) == (2, 100) and isinstance(stable.replicas, int)


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


@given(states())
def test_a_state_has_no_differences_from_itself(state):
    assert state.differences(state) == []


@given(states(), states())
def test_two_states_differ_exactly_when_differences_lists_something(first, second):
    assert (first.differences(second) == []) == (first == second)


def _canary(weight, in_flight=True):
    rollout = {"strategy": "canary", "canary": {"tag": "v2.0.0", "weight": weight}}
    if in_flight:
        rollout["inFlight"] = {"id": "a1b2c3d4e5f6", "tag": "v2.0.0", "previous": "v1.4.0"}
    return release_state(parse({"rollout": rollout, "chatApi": {"tag": "v1.4.0", "replicas": 4}}, "staging"))


def test_differences_list_each_changed_track_and_the_release_record():
    stable = release_state(parse({"rollout": {"strategy": "canary"}, "chatApi": {"tag": "v1.4.0", "replicas": 4}}, "staging"))
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

"""The release driver's actions as pure rules: each is one config write, or a refusal (no mocks)."""

from __future__ import annotations

from typing import Any, Mapping, Optional

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from core import actions
from core.actions import Refused
from core.paths import UNSET
from core.release import plan_release, release_state
from core.settings import Settings, parse
from offline.harness import apply_overrides, load_stack_config
from release.stackfile import apply_changes

RELEASE_ID = "a1b2c3d4e5f6"
STARTED = "2026-11-28T10:02:11Z"
STACK_OF = {"canary": "staging", "blue-green": "production", "rolling": "demo"}
LADDER = (1, 5, 10, 25, 50, 75, 100)


def stack_config(stack: str, overrides: Optional[Mapping[str, Any]] = None) -> dict:
    """The `carepath:` sections of the repository's stack file, with `--path`-style overrides."""
    config = apply_overrides(load_stack_config(stack), {f"carepath:{k}": v for k, v in (overrides or {}).items()})
    return {key.removeprefix("carepath:"): value for key, value in config.items() if key.startswith("carepath:")}


class Stack:
    """A stack's config as the driver sees it: actions are applied to it and it is parsed again."""

    def __init__(self, name: str, overrides: Optional[Mapping[str, Any]] = None):
        self.name, self.config = name, stack_config(name, overrides)

    @property
    def settings(self) -> Settings:
        return parse(self.config, self.name)

    def apply(self, action: actions.Action) -> Settings:
        self.config = apply_changes(self.config, action.changes)
        return self.settings

    def start(self, tag: str = "v2.0.0", first_weight: int = 1) -> Settings:
        return self.apply(actions.start(self.settings, tag, RELEASE_ID, STARTED, first_weight))


def staging(**overrides: Any) -> Stack:
    return Stack("staging", {key.replace("__", "."): value for key, value in overrides.items()})


def production(**overrides: Any) -> Stack:
    return Stack("production", {key.replace("__", "."): value for key, value in overrides.items()})


def demo() -> Stack:
    return Stack("demo")


# --- no command leaves a config that does not validate --------------------------------

tags = st.sampled_from(["v1.4.0", "v2.0.0", "v2.1.0"]) | st.from_regex(r"v[0-9]\.[0-9]{1,2}\.[0-9]", fullmatch=True)
commands = st.one_of(
    st.tuples(st.just("start"), tags, st.sampled_from((0,) + LADDER)),
    st.tuples(st.just("advance"), st.none() | st.sampled_from((0,) + LADDER)),
    st.tuples(st.just("scale"), st.sampled_from(LADDER)),
    st.tuples(st.sampled_from(["promote", "switch", "abort", "complete"])),
)


def perform(settings: Settings, command: tuple) -> Optional[actions.Action]:
    name, *args = command
    if name == "start":
        tag, first_weight = args
        return actions.start(settings, tag, RELEASE_ID, STARTED, first_weight)
    if name == "advance":
        return actions.advance(settings, args[0])
    if name == "scale":
        return actions.scale_canary(settings, args[0])
    return getattr(actions, name)(settings)


@pytest.mark.parametrize("strategy", STACK_OF)
@hypothesis_settings(max_examples=150, deadline=None)
@given(sequence=st.lists(commands, max_size=12), idle_replicas=st.none() | st.integers(0, 3))
def test_no_command_leaves_a_config_that_does_not_validate(strategy, sequence, idle_replicas):
    stack = Stack(STACK_OF[strategy], {"rollout.blueGreen.idleReplicas": idle_replicas} if strategy == "blue-green" and idle_replicas is not None else None)
    settings = stack.settings
    for command in sequence:
        try:
            action = perform(settings, command)
        except Refused:
            continue
        if action is None:
            continue
        assert all(path == "chatApi.tag" or path.startswith("rollout.") for path in action.changes), action.changes
        replaced = settings.rollout.in_flight.previous if settings.rollout.in_flight else None
        settings = stack.apply(action)  # parse raises SettingsError on a config that does not validate
        state = release_state(settings)
        assert sum(track.weight for _, track in state.tracks) == 100, (command, state)
        assert all(track.replicas >= 1 for _, track in state.tracks if track.weight > 0), (command, state)
        if action.name in ("promote", "abort", "complete"):
            assert settings.rollout.in_flight is None, "the last step of a release removes its record"
        if action.name == "abort" and replaced:
            assert plan_release(settings).serving.tag == replaced, "an abort serves the version the release replaced"


# --- which strategy has which command ----------------------------------------------------


@pytest.mark.parametrize("command", ["advance", "promote"])
@pytest.mark.parametrize("strategy", ["blue-green", "rolling"])
def test_advance_and_promote_are_for_canary_stacks_only(command, strategy):
    stack = Stack(STACK_OF[strategy])
    with pytest.raises(Refused) as refused:
        actions.supported(command, stack.settings)
    message = str(refused.value)
    assert f"releases {strategy}" in message and f"`{command}` is for canary stacks" in message
    assert "(its commands: status, start, run, abort, deploy" in message
    with pytest.raises(Refused, match=f"releases {strategy}"):
        getattr(actions, command)(stack.settings)


@pytest.mark.parametrize("strategy", ["canary", "rolling"])
def test_switch_is_for_blue_green_stacks_only(strategy):
    stack = Stack(STACK_OF[strategy])
    with pytest.raises(Refused) as refused:
        actions.switch(stack.settings)
    message = str(refused.value)
    assert f"releases {strategy}" in message and "`switch` is for blue-green stacks" in message
    assert "switch" not in message.split("its commands:")[1]
    assert ("advance, promote" in message) == (strategy == "canary")


@pytest.mark.parametrize("strategy", STACK_OF)
@pytest.mark.parametrize("command", ["status", "start", "run", "abort", "deploy"])
def test_every_strategy_has_the_common_commands(strategy, command):
    assert actions.supported(command, Stack(STACK_OF[strategy]).settings) is None


# --- start: the first step and the release record, in one write -------------------------

TRACK_KEY = {"canary": "rollout.canary.tag", "blue-green": "rollout.blueGreen.green.tag", "rolling": "chatApi.tag"}


@pytest.mark.parametrize("strategy", STACK_OF)
def test_start_writes_the_release_record_with_the_tracks(strategy):
    action = actions.start(Stack(STACK_OF[strategy]).settings, "v2.0.0", RELEASE_ID, STARTED, 1)
    assert action.changes[TRACK_KEY[strategy]] == "v2.0.0"
    assert action.changes["rollout.inFlight"] == {"id": RELEASE_ID, "tag": "v2.0.0", "previous": "v1.4.0", "started": STARTED}


@pytest.mark.parametrize("strategy", STACK_OF)
def test_the_written_record_parses_back(strategy):
    in_flight = Stack(STACK_OF[strategy]).start().rollout.in_flight
    assert (in_flight.id, in_flight.tag, in_flight.previous, in_flight.started) == (RELEASE_ID, "v2.0.0", "v1.4.0", STARTED)


@pytest.mark.parametrize("strategy", STACK_OF)
def test_a_second_start_refuses_naming_the_release_in_flight(strategy):
    settings = Stack(STACK_OF[strategy]).start("v2.0.0")
    with pytest.raises(Refused, match=f"v2.0.0 is already in flight \\(release {RELEASE_ID}\\): promote or abort it first"):
        actions.start(settings, "v2.1.0", "0fedcba98765", STARTED, 1)
    with pytest.raises(Refused, match="`run` resumes it"):
        actions.start(settings, "v2.0.0", "0fedcba98765", STARTED, 1)


@pytest.mark.parametrize("strategy, reason", [("canary", "already the stable version"), ("blue-green", "already serves on blue"), ("rolling", "already deployed")])
def test_start_of_the_serving_tag_refuses(strategy, reason):
    with pytest.raises(Refused, match=f"v1.4.0 is {reason}" if strategy != "blue-green" else f"v1.4.0 {reason}"):
        actions.start(Stack(STACK_OF[strategy]).settings, "v1.4.0", RELEASE_ID, STARTED, 1)


# --- canary --------------------------------------------------------------------------------


@pytest.mark.parametrize("replicas, first_weight, pinned", [(2, 1, 1), (4, 0, 1), (4, 50, 2), (10, 25, 3), (3, 100, 3)])
def test_canary_start_pins_its_share_of_the_stable_pods(replicas, first_weight, pinned):
    action = actions.start(staging(chatApi__replicas=replicas).settings, "v2.0.0", RELEASE_ID, STARTED, first_weight)
    assert action.changes["rollout.canary.weight"] == first_weight
    assert action.changes["rollout.canary.replicas"] == pinned


def test_scale_canary_is_nothing_while_the_pods_suffice():
    settings = staging(chatApi__replicas=4).start(first_weight=1)
    assert settings.rollout.canary.replicas == 1
    assert actions.scale_canary(settings, 5) is None
    assert actions.scale_canary(settings, 25) is None


def test_scale_canary_raises_the_pods_a_weight_needs():
    settings = staging(chatApi__replicas=4).start(first_weight=1)
    assert actions.scale_canary(settings, 50).changes == {"rollout.canary.replicas": 2}
    assert actions.scale_canary(settings, 100).changes == {"rollout.canary.replicas": 4}


def test_advance_goes_to_the_next_step_of_the_ladder():
    stack = staging()
    stack.start(first_weight=1)
    weights = []
    while stack.settings.rollout.canary.weight < 100:
        weights.append(stack.apply(actions.advance(stack.settings)).rollout.canary.weight)
    assert weights == [5, 10, 25, 50, 75, 100]


def test_advance_from_a_shadow_step_goes_to_the_first_step():
    action = actions.advance(staging().start(first_weight=0))
    assert action.changes == {"rollout.canary.weight": 1}


def test_advance_to_a_later_step_changes_only_the_weight():
    action = actions.advance(staging().start(first_weight=5), 50)
    assert action.changes == {"rollout.canary.weight": 50}


@pytest.mark.parametrize("weight", [1, 5, 7, 0])
def test_advance_refuses_a_weight_that_is_not_a_later_step(weight):
    with pytest.raises(Refused, match=f"{weight} % is not a later step of rollout.canary.steps \\(next: 10, 25, 50, 75, 100\\)"):
        actions.advance(staging().start(first_weight=5), weight)


def test_advance_at_the_last_step_refuses_and_says_promote():
    with pytest.raises(Refused, match="the canary is at the last step \\(100 %\\): promote it or abort"):
        actions.advance(staging().start(first_weight=100))


@pytest.mark.parametrize("command", ["advance", "promote"])
def test_advance_and_promote_refuse_with_no_canary_in_flight(command):
    with pytest.raises(Refused, match=f"no canary in flight to {command}"):
        getattr(actions, command)(staging().settings)


def test_promote_makes_the_canary_stable_and_ends_the_release():
    stack = staging()
    stack.start()
    settings = stack.apply(actions.promote(stack.settings))
    assert settings.chat_api.tag == "v2.0.0"
    assert (settings.rollout.canary.tag, settings.rollout.canary.replicas, settings.rollout.canary.weight) == (None, None, 0)
    assert settings.rollout.in_flight is None
    assert not {"tag", "replicas"} & set(stack.config["rollout"]["canary"]) and "inFlight" not in stack.config["rollout"]


def test_canary_abort_sends_all_traffic_back_to_stable_and_ends_the_release():
    stack = staging()
    stack.start(first_weight=25)
    settings = stack.apply(actions.abort(stack.settings))
    assert settings.chat_api.tag == "v1.4.0"
    assert (settings.rollout.canary.tag, settings.rollout.canary.replicas, settings.rollout.canary.weight) == (None, None, 0)
    assert settings.rollout.in_flight is None
    assert stack.config == stack_config("staging")


def test_canary_abort_with_nothing_in_flight_refuses():
    with pytest.raises(Refused, match="no canary in flight to abort"):
        actions.abort(staging().settings)


# --- blue/green ------------------------------------------------------------------------------


def test_blue_green_start_puts_the_candidate_on_the_idle_colour():
    settings = production().start()
    blue_green = settings.rollout.blue_green
    assert (blue_green.active, blue_green.blue.tag, blue_green.green.tag) == ("blue", "v1.4.0", "v2.0.0")
    assert plan_release(settings).test_track == "green"


def test_the_idle_colour_runs_full_size_while_the_release_is_in_flight():
    stack = production(rollout__blueGreen__idleReplicas=0)
    assert plan_release(stack.settings).track("green").replicas == 0
    settings = stack.start()
    assert plan_release(settings).track("green").replicas == 3
    settings = stack.apply(actions.switch(settings))
    plan = plan_release(settings)
    assert (plan.track("green").replicas, plan.track("blue").replicas, plan.test_track) == (3, 3, "blue")
    plan = plan_release(stack.apply(actions.complete(settings)))
    assert (plan.track("green").replicas, plan.track("blue").replicas, plan.test_track) == (3, 0, None)


def test_switched_says_whether_the_release_serves_production():
    stack = production()
    assert not actions.switched(stack.settings)
    settings = stack.start()
    assert not actions.switched(settings)
    settings = stack.apply(actions.switch(settings))
    assert actions.switched(settings)
    assert not actions.switched(stack.apply(actions.complete(settings)))


def test_blue_green_abort_after_a_switch_switches_back_and_ends_the_release():
    stack = production()
    stack.start()
    stack.apply(actions.switch(stack.settings))
    action = actions.abort(stack.settings)
    assert action.changes == {"rollout.blueGreen.active": "blue", "rollout.inFlight": UNSET}
    settings = stack.apply(action)
    assert settings.rollout.in_flight is None
    assert plan_release(settings).serving.tag == "v1.4.0"


def test_blue_green_abort_before_a_switch_only_ends_the_release():
    stack = production(rollout__blueGreen__idleReplicas=0)
    stack.start()
    action = actions.abort(stack.settings)
    assert action.changes == {"rollout.inFlight": UNSET}
    plan = plan_release(stack.apply(action))
    assert (plan.serving.track, plan.serving.tag, plan.track("green").replicas) == ("blue", "v1.4.0", 0)


def test_blue_green_abort_with_nothing_in_flight_refuses_and_names_switch():
    with pytest.raises(Refused, match="no release in flight to abort \\(to change versions anyway: `switch`\\)"):
        actions.abort(production().settings)


# --- rolling ----------------------------------------------------------------------------------


def test_rolling_abort_restores_the_previous_tag():
    stack = demo()
    assert stack.start("v2.0.0").chat_api.tag == "v2.0.0"
    action = actions.abort(stack.settings)
    assert action.changes == {"chatApi.tag": "v1.4.0", "rollout.inFlight": UNSET}
    settings = stack.apply(action)
    assert (settings.chat_api.tag, settings.rollout.in_flight) == ("v1.4.0", None)


def test_rolling_complete_keeps_the_new_tag_and_ends_the_release():
    stack = demo()
    stack.start("v2.0.0")
    settings = stack.apply(actions.complete(stack.settings))
    assert (settings.chat_api.tag, settings.rollout.in_flight) == ("v2.0.0", None)


def test_rolling_abort_with_nothing_in_flight_refuses():
    with pytest.raises(Refused, match="no release in flight to abort \\(to change versions anyway: `start --tag <earlier tag>`\\)"):
        actions.abort(demo().settings)

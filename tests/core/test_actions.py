"""The release driver's actions as pure rules: each is one config write of one service, or a
refusal (no mocks)."""

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
from core.settings import ServiceSettings, Settings, UnknownService
from core.stack_config import carepath_sections
from offline.harness import apply_overrides, load_stack_config
from release.stackfile import apply_changes
from tests.conftest import settings_from

RELEASE_ID = "a1b2c3d4e5f6"
STARTED = "2026-11-28T10:02:11Z"
STACK_OF = {"canary": "staging", "blue-green": "production", "rolling": "demo"}
LADDER = (1, 5, 10, 25, 50, 75, 100)
CHAT = "services.chat-api."
TRIAGE = {"tag": "v1.0.0", "hosts": ["triage.example.org"], "rollout": {"strategy": "canary"}}


def stack_config(stack: str, overrides: Optional[Mapping[str, Any]] = None) -> dict:
    """The `carepath:` sections of the repository's stack file, with `--path`-style overrides."""
    return carepath_sections(apply_overrides(load_stack_config(stack), {f"carepath:{k}": v for k, v in (overrides or {}).items()}))


class Stack:
    """A stack's config as the driver sees it, for one service: actions are applied to it and it
    is parsed again."""

    def __init__(self, name: str, overrides: Optional[Mapping[str, Any]] = None, service: str = "chat-api"):
        self.name, self.service, self.config = name, service, stack_config(name, overrides)

    @property
    def settings(self) -> Settings:
        return settings_from(self.config, self.name)

    @property
    def own(self) -> ServiceSettings:
        return self.settings.service(self.service)

    def apply(self, action: actions.Action) -> ServiceSettings:
        self.config = apply_changes(self.config, action.changes)
        return self.own

    def act(self, command: str, *args: Any) -> actions.Action:
        return getattr(actions, command)(self.settings, self.service, *args)

    def start(self, tag: str = "v2.0.0", first_weight: int = 1) -> ServiceSettings:
        return self.apply(self.act("start", tag, RELEASE_ID, STARTED, first_weight))


def staging(overrides: Optional[Mapping[str, Any]] = None) -> Stack:
    return Stack("staging", overrides)


def production(overrides: Optional[Mapping[str, Any]] = None) -> Stack:
    return Stack("production", overrides)


def demo() -> Stack:
    return Stack("demo")


# --- no command leaves a config that does not validate --------------------------------

tags = st.sampled_from(["v1.4.0", "v2.0.0", "v2.1.0"]) | st.from_regex(r"v[0-9]\.[0-9]{1,2}\.[0-9]", fullmatch=True)
commands = st.one_of(
    st.tuples(st.just("start"), tags, st.sampled_from((0,) + LADDER)),
    st.tuples(st.just("advance"), st.none() | st.sampled_from((0,) + LADDER)),
    st.tuples(st.just("scale_canary"), st.sampled_from(LADDER)),
    st.tuples(st.sampled_from(["promote", "switch", "abort", "complete"])),
)


def perform(stack: Stack, command: tuple) -> Optional[actions.Action]:
    name, *args = command
    if name == "start":
        tag, first_weight = args
        return stack.act("start", tag, RELEASE_ID, STARTED, first_weight)
    return stack.act(name, *args)


@pytest.mark.parametrize("strategy", STACK_OF)
@hypothesis_settings(max_examples=150, deadline=None)
@given(sequence=st.lists(commands, max_size=12), idle_replicas=st.none() | st.integers(0, 3))
def test_no_command_leaves_a_config_that_does_not_validate(strategy, sequence, idle_replicas):
    overrides = {f"{CHAT}rollout.blueGreen.idleReplicas": idle_replicas} if strategy == "blue-green" and idle_replicas is not None else None
    stack = Stack(STACK_OF[strategy], overrides)
    own = stack.own
    for command in sequence:
        try:
            action = perform(stack, command)
        except Refused:
            continue
        if action is None:
            continue
        assert all(path == f"{CHAT}tag" or path.startswith(f"{CHAT}rollout.") for path in action.changes), action.changes
        replaced = own.rollout.in_flight.previous if own.rollout.in_flight else None
        own = stack.apply(action)  # parse raises SettingsError on a config that does not validate
        state = release_state(stack.settings, "chat-api")
        assert sum(track.weight for _, track in state.tracks) == 100, (command, state)
        assert all(track.replicas >= 1 for _, track in state.tracks if track.weight > 0), (command, state)
        if action.name in ("promote", "abort", "complete"):
            assert own.rollout.in_flight is None, "the last step of a release removes its record"
        if action.name == "abort" and replaced:
            assert plan_release(stack.settings, "chat-api").serving.tag == replaced, "an abort serves the version the release replaced"


# --- one service among several -----------------------------------------------------------


def test_every_action_writes_only_its_own_services_keys():
    stack = Stack("staging", {"services.triage-api": TRIAGE}, service="triage-api")
    start = stack.act("start", "v1.1.0", RELEASE_ID, STARTED, 1)
    assert set(start.changes) == {f"services.triage-api.rollout.{key}" for key in ("canary.tag", "canary.weight", "canary.replicas", "inFlight")}
    stack.apply(start)
    for command in ("advance", "promote"):
        assert all(path.startswith("services.triage-api.") for path in stack.act(command).changes)
    chat_api = Stack("staging", {"services.triage-api": TRIAGE})
    assert chat_api.act("start", "v2.0.0", RELEASE_ID, STARTED, 1).changes.keys().isdisjoint(start.changes)


def test_another_services_release_in_flight_does_not_stop_a_start():
    stack = Stack("staging", {"services.triage-api": TRIAGE}, service="triage-api")
    stack.start("v1.1.0")
    chat_api = Stack("staging")
    chat_api.config = stack.config
    assert chat_api.start("v2.0.0").rollout.in_flight.tag == "v2.0.0"
    assert stack.own.rollout.in_flight.tag == "v1.1.0", "the other release is untouched"


def test_refusals_name_the_stack_and_the_service():
    stack = Stack("staging", {"services.triage-api": TRIAGE}, service="triage-api")
    with pytest.raises(Refused, match="^stack staging, service triage-api: no canary in flight to promote$"):
        stack.act("promote")
    stack.start(first_weight=5)
    with pytest.raises(Refused, match="stack staging, service triage-api: 7 % is not a later step of services.triage-api.rollout.canary.steps"):
        stack.act("advance", 7)


def test_a_service_the_stack_does_not_have_is_named_with_the_ones_it_has():
    with pytest.raises(UnknownService, match="stack staging has no service 'nope' \\(its services: chat-api\\)"):
        actions.supported("start", Stack("staging").settings, "nope")


def test_each_service_has_the_commands_of_its_own_strategy():
    settings = Stack("production", {"services.triage-api": TRIAGE, "mesh.enabled": True}).settings
    assert actions.supported("advance", settings, "triage-api") is None
    with pytest.raises(Refused, match="service chat-api releases blue-green: `advance` is for canary services"):
        actions.supported("advance", settings, "chat-api")


# --- which strategy has which command ----------------------------------------------------


@pytest.mark.parametrize("command", ["advance", "promote"])
@pytest.mark.parametrize("strategy", ["blue-green", "rolling"])
def test_advance_and_promote_are_for_canary_services_only(command, strategy):
    stack = Stack(STACK_OF[strategy])
    with pytest.raises(Refused) as refused:
        actions.supported(command, stack.settings, "chat-api")
    message = str(refused.value)
    assert f"service chat-api releases {strategy}" in message and f"`{command}` is for canary services" in message
    assert "(its commands: status, start, run, abort, deploy" in message
    with pytest.raises(Refused, match=f"releases {strategy}"):
        stack.act(command)


@pytest.mark.parametrize("strategy", ["canary", "rolling"])
def test_switch_is_for_blue_green_services_only(strategy):
    with pytest.raises(Refused) as refused:
        Stack(STACK_OF[strategy]).act("switch")
    message = str(refused.value)
    assert f"releases {strategy}" in message and "`switch` is for blue-green services" in message
    assert "switch" not in message.split("its commands:")[1]
    assert ("advance, promote" in message) == (strategy == "canary")


@pytest.mark.parametrize("strategy", STACK_OF)
@pytest.mark.parametrize("command", ["status", "start", "run", "abort", "deploy"])
def test_every_strategy_has_the_common_commands(strategy, command):
    assert actions.supported(command, Stack(STACK_OF[strategy]).settings, "chat-api") is None


# --- start: the first step and the release record, in one write -------------------------

TRACK_KEY = {"canary": f"{CHAT}rollout.canary.tag", "blue-green": f"{CHAT}rollout.blueGreen.green.tag", "rolling": f"{CHAT}tag"}


@pytest.mark.parametrize("strategy", STACK_OF)
def test_start_writes_the_release_record_with_the_tracks(strategy):
    action = Stack(STACK_OF[strategy]).act("start", "v2.0.0", RELEASE_ID, STARTED, 1)
    assert action.changes[TRACK_KEY[strategy]] == "v2.0.0"
    assert action.changes[f"{CHAT}rollout.inFlight"] == {"id": RELEASE_ID, "tag": "v2.0.0", "previous": "v1.4.0", "started": STARTED}


@pytest.mark.parametrize("strategy", STACK_OF)
def test_the_written_record_parses_back(strategy):
    in_flight = Stack(STACK_OF[strategy]).start().rollout.in_flight
    assert (in_flight.id, in_flight.tag, in_flight.previous, in_flight.started) == (RELEASE_ID, "v2.0.0", "v1.4.0", STARTED)


@pytest.mark.parametrize("strategy", STACK_OF)
def test_a_second_start_refuses_naming_the_release_in_flight(strategy):
    stack = Stack(STACK_OF[strategy])
    stack.start("v2.0.0")
    with pytest.raises(Refused, match=f"v2.0.0 is already in flight \\(release {RELEASE_ID}\\): promote or abort it first"):
        stack.act("start", "v2.1.0", "0fedcba98765", STARTED, 1)
    with pytest.raises(Refused, match="`run` resumes it"):
        stack.act("start", "v2.0.0", "0fedcba98765", STARTED, 1)


@pytest.mark.parametrize("strategy, reason", [("canary", "already the stable version"), ("blue-green", "already serves on blue"), ("rolling", "already deployed")])
def test_start_of_the_serving_tag_refuses(strategy, reason):
    with pytest.raises(Refused, match=f"v1.4.0 is {reason}" if strategy != "blue-green" else f"v1.4.0 {reason}"):
        Stack(STACK_OF[strategy]).act("start", "v1.4.0", RELEASE_ID, STARTED, 1)


def test_a_blue_green_start_refuses_while_green_weight_splits_traffic_by_hand():
    with pytest.raises(Refused, match=f"{CHAT}rollout.blueGreen.greenWeight \\(10\\) splits production traffic"):
        production({f"{CHAT}rollout.blueGreen.greenWeight": 10}).act("start", "v2.0.0", RELEASE_ID, STARTED, 1)


# --- canary --------------------------------------------------------------------------------


@pytest.mark.parametrize("replicas, first_weight, pinned", [(2, 1, 1), (4, 0, 1), (4, 50, 2), (10, 25, 3), (3, 100, 3)])
def test_canary_start_pins_its_share_of_the_stable_pods(replicas, first_weight, pinned):
    action = staging({f"{CHAT}replicas": replicas}).act("start", "v2.0.0", RELEASE_ID, STARTED, first_weight)
    assert action.changes[f"{CHAT}rollout.canary.weight"] == first_weight
    assert action.changes[f"{CHAT}rollout.canary.replicas"] == pinned


def test_scale_canary_is_nothing_while_the_pods_suffice():
    stack = staging({f"{CHAT}replicas": 4})
    assert stack.start(first_weight=1).rollout.canary.replicas == 1
    assert stack.act("scale_canary", 5) is None
    assert stack.act("scale_canary", 25) is None


def test_scale_canary_raises_the_pods_a_weight_needs():
    stack = staging({f"{CHAT}replicas": 4})
    stack.start(first_weight=1)
    assert stack.act("scale_canary", 50).changes == {f"{CHAT}rollout.canary.replicas": 2}
    assert stack.act("scale_canary", 100).changes == {f"{CHAT}rollout.canary.replicas": 4}


def test_advance_goes_to_the_next_step_of_the_ladder():
    stack = staging()
    stack.start(first_weight=1)
    weights = []
    while stack.own.rollout.canary.weight < 100:
        weights.append(stack.apply(stack.act("advance")).rollout.canary.weight)
    assert weights == [5, 10, 25, 50, 75, 100]


def test_advance_from_a_shadow_step_goes_to_the_first_step():
    stack = staging()
    stack.start(first_weight=0)
    assert stack.act("advance").changes == {f"{CHAT}rollout.canary.weight": 1}


def test_advance_to_a_later_step_changes_only_the_weight():
    stack = staging()
    stack.start(first_weight=5)
    assert stack.act("advance", 50).changes == {f"{CHAT}rollout.canary.weight": 50}


@pytest.mark.parametrize("weight", [1, 5, 7, 0])
def test_advance_refuses_a_weight_that_is_not_a_later_step(weight):
    stack = staging()
    stack.start(first_weight=5)
    with pytest.raises(Refused, match=f"{weight} % is not a later step of {CHAT}rollout.canary.steps \\(next: 10, 25, 50, 75, 100\\)"):
        stack.act("advance", weight)


def test_advance_at_the_last_step_refuses_and_says_promote():
    stack = staging()
    stack.start(first_weight=100)
    with pytest.raises(Refused, match="the canary is at the last step \\(100 %\\): promote it or abort"):
        stack.act("advance")


@pytest.mark.parametrize("command", ["advance", "promote"])
def test_advance_and_promote_refuse_with_no_canary_in_flight(command):
    with pytest.raises(Refused, match=f"no canary in flight to {command}"):
        staging().act(command)


def test_promote_makes_the_canary_stable_and_ends_the_release():
    stack = staging()
    stack.start()
    own = stack.apply(stack.act("promote"))
    assert own.tag == "v2.0.0"
    assert (own.rollout.canary.tag, own.rollout.canary.replicas, own.rollout.canary.weight) == (None, None, 0)
    assert own.rollout.in_flight is None
    rollout = stack.config["services"]["chat-api"]["rollout"]
    assert not {"tag", "replicas"} & set(rollout["canary"]) and "inFlight" not in rollout


def test_canary_abort_sends_all_traffic_back_to_stable_and_ends_the_release():
    stack = staging()
    stack.start(first_weight=25)
    own = stack.apply(stack.act("abort"))
    assert own.tag == "v1.4.0"
    assert (own.rollout.canary.tag, own.rollout.canary.replicas, own.rollout.canary.weight) == (None, None, 0)
    assert own.rollout.in_flight is None
    assert stack.config == stack_config("staging")


def test_canary_abort_with_nothing_in_flight_refuses():
    with pytest.raises(Refused, match="no canary in flight to abort"):
        staging().act("abort")


# --- blue/green ------------------------------------------------------------------------------


def test_blue_green_start_puts_the_candidate_on_the_idle_colour():
    stack = production()
    blue_green = stack.start().rollout.blue_green
    assert (blue_green.active, blue_green.blue.tag, blue_green.green.tag) == ("blue", "v1.4.0", "v2.0.0")
    assert plan_release(stack.settings, "chat-api").test_track == "green"


def test_the_idle_colour_runs_full_size_while_the_release_is_in_flight():
    stack = production({f"{CHAT}rollout.blueGreen.idleReplicas": 0})

    def plan():
        return plan_release(stack.settings, "chat-api")

    assert plan().track("green").replicas == 0
    stack.start()
    assert plan().track("green").replicas == 3
    stack.apply(stack.act("switch"))
    assert (plan().track("green").replicas, plan().track("blue").replicas, plan().test_track) == (3, 3, "blue")
    stack.apply(stack.act("complete"))
    assert (plan().track("green").replicas, plan().track("blue").replicas, plan().test_track) == (3, 0, None)


def test_switched_says_whether_the_release_serves_production():
    stack = production()

    def switched() -> bool:
        return actions.switched(stack.settings, "chat-api")

    assert not switched()
    stack.start()
    assert not switched()
    stack.apply(stack.act("switch"))
    assert switched()
    stack.apply(stack.act("complete"))
    assert not switched()


def test_blue_green_abort_after_a_switch_switches_back_and_ends_the_release():
    stack = production()
    stack.start()
    stack.apply(stack.act("switch"))
    action = stack.act("abort")
    assert action.changes == {f"{CHAT}rollout.blueGreen.active": "blue", f"{CHAT}rollout.inFlight": UNSET}
    assert stack.apply(action).rollout.in_flight is None
    assert plan_release(stack.settings, "chat-api").serving.tag == "v1.4.0"


def test_blue_green_abort_before_a_switch_only_ends_the_release():
    stack = production({f"{CHAT}rollout.blueGreen.idleReplicas": 0})
    stack.start()
    action = stack.act("abort")
    assert action.changes == {f"{CHAT}rollout.inFlight": UNSET}
    stack.apply(action)
    plan = plan_release(stack.settings, "chat-api")
    assert (plan.serving.track, plan.serving.tag, plan.track("green").replicas) == ("blue", "v1.4.0", 0)


def test_blue_green_abort_with_nothing_in_flight_refuses_and_names_switch():
    with pytest.raises(Refused, match="no release in flight to abort \\(to change versions anyway: `switch`\\)"):
        production().act("abort")


# --- rolling ----------------------------------------------------------------------------------


def test_rolling_abort_restores_the_previous_tag():
    stack = demo()
    assert stack.start("v2.0.0").tag == "v2.0.0"
    action = stack.act("abort")
    assert action.changes == {f"{CHAT}tag": "v1.4.0", f"{CHAT}rollout.inFlight": UNSET}
    own = stack.apply(action)
    assert (own.tag, own.rollout.in_flight) == ("v1.4.0", None)


def test_rolling_complete_keeps_the_new_tag_and_ends_the_release():
    stack = demo()
    stack.start("v2.0.0")
    own = stack.apply(stack.act("complete"))
    assert (own.tag, own.rollout.in_flight) == ("v2.0.0", None)


def test_rolling_abort_with_nothing_in_flight_refuses():
    with pytest.raises(Refused, match="no release in flight to abort \\(to change versions anyway: `start --tag <earlier tag>`\\)"):
        demo().act("abort")

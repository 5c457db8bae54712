"""The promotion path: its order over the stacks, every problem a path can have (naming the stack
file and the full key), and how long each stage is watched."""

from __future__ import annotations

import itertools
from typing import Any, Mapping, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.promotion import PathError, PromotionPath, Stage, promotion_path
from core.settings import Settings
from core.stack_config import carepath_sections
from offline.harness import STACKS, load_stack_config
from tests.conftest import TEST_CERTIFICATE, one_service, settings_from

AFTER = "carepath:services.chat-api.promotion.after"


def stack(name: str, promotion: Optional[Mapping[str, Any]], strategy: str = "canary", service: str = "chat-api") -> Settings:
    """A stack with one service, in a stage of its path when `promotion` is given."""
    entry: dict[str, Any] = {"tag": "v1.4.0", "rollout": {"strategy": strategy}}
    if promotion is not None:
        entry["promotion"] = dict(promotion)
    # What production asks of every stack file besides (a certificate, a closed API endpoint).
    raw = one_service(entry, service, edge={"certificateArn": TEST_CERTIFICATE}, cluster={"publicAccessCidrs": ["203.0.113.0/24"]})
    return settings_from(raw, name)


def stacks(**promotions: Optional[Mapping[str, Any]]) -> dict[str, Settings]:
    return {name: stack(name, promotion) for name, promotion in promotions.items()}


def path_problems(service: str, by_stack: Mapping[str, Settings]) -> list[str]:
    with pytest.raises(PathError) as caught:
        promotion_path(service, by_stack)
    return caught.value.problems


THREE = stacks(production={"after": "staging", "soakSeconds": 0, "watchSeconds": 1800}, demo={"soakSeconds": 300, "watchSeconds": 60}, staging={"after": "demo", "soakSeconds": 3600})


def test_the_path_runs_from_the_stage_without_after_through_each_stage_after_the_one_before():
    path = promotion_path("chat-api", THREE)
    assert path.service == "chat-api" and path.names == ("demo", "staging", "production")
    assert path.stages[1] == Stage("staging", "canary", THREE["staging"].service("chat-api").promotion)  # type: ignore[arg-type]
    assert path.previous("demo") is None and path.previous("production") == path.stages[1]
    assert path.next("demo") == path.stages[1] and path.next("production") is None
    assert path.stage("production").promotion.watch_seconds == 1800


def test_the_stack_files_take_chat_api_from_demo_through_staging_to_production():
    path = promotion_path("chat-api", {name: settings_from(carepath_sections(load_stack_config(name)), name) for name in STACKS})
    assert path.names == ("demo", "staging", "production")
    assert [stage.strategy for stage in path.stages] == ["rolling", "canary", "blue-green"]


def test_each_stage_carries_its_stacks_own_strategy():
    by_stack = {"demo": stack("demo", {}, "rolling"), "staging": stack("staging", {"after": "demo"}, "canary")}
    assert [stage.strategy for stage in promotion_path("chat-api", by_stack).stages] == ["rolling", "canary"]


def test_stacks_without_the_service_or_its_promotion_are_not_in_the_path():
    by_stack = {**stacks(demo={}, staging={"after": "demo"}), "qa": stack("qa", None), "lab": stack("lab", {}, service="triage-api")}
    assert promotion_path("chat-api", by_stack).names == ("demo", "staging")
    assert promotion_path("triage-api", by_stack).names == ("lab",)


def test_a_stage_outside_the_path_is_an_error_naming_the_stages():
    path = promotion_path("chat-api", THREE)
    for ask in (path.stage, path.previous, path.next, path.window_seconds):
        with pytest.raises(PathError, match=r"qa is no stage of chat-api's path \(demo -> staging -> production\)"):
            ask("qa")


def test_a_stage_is_watched_for_its_soak_when_a_stage_follows_and_for_its_watch_at_the_end():
    path = promotion_path("chat-api", THREE)
    assert [path.window_seconds(name) for name in path.names] == [300, 3600, 1800]
    assert promotion_path("chat-api", stacks(demo={"soakSeconds": 10, "watchSeconds": 60}, staging={"after": "demo"})).window_seconds("demo") == 60


def test_an_after_that_names_no_stage_says_which_stacks_are_stages_and_what_was_meant():
    found = path_problems("chat-api", stacks(demo={}, staging={"after": "demo"}, production={"after": "stagin"}))
    assert found == [
        f'Pulumi.production.yaml: {AFTER}: "stagin" is no stage of chat-api\'s path (stacks with a promotion for chat-api: demo, production, staging); '
        "did you mean 'staging'?"
    ]


def test_a_stack_with_the_service_but_no_promotion_is_no_stage():
    by_stack = {**stacks(demo={}, production={"after": "staging"}), "staging": stack("staging", None)}
    found = path_problems("chat-api", by_stack)
    assert found == [f'Pulumi.production.yaml: {AFTER}: "staging" is no stage of chat-api\'s path (stacks with a promotion for chat-api: demo, production)']


def test_a_service_without_any_promotion_lists_the_stacks():
    by_stack = {"demo": stack("demo", None), "staging": stack("staging", None), "lab": stack("lab", None, service="triage-api")}
    assert path_problems("chat-api", by_stack) == [
        "no stack has a promotion for chat-api (stacks with chat-api: demo, staging; of all: demo, lab, staging): "
        "add carepath:services.chat-api.promotion to each stage's stack file"
    ]


def test_two_first_stages_are_named_together():
    found = path_problems("chat-api", stacks(demo={}, qa={}, staging={"after": "demo"}))
    assert found == [
        f"Pulumi.demo.yaml, Pulumi.qa.yaml: {AFTER}: demo and qa are each a first stage of chat-api's path (no after); "
        "a path has one: set after on all but the first"
    ]


def test_a_path_does_not_branch():
    found = path_problems("chat-api", stacks(demo={}, staging={"after": "demo"}, qa={"after": "demo"}))
    assert found == [f"Pulumi.qa.yaml, Pulumi.staging.yaml: {AFTER}: qa and staging all follow demo; a path does not branch: chain them, one after the other"]


def test_three_stages_after_one_are_named_in_a_list():
    found = path_problems("chat-api", stacks(demo={}, staging={"after": "demo"}, qa={"after": "demo"}, lab={"after": "demo"}))
    assert found == [f"Pulumi.lab.yaml, Pulumi.qa.yaml, Pulumi.staging.yaml: {AFTER}: lab, qa and staging all follow demo; a path does not branch: chain them, one after the other"]


def test_a_cycle_is_named_once_with_a_stage_hanging_off_it():
    found = path_problems("chat-api", stacks(demo={}, qa={"after": "staging"}, staging={"after": "qa"}, production={"after": "staging"}))
    assert found == [
        # A stage off a cycle makes a branch too: two stages follow the one it hangs off.
        f"Pulumi.production.yaml, Pulumi.qa.yaml: {AFTER}: production and qa all follow staging; a path does not branch: chain them, one after the other",
        f"Pulumi.qa.yaml, Pulumi.staging.yaml: {AFTER}: qa after staging after qa is a cycle; a path runs from its first stage to its last",
        f'Pulumi.production.yaml: {AFTER}: "staging" does not lead to chat-api\'s first stage demo (production after staging after qa), '
        "so no tag reaches production",
    ]


def test_a_path_that_is_all_cycle_has_no_first_stage():
    found = path_problems("chat-api", stacks(demo={"after": "staging"}, staging={"after": "demo"}))
    assert found == [
        f"Pulumi.demo.yaml, Pulumi.staging.yaml: {AFTER}: every stage of chat-api's path names one before it; remove the key on the first stage",
        f"Pulumi.demo.yaml, Pulumi.staging.yaml: {AFTER}: demo after staging after demo is a cycle; a path runs from its first stage to its last",
    ]


def test_a_stage_after_a_stage_that_names_no_stage_is_unreachable_too():
    found = path_problems("chat-api", stacks(demo={}, staging={"after": "dmeo"}, production={"after": "staging"}))
    assert found == [
        f'Pulumi.staging.yaml: {AFTER}: "dmeo" is no stage of chat-api\'s path (stacks with a promotion for chat-api: demo, production, staging); '
        "did you mean 'demo'?",
        f'Pulumi.production.yaml: {AFTER}: "staging" does not lead to chat-api\'s first stage demo (production after staging), so no tag reaches production',
    ]


def test_every_problem_is_in_the_errors_message():
    with pytest.raises(PathError) as caught:
        promotion_path("chat-api", stacks(demo={}, qa={}, staging={"after": "stagin"}))
    assert str(caught.value).startswith("invalid promotion path of chat-api (2 problems):\n  - ")
    assert all(problem in str(caught.value) for problem in caught.value.problems)
    assert isinstance(caught.value, ValueError)


stack_names = st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,11}", fullmatch=True).filter(lambda n: n != "production"), min_size=1, max_size=5, unique=True)


@given(stack_names, st.data())
def test_any_chain_of_stacks_is_returned_in_chain_order(chain, data):
    # The stacks come in any order; each names the one before it in `chain`.
    listed = data.draw(st.permutations(chain))
    by_stack = {name: stack(name, {"after": chain[chain.index(name) - 1]} if chain.index(name) else {}) for name in listed}
    path = promotion_path("chat-api", by_stack)
    assert path.names == tuple(chain)
    assert all(path.next(a) == path.stage(b) and path.previous(b) == path.stage(a) for a, b in itertools.pairwise(chain))


def test_a_path_is_frozen():
    path = promotion_path("chat-api", THREE)
    assert isinstance(path, PromotionPath) and hash(path.names)
    with pytest.raises(AttributeError):
        path.service = "triage-api"  # type: ignore[misc]

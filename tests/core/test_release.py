"""The release plan's rules hold for every valid config (property tests, no mocks)."""

from hypothesis import given
from hypothesis import strategies as st

from core.release import DEPLOYMENTS, canary_move, canary_replicas, next_weight, plan_release
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
    for before, after in zip(sequence, sequence[1:]):
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

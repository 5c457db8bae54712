"""The moves after each check: the one rule the driver and the bench's simulation follow."""

from hypothesis import given
from hypothesis import strategies as st

from release.judge import Decision
from release.pacing import Pacing, Progress, after_check

STEPS = (5, 25, 100)
CANARY = Pacing(max_inconclusive_seconds=60, min_step_requests=50, steps=STEPS)
BAKE = Pacing(max_inconclusive_seconds=60, min_step_requests=50, bake_seconds=300)


def decision(verdict: str, exposure: float = 0.0, inconclusive: bool = False) -> Decision:
    return Decision(verdict, (), (), inconclusive=inconclusive, exposure=exposure)  # type: ignore[arg-type]


def test_a_rollback_verdict_ends_the_release_whatever_the_progress():
    move, _ = after_check(CANARY, Progress(step_requests=1000), decision("rollback"), 0, 10, 10, 25)
    assert move == "rollback"


def test_no_data_holds_until_max_inconclusive_seconds_from_the_start_of_its_first_interval():
    progress = Progress()
    moves = []
    for now in range(10, 90, 10):
        move, progress = after_check(CANARY, progress, decision("hold", inconclusive=True), now - 10, now, now, 5)
        moves.append((now, move))
    assert progress.inconclusive_since == 0
    assert [now for now, move in moves if move == "inconclusive"][0] == 60
    assert all(move == "hold" for now, move in moves if now < 60)


def test_usable_data_clears_the_inconclusive_clock():
    _, progress = after_check(CANARY, Progress(), decision("hold", inconclusive=True), 0, 10, 10, 5)
    _, progress = after_check(CANARY, progress, decision("advance", exposure=1), 10, 20, 20, 5)
    assert progress.inconclusive_since is None


def test_a_step_advances_only_once_it_has_had_its_requests_and_the_count_restarts():
    move, progress = after_check(CANARY, Progress(), decision("advance", exposure=30), 0, 10, 10, 5)
    assert move == "hold" and progress.step_requests == 30
    move, progress = after_check(CANARY, progress, decision("advance", exposure=30), 10, 20, 20, 5)
    assert move == "advance" and progress == Progress()


def test_the_last_step_promotes_only_when_every_critical_gate_accepts():
    assert after_check(CANARY, Progress(), decision("advance", exposure=500), 0, 10, 10, 100)[0] == "hold"
    assert after_check(CANARY, Progress(), decision("promote", exposure=1), 0, 10, 10, 100)[0] == "promote"


def test_a_bake_ends_after_its_time_with_every_gate_accepting_and_never_advances():
    assert after_check(BAKE, Progress(), decision("promote", exposure=1000), 0, 10, 299, 100)[0] == "hold"
    assert after_check(BAKE, Progress(), decision("advance", exposure=1000), 0, 10, 400, 100)[0] == "hold"
    assert after_check(BAKE, Progress(), decision("promote"), 0, 10, 300, 100)[0] == "baked"


@given(st.lists(st.sampled_from(["hold", "advance", "promote"]), min_size=1, max_size=30), st.sampled_from(STEPS))
def test_without_a_rollback_or_lost_data_a_canary_never_ends_but_by_promotion(verdicts, weight):
    progress = Progress()
    for index, verdict in enumerate(verdicts):
        move, progress = after_check(CANARY, progress, decision(verdict, exposure=20), index * 10, index * 10 + 10, index * 10 + 10, weight)
        assert move in ("hold", "advance", "promote")
        assert move != "promote" or (weight == STEPS[-1] and verdict == "promote")

"""The analysis on simulated releases: the bounds hold, and it beats Flagger's default rule."""

from release.analysis import Gates
from release.simulation import Scenario, flagger, ours, summarise

SEEDS = range(60)


def test_good_canaries_are_promoted_and_faster_than_flaggers_rule():
    good = Scenario("good", 0.005)
    mine, theirs = summarise([ours(good, s) for s in SEEDS]), summarise([flagger(good, s) for s in SEEDS])
    gates = Gates()
    assert mine.rollback_rate <= gates.alpha / (1 - gates.beta)
    assert mine.mean_seconds_to_promotion <= theirs.mean_seconds_to_promotion


def test_bad_canaries_are_rolled_back_with_far_fewer_failed_requests():
    for scenario, factor in ((Scenario("10x", 0.05), 5), (Scenario("broken", 0.5), 20)):
        mine, theirs = summarise([ours(scenario, s) for s in SEEDS]), summarise([flagger(scenario, s) for s in SEEDS])
        assert mine.promotion_rate <= Gates().beta / (1 - Gates().alpha)
        assert mine.mean_failed * factor <= theirs.mean_failed, (scenario.name, mine.mean_failed, theirs.mean_failed)


def test_a_latency_regression_is_caught():
    mine = summarise([ours(Scenario("slow", 0.005, 1.5), s) for s in SEEDS])
    assert mine.rollback_rate == 1.0

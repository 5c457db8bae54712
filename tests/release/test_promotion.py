"""`release.promotion.Promotion` with its stages' drivers, its evidence and its clock faked: the
order of a stage's steps, what resumes, what is refused, how it waits. (The same flows on the
offline stacks and a real Prometheus run through the CLI in tests/release/cli/test_promotion_*.py.)"""

from __future__ import annotations

import contextlib
import datetime
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Optional

from core.images import ImageReport
from core.promotion import PromotionPath, Stage
from core.settings.service import ApprovalSettings, FreezeSettings, PromotionSettings, VerifySettings
from release.driver import Watch
from release.promotion import Options, Promotion, StageHandle, SuiteResult
from release.record import ReleaseRun

START = datetime.datetime(2026, 11, 30, 10, 0, tzinfo=datetime.timezone.utc).timestamp()
VERIFY = VerifySettings(command=("python", "-m", "pytest", "verify"))


class Clock:
    def __init__(self) -> None:
        self.now, self.slept = START, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Evidence:
    """An in-memory stage record, as `EvidenceStore` appends it; `later` events appear once
    `events()` has been asked `after` times (an approval given while the promotion polls)."""

    def __init__(self, stack: str, clock: Clock):
        self.stack, self.clock, self.lines, self.later, self.asked = stack, clock, [], [], 0

    def append(self, event: str, tag: str, run: str, **fields: Any) -> dict:
        at = datetime.datetime.fromtimestamp(self.clock(), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        entry = {"time": at, "stack": self.stack, "service": "chat-api", "tag": tag, "event": event, "operator": fields.pop("operator", "tester"), "run": run, **fields}
        self.lines.append(entry)
        return entry

    def events(self, tag: Optional[str] = None) -> list[dict]:
        self.asked += 1
        for after, event, fields in [item for item in self.later if item[0] <= self.asked]:
            self.later.remove((after, event, fields))
            self.append(event, "v2", "other", **fields)
        return [e for e in self.lines if tag is None or e["tag"] == tag]

    def kinds(self) -> list[str]:
        return [e["event"] for e in self.lines]


@dataclass
class Driver:
    """What the promotion asks of a stage's driver, recorded."""

    strategy: str = "canary"
    digest: str = "sha256:aaa"
    outcome: str = "promoted"
    watch_outcome: str = "healthy"
    calls: list[tuple] = field(default_factory=list)
    in_flight: Optional[str] = None

    def config(self) -> Any:
        in_flight = SimpleNamespace(tag=self.in_flight, previous="v1", started="2026-11-30T10:00:00Z", id="abc123") if self.in_flight else None
        rollout = SimpleNamespace(strategy=self.strategy, in_flight=in_flight, blue_green=SimpleNamespace(active="blue", blue=SimpleNamespace(tag="v1")))
        return SimpleNamespace(rollout=rollout, tag="v1")

    def reconcile(self) -> None:
        self.calls.append(("reconcile",))

    def vet(self, tag: str) -> ImageReport:
        self.calls.append(("vet", tag))
        return ImageReport("carepath-chat-api", tag, True, self.digest, "COMPLETE")

    def start(self, tag: str, first_weight: Optional[int] = None) -> None:
        self.calls.append(("start", tag, first_weight))
        self.in_flight = tag

    def abort(self, reason: str) -> None:
        self.calls.append(("abort", reason))
        self.in_flight = None

    def run(self, tag: str, keep_replaced: bool = False) -> ReleaseRun:
        self.calls.append(("run", tag, keep_replaced))
        return ReleaseRun(stack="", service="chat-api", tag=tag, strategy=self.strategy, outcome=self.outcome)

    def watch(self, tag: str, previous: Optional[str], promoted_at: float, until: float, baseline_end: float) -> Watch:
        self.calls.append(("watch", tag, previous, promoted_at, until))
        return Watch(self.watch_outcome, () if self.watch_outcome == "healthy" else ("errors: 10x",), until - promoted_at)

    def complete_kept(self, reason: str) -> None:
        self.calls.append(("complete", reason))

    def names(self) -> list[str]:
        return [call[0] for call in self.calls]


def stage(stack: str, strategy: str = "canary", **promotion: Any) -> Stage:
    return Stage(stack, strategy, PromotionSettings(**promotion))


def promotion(stages: tuple[Stage, ...], drivers: dict[str, Driver], clock: Clock, evidence: Optional[dict[str, Evidence]] = None, suite=None, **options: Any):
    evidence = evidence or {s.stack: Evidence(s.stack, clock) for s in stages}

    @contextlib.contextmanager
    def open_stage(stack: str):
        yield StageHandle(drivers[stack], lambda: ("https://staging.example.org", "x-version: canary"))  # type: ignore[arg-type]

    run = Promotion(
        PromotionPath("chat-api", stages), "v2", "run1", "tester", evidence.__getitem__, open_stage, Options(**options),  # type: ignore[arg-type]
        wall_clock=clock, sleep=clock.sleep, show=lambda line: None, suite=suite or (lambda *args: SuiteResult(True, 0, 1.0, "1 passed")),
    )
    return run, evidence


PATH = (stage("demo", "rolling", watch_seconds=60), stage("staging", after="demo", soak_seconds=600, watch_seconds=60), stage("production", "blue-green", after="staging"))


def test_each_stage_is_entered_released_kept_and_watched_in_order():
    clock = Clock()
    drivers = {s.stack: Driver(s.strategy) for s in PATH}
    run, evidence = promotion(PATH, drivers, clock)

    outcome = run.run()

    assert (outcome.code, outcome.message) == (0, "v2 is through demo -> staging -> production")
    for s in PATH:
        assert evidence[s.stack].kinds() == ["entered", "released", "watch-started", "watched"]
        assert drivers[s.stack].names() == ["reconcile", "vet", "run", "watch"]
        assert ("run", "v2", True) in drivers[s.stack].calls, "the replaced version is kept for the watch"
    watch = next(c for c in drivers["staging"].calls if c[0] == "watch")
    assert watch[4] - watch[3] == 600, "staging is watched for its soak, the longer of the two, since a stage follows it"
    watch = next(c for c in drivers["production"].calls if c[0] == "watch")
    assert watch[4] - watch[3] == 600, "production's watch: its default watchSeconds"


def test_an_image_pushed_again_between_stages_stops_the_path():
    clock = Clock()
    drivers = {s.stack: Driver(s.strategy) for s in PATH}
    drivers["staging"].digest = "sha256:bbb"
    run, evidence = promotion(PATH, drivers, clock)

    outcome = run.run()

    assert outcome.code == 1 and "the tag was pushed again" in outcome.message
    assert evidence["staging"].kinds() == ["stopped"] and evidence["staging"].lines[0]["gate"] == "digest"
    assert "run" not in drivers["staging"].names() and evidence["production"].kinds() == []


def test_a_failed_stage_stops_the_path_and_is_not_retried_unless_asked():
    clock = Clock()
    drivers = {s.stack: Driver(s.strategy) for s in PATH}
    drivers["staging"].outcome = "rolled back"
    run, evidence = promotion(PATH, drivers, clock)
    assert run.run().code == 1
    assert evidence["production"].kinds() == []

    again, _ = promotion(PATH, drivers, clock, evidence)
    refused = again.run()
    assert refused.code == 1 and "--retry" in refused.message and drivers["staging"].names().count("run") == 1

    drivers["staging"].outcome = "promoted"
    retried, _ = promotion(PATH, drivers, clock, evidence, retry=True)
    assert retried.run().code == 0
    assert evidence["staging"].kinds().count("entered") == 2 and drivers["staging"].names().count("run") == 2


def test_a_rerun_resumes_the_watch_of_a_promoted_stage_from_its_promotion():
    clock = Clock()
    drivers = {s.stack: Driver(s.strategy) for s in PATH[:1]}
    evidence = {"demo": Evidence("demo", clock)}
    evidence["demo"].append("entered", "v2", "run0", digest="sha256:aaa", previous_stage=None, overrides=[])
    evidence["demo"].append("released", "v2", "run0", outcome="promoted", message="", release="abc", strategy="rolling", previous="v1", started="2026-11-30T09:59:00Z", report=None)
    promoted_at = clock.now
    clock.now += 30  # the promotion was interrupted 30 s into its watch

    outcome = promotion(PATH[:1], drivers, clock, evidence)[0].run()

    assert outcome.code == 0
    assert drivers["demo"].names() == ["watch"], "no second release: the watch resumes"
    watch = drivers["demo"].calls[0]
    assert (watch[2], watch[3], watch[4]) == ("v1", promoted_at, promoted_at + 60), "judged from the promotion on, until its window ends"


def test_a_freeze_is_waited_out_when_it_ends_within_the_longest_wait_else_exit_4():
    in_ten_minutes = datetime.datetime.fromtimestamp(START + 600, datetime.timezone.utc)
    window = FreezeSettings(name="deploy freeze", start="2026-11-30 09:00", end=f"{in_ten_minutes:%Y-%m-%d %H:%M}", time_zone="UTC")
    frozen = (stage("demo", "rolling", freeze=(window,)),)
    clock = Clock()
    run, evidence = promotion(frozen, {"demo": Driver("rolling")}, clock, max_wait=300)
    outcome = run.run()
    assert outcome.code == 4 and "frozen: deploy freeze" in outcome.message and clock.slept == [], "it would end after the longest wait: no wait at all"
    assert evidence["demo"].kinds() == ["stopped"]

    clock = Clock()
    run, evidence = promotion(frozen, {"demo": Driver("rolling")}, clock, max_wait=900, poll_seconds=60)
    assert run.run().code == 0
    entered = next(e for e in evidence["demo"].lines if e["event"] == "entered")
    assert entered["time"] == "2026-11-30T10:10:00Z" and entered["overrides"] == []


def test_an_approval_given_while_it_polls_lets_the_stage_in():
    gated = (stage("demo", "rolling", approval=ApprovalSettings(required=True)),)
    clock = Clock()
    evidence = {"demo": Evidence("demo", clock)}
    evidence["demo"].later = [(4, "approved", {"by": "reviewer", "reason": "ok", "operator": "reviewer"})]
    run, _ = promotion(gated, {"demo": Driver("rolling")}, clock, evidence, max_wait=3600, poll_seconds=10)

    assert run.run().code == 0
    assert evidence["demo"].kinds()[:3] == ["requested", "approved", "entered"]
    assert len(clock.slept) >= 2 and all(s == 10 for s in clock.slept)


def test_a_failing_suite_aborts_the_testers_only_canary_and_nothing_is_released():
    verified = (stage("staging", "canary", verify=VERIFY),)
    driver = Driver("canary")
    seen: list[dict] = []

    def suite(command, env, cwd, timeout):
        seen.append(env)
        return SuiteResult(False, 1, 2.0, "FAILED verify/test_candidate.py::test_chat - 500\n1 failed")

    outcome = promotion(verified, {"staging": driver}, Clock(), suite=suite)[0].run()

    assert outcome.code == 1 and "the verification suite failed before any patient traffic" in outcome.message
    assert driver.names() == ["reconcile", "vet", "start", "abort"] and driver.calls[2] == ("start", "v2", 0)
    assert seen[0]["CAREPATH_VERIFY_URL"] == "https://staging.example.org" and seen[0]["CAREPATH_VERIFY_HEADER"] == "x-version: canary"
    assert seen[0]["CAREPATH_VERIFY_TAG"] == "v2" and seen[0]["CAREPATH_VERIFY_STACK"] == "staging"


def test_a_soak_override_skips_the_watch_of_a_stage_another_follows_and_is_recorded():
    clock = Clock()
    drivers = {s.stack: Driver(s.strategy) for s in PATH}
    run, evidence = promotion(PATH, drivers, clock, overrides={"soak": "hotfix INC-9"})

    assert run.run().code == 0
    assert "watch" not in drivers["demo"].names() and ("complete", "soak overridden: hotfix INC-9") in drivers["demo"].calls
    assert evidence["demo"].lines[-1]["outcome"] == "skipped"
    assert "watch" in drivers["production"].names(), "the last stage is always watched"
    assert next(e for e in evidence["staging"].lines if e["event"] == "entered")["overrides"] == [], "demo has no soak to cut"
    entered = next(e for e in evidence["production"].lines if e["event"] == "entered")
    assert entered["overrides"] == [{"gate": "soak", "reason": "hotfix INC-9"}], "recorded where the cut soak would have held it"
    assert clock.slept == [], "nothing waited"


def test_a_regression_in_the_watch_stops_the_path_there():
    clock = Clock()
    drivers = {s.stack: Driver(s.strategy) for s in PATH}
    drivers["demo"].watch_outcome = "rolled back"
    outcome = promotion(PATH, drivers, clock)[0].run()
    assert outcome.code == 1 and "the watch after promotion ended rolled back: errors: 10x" in outcome.message
    assert drivers["staging"].calls == []

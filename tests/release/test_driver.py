"""The whole driver against the offline stack (which checks the design's invariants after
every update) and metrics simulated from the stack's own weights."""

from __future__ import annotations

import pytest

from core.actions import Refused
from core.release import release_state
from core.settings import parse
from release.audit import AuditLog
from release.driver import Driver
from release.lease import LeaseLost
from release.ports import StackError, StackLocked
from release.report import render
from release.stacks import OfflineStack
from tests.release.conftest import BAD, BAD_MODEL, GOOD, FakeTime, SimulatedMetrics


def driver_for(stack, metrics, tmp_path, time: FakeTime, **options) -> Driver:
    return Driver(stack, metrics, AuditLog(tmp_path / "audit.jsonl", stack.name), clock=time.clock, sleep=time.sleep, show=lambda line: None, **options)


def canary_weights(stack: OfflineStack) -> list[int]:
    weights = []
    for plan in stack.plans:
        routes = plan.one("kubernetes:networking.istio.io/v1:VirtualService").inputs["spec"]["http"]
        split = {d["destination"]["subset"]: d["weight"] for d in routes[-1]["route"]}
        weights.append(split.get("canary", 0))
    return weights


def test_a_good_canary_goes_through_every_step_and_is_promoted(offline, tmp_path, fake_time):
    stack = offline("staging")
    run = driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, fake_time).run("v2.0.0")
    assert run.outcome == "promoted"
    weights = canary_weights(stack)
    steps = [w for i, w in enumerate(weights) if i == 0 or w != weights[i - 1]]
    assert steps == [0, 1, 5, 10, 25, 50, 75, 100, 0], "at 100 req/s every step of the ladder fills within its budget"
    assert len(weights) > len(steps), "the canary was scaled up in updates of its own"
    rollout, chat_api = stack.config()["rollout"], stack.config()["chatApi"]
    assert chat_api["tag"] == "v2.0.0" and "tag" not in rollout["canary"] and rollout["canary"]["weight"] == 0
    deployments = {r.inputs["metadata"]["name"] for r in stack.plans[-1].of_type("kubernetes:apps/v1:Deployment")}
    assert deployments == {"chat-api"}


def test_a_bad_canary_is_rolled_back_at_the_first_step(offline, tmp_path, fake_time):
    stack = offline("staging")
    metrics = SimulatedMetrics(stack, BAD)
    run = driver_for(stack, metrics, tmp_path, fake_time).run("v2.0.0")
    assert run.outcome == "rolled back" and run.message.startswith("analysis: errors:")
    assert canary_weights(stack) == [0, 1, 0]
    assert stack.config()["chatApi"]["tag"] == "v1.4.0" and "tag" not in stack.config()["rollout"]["canary"]
    assert metrics.served["canary"] < 500, "a bad canary is judged on a few hundred requests"


def test_a_model_that_only_triages_worse_is_rolled_back(offline, tmp_path, fake_time):
    stack = offline("staging")
    run = driver_for(stack, SimulatedMetrics(stack, BAD_MODEL), tmp_path, fake_time).run("v2.0.0")
    assert run.outcome == "rolled back" and "triage-success" in run.message
    assert max(canary_weights(stack)) <= 50, "it never took most of the traffic"


def test_nan_holds_then_aborts_with_that_reason(offline, tmp_path, fake_time):
    stack = offline("staging")
    run = driver_for(stack, SimulatedMetrics(stack, GOOD, nan=True), tmp_path, fake_time).run("v2.0.0")
    assert run.outcome == "rolled back" and run.message.startswith("inconclusive for 300 s")
    assert canary_weights(stack) == [0, 1, 0], "never advanced"
    assert {o.verdict for o in run.observations} == {"hold"}
    assert run.observations[-1].seconds >= 300


def test_no_data_holds_and_a_rerun_resumes_from_the_stacks_config(offline, tmp_path):
    stack = offline("staging")
    with pytest.raises(KeyboardInterrupt):
        driver_for(stack, SimulatedMetrics(stack, GOOD, empty=True), tmp_path, FakeTime(limit=20)).run("v2.0.0")
    assert canary_weights(stack)[-1] == 1, "no data never advances"
    shown = []
    driver = Driver(stack, SimulatedMetrics(stack, GOOD), AuditLog(tmp_path / "audit.jsonl", "staging"), clock=FakeTime().clock, sleep=FakeTime().sleep, show=shown.append)
    time = FakeTime()
    driver.clock, driver.sleep = time.clock, time.sleep
    assert driver.run("v2.0.0").outcome == "promoted"
    assert "resuming v2.0.0 at 1 %" in shown


def test_unreachable_metrics_hold_then_abort_never_advance_blind(offline, tmp_path, fake_time):
    stack = offline("staging")
    run = driver_for(stack, SimulatedMetrics(stack, GOOD, failing=1000), tmp_path, fake_time).run("v2.0.0")
    assert run.outcome == "rolled back" and "metrics unavailable: connection refused" in run.message
    assert canary_weights(stack) == [0, 1, 0], "unknown traffic: the first step of the ladder"
    holds = [e for e in AuditLog(tmp_path / "audit.jsonl", "staging").entries() if e["action"] == "analysis"]
    assert len(holds) == 30 and {e["verdict"] for e in holds} == {"hold"}, "300 s of 10 s checks"


class FailingStack(OfflineStack):
    """Its `fail_on`-th update raises `error`."""

    fail_on, error, ups = 0, StackError, 0

    def up(self):
        self.ups += 1
        if self.ups == self.fail_on:
            raise self.error("resource creation failed" if self.error is StackError else "locked")
        super().up()


def failing(offline, name, fail_on: int, error: type = StackError) -> FailingStack:
    stack = offline(name, cls=FailingStack)
    stack.fail_on, stack.error = fail_on, error
    return stack


def test_a_failed_up_stops_and_leaves_traffic_where_it_was(offline, tmp_path, fake_time):
    stack = failing(offline, "staging", 3)
    run = driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, fake_time).run("v2.0.0")
    assert run.outcome == "stopped" and "resource creation failed" in run.message
    assert canary_weights(stack)[-1] == 5, "the last successful update stands"
    entries = AuditLog(tmp_path / "audit.jsonl", "staging").entries()
    failed = [e for e in entries if e.get("event") == "failed"]
    assert [(e["action"], e["error"]) for e in failed] == [("advance", "resource creation failed")]
    assert (entries[-1]["action"], entries[-1]["event"], entries[-1]["outcome"]) == ("release", "ended", "stopped")
    assert stack.config()["rollout"]["canary"]["weight"] == 10, "the stack file holds the decision the cluster has not applied"
    assert stack.applied().track("canary").weight == 5


def test_a_failed_up_can_abort_instead(offline, tmp_path, fake_time):
    stack = failing(offline, "staging", 3)
    run = driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, fake_time, abort_on_failure=True).run("v2.0.0")
    assert run.outcome == "stopped"
    assert canary_weights(stack)[-1] == 0 and "tag" not in stack.config()["rollout"]["canary"]


def test_a_locked_stack_says_so(offline, tmp_path, fake_time):
    stack = failing(offline, "staging", 1, error=StackLocked)
    run = driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, fake_time).run("v2.0.0")
    assert run.outcome == "stopped" and "locked" in run.message


def _blue_green(offline, tmp_path, scenario, status=200, overrides=None):
    stack = offline("production", overrides)
    checked = []

    def http_get(url):
        checked.append(url)
        return status

    driver = driver_for(stack, SimulatedMetrics(stack, scenario), tmp_path, FakeTime(), http_get=http_get, test_url="https://test.example:8443/")
    return stack, driver.run("v2.0.0"), checked


def test_blue_green_smoke_tests_switches_and_bakes(offline, tmp_path):
    stack, run, checked = _blue_green(offline, tmp_path, GOOD)
    assert run.outcome == "switched"
    blue_green = stack.config()["rollout"]["blueGreen"]
    assert (blue_green["active"], blue_green["green"]["tag"]) == ("green", "v2.0.0")
    assert checked == ["https://test.example:8443/healthz"]


def test_blue_green_switches_back_when_the_new_colour_fails(offline, tmp_path):
    stack, run, _ = _blue_green(offline, tmp_path, BAD)
    assert run.outcome == "switched back"
    assert stack.config()["rollout"]["blueGreen"]["active"] == "blue"


def test_blue_green_does_not_switch_without_a_baseline(offline, tmp_path):
    stack = offline("production")
    driver = driver_for(stack, SimulatedMetrics(stack, GOOD, empty=True), tmp_path, FakeTime(), http_get=lambda url: 200)
    run = driver.run("v2.0.0")
    assert run.outcome == "stopped" and run.message.startswith("no baseline for blue")
    assert stack.config()["rollout"]["blueGreen"]["active"] == "blue"


def test_blue_green_does_not_switch_when_smoke_tests_fail(offline, tmp_path):
    stack, run, _ = _blue_green(offline, tmp_path, GOOD, status=503)
    assert run.outcome == "stopped" and "GET /healthz: 503, expected 200" in run.message
    assert stack.config()["rollout"]["blueGreen"]["active"] == "blue"


def test_rolling_rolls_back_to_the_previous_tag_on_failure(offline, tmp_path, fake_time):
    stack = offline("demo")
    run = driver_for(stack, SimulatedMetrics(stack, BAD), tmp_path, fake_time).run("v2.0.0")
    assert run.outcome == "rolled back"
    assert stack.config()["chatApi"]["tag"] == "v1.4.0"
    images = [p.one("kubernetes:apps/v1:Deployment", "chat-api").inputs["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":", 1)[1] for p in stack.plans]
    assert images == ["v1.4.0", "v2.0.0", "v1.4.0"]


def test_every_decision_is_audited_and_reported(offline, tmp_path, fake_time, monkeypatch):
    monkeypatch.setenv("CAREPATH_OPERATOR", "release-bot")
    stack = offline("staging")
    run = driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, fake_time).run("v2.0.0")
    entries = AuditLog(tmp_path / "audit.jsonl", "staging").entries()
    assert {e["operator"] for e in entries} == {"release-bot"}
    analyses = [e for e in entries if e["action"] == "analysis"]
    assert analyses and all({"time", "weights", "verdict", "reasons", "gates", "release"} <= set(e) for e in analyses)
    assert {e["release"] for e in entries} == {run.release_id}
    assert [e["action"] for e in entries if e["action"] != "analysis"][:2] == ["release", "start"]
    errors = [g for g in analyses[-1]["gates"] if g["gate"] == "errors"][0]
    assert errors["state"] == "pass" and errors["evidence"] <= errors["lower"]
    page = render(run, entries)
    assert "promoted" in page.split("</h1>")[0] and 'id="gate-errors"' in page


def test_an_idle_colour_scaled_to_zero_runs_full_size_for_the_release_then_shrinks(offline, tmp_path):
    stack, run, checked = _blue_green(offline, tmp_path, GOOD, overrides={"rollout.blueGreen.idleReplicas": 0})
    assert run.outcome == "switched" and checked
    replicas = [{r.inputs["metadata"]["name"]: r.inputs["spec"]["replicas"] for r in p.of_type("kubernetes:apps/v1:Deployment")} for p in stack.plans]
    assert replicas[0] == {"chat-api-blue": 3, "chat-api-green": 0}
    assert replicas[1] == {"chat-api-blue": 3, "chat-api-green": 3}, "the candidate is tested at full size"
    assert replicas[-1] == {"chat-api-blue": 0, "chat-api-green": 3}, "the old colour shrinks after the bake"
    assert stack.config()["rollout"]["blueGreen"]["idleReplicas"] == 0


MIRROR = {"rollout.canary.mirror": {"percent": 20, "paths": ["/v1/models"]}}


def test_with_a_mirror_the_release_opens_with_a_shadow_step(offline, tmp_path, fake_time):
    stack = offline("staging", MIRROR)
    run = driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, fake_time).run("v2.0.0")
    assert run.outcome == "promoted"
    weights = canary_weights(stack)
    steps = [w for i, w in enumerate(weights) if i == 0 or w != weights[i - 1]]
    assert steps[:3] == [0, 1, 5], "shadow (weight 0), then the first weighted step"
    shadow = stack.plans[1].one("kubernetes:networking.istio.io/v1:VirtualService").inputs["spec"]["http"]
    assert any(route.get("mirror", {}).get("subset") == "canary" for route in shadow)
    assert run.observations[0].weights == {"stable": 100, "canary": 0}


def test_a_bad_canary_is_caught_in_the_shadow_step_before_any_patient_sees_it(offline, tmp_path, fake_time):
    stack = offline("staging", MIRROR)
    run = driver_for(stack, SimulatedMetrics(stack, BAD), tmp_path, fake_time).run("v2.0.0")
    assert run.outcome == "rolled back"
    assert canary_weights(stack) == [0, 0, 0], "the canary never took a patient request"


class MovedUnderIt(SimulatedMetrics):
    """Metrics that, at their `at`-th read, change the stack file behind the driver's back
    (a merge, a hand edit, another driver)."""

    def __init__(self, stack, scenario, at: int, changes: dict):
        super().__init__(stack, scenario)
        self.at, self.changes = at, changes

    def read(self, *args, **kwargs):
        if self.calls + 1 == self.at:
            self.stack.write(self.changes)
        return super().read(*args, **kwargs)


def test_release_keys_moved_under_a_release_stop_it_before_anything_is_written_over_them(offline, tmp_path, fake_time):
    stack = offline("staging")
    run = driver_for(stack, MovedUnderIt(stack, GOOD, at=12, changes={"rollout.canary.weight": 75}), tmp_path, fake_time).run("v2.0.0")
    assert run.outcome == "stopped" and "changed under this release" in run.message and "75 %" in run.message
    assert stack.config()["rollout"]["canary"]["weight"] == 75 and stack.applied().track("canary").weight < 75, "nothing applied the hand edit"


def test_an_unrelated_change_under_a_release_is_applied_with_its_next_step(offline, tmp_path, fake_time):
    stack = offline("staging")
    run = driver_for(stack, MovedUnderIt(stack, GOOD, at=12, changes={"cluster.maxNodes": 6}), tmp_path, fake_time).run("v2.0.0")
    assert run.outcome == "promoted"
    assert stack.config()["cluster"]["maxNodes"] == 6


class Lost:
    """A lease another driver broke after `after` checks."""

    def __init__(self, after: int):
        self.after, self.checks = after, 0

    def check(self):
        self.checks += 1
        if self.checks > self.after:
            raise LeaseLost("the lease was taken over by run 0123abcd")


def test_a_driver_whose_lease_was_broken_stops_before_its_next_write(offline, tmp_path, fake_time):
    stack = offline("staging")
    run = driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, fake_time, lease=Lost(after=5)).run("v2.0.0")
    assert run.outcome == "stopped" and "taken over by run 0123abcd" in run.message
    assert release_state(parse(stack.config(), "staging")) == stack.applied(), "it stopped between writes: config and cluster agree"


def test_a_rerun_after_a_failed_update_re_applies_the_stack_file_then_carries_on(offline, tmp_path, fake_time):
    stack = failing(offline, "staging", 3)
    shown: list[str] = []
    assert driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, fake_time).run("v2.0.0").outcome == "stopped"
    rerun = Driver(stack, SimulatedMetrics(stack, GOOD), AuditLog(tmp_path / "audit.jsonl", "staging"), clock=FakeTime().clock, sleep=FakeTime().sleep, show=shown.append)
    time = FakeTime()
    rerun.clock, rerun.sleep = time.clock, time.sleep
    assert rerun.run("v2.0.0").outcome == "promoted"
    assert any("re-applying the stack file" in line for line in shown)
    weights = canary_weights(stack)
    assert weights[:4] == [0, 1, 5, 10], "10 % is applied by the re-apply, not skipped"
    entries = AuditLog(tmp_path / "audit.jsonl", "staging").entries()
    assert [e["event"] for e in entries if e["action"] == "reapply"] == ["started", "applied"]
    assert len({e["run"] for e in entries}) == 2 and len({e["release"] for e in entries if "release" in e}) == 1, "two runs of one release"


def test_a_rolling_release_resumed_after_ctrl_c_rolls_back_to_the_version_it_replaced(offline, tmp_path):
    stack = offline("demo")
    with pytest.raises(KeyboardInterrupt):
        driver_for(stack, SimulatedMetrics(stack, GOOD, empty=True), tmp_path, FakeTime(limit=5)).run("v2.0.0")
    assert stack.config()["rollout"]["inFlight"]["previous"] == "v1.4.0" and stack.config()["chatApi"]["tag"] == "v2.0.0"
    run = driver_for(stack, SimulatedMetrics(stack, BAD), tmp_path, FakeTime()).run("v2.0.0")
    assert run.outcome == "rolled back" and stack.config()["chatApi"]["tag"] == "v1.4.0"
    assert "inFlight" not in stack.config()["rollout"]


def test_a_blue_green_release_resumed_after_the_switch_bakes_and_completes(offline, tmp_path):
    stack = offline("production", {"rollout.blueGreen.idleReplicas": 1})
    driver = driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, FakeTime(limit=3), http_get=lambda url: 200)
    with pytest.raises(KeyboardInterrupt):
        driver.run("v2.0.0")
    assert stack.applied().active == "green" and stack.config()["rollout"]["inFlight"]["tag"] == "v2.0.0"
    assert stack.applied().track("blue").replicas == 3, "the replaced colour stays full size while the release is in flight"
    run = driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, FakeTime(), http_get=lambda url: 500).run("v2.0.0")
    assert run.outcome == "switched", "no smoke test after the switch: production already serves it"
    assert stack.applied().track("blue").replicas == 1 and stack.applied().in_flight is None


def test_a_second_release_of_another_tag_is_refused_while_one_is_in_flight(offline, tmp_path, fake_time):
    stack = offline("staging")
    driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, fake_time).start("v2.0.0")
    with pytest.raises(Refused, match="v2.0.0 is in flight"):
        driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, fake_time).run("v3.0.0")


def test_smoke_checks_go_to_the_test_listener_and_an_offline_stack_has_none(offline, tmp_path):
    class Real:
        name = "production"

        def outputs(self):
            return {"url": "https://chat.example.org/"}

    settings = parse(offline("production").config(), "production")
    assert driver_for(Real(), None, tmp_path, FakeTime()).test_url(settings) == "https://chat.example.org:8443"
    stack = offline("production")
    checked = []
    driver = driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, FakeTime(), http_get=checked.append)
    assert driver.run("v2.0.0").outcome == "switched" and checked == []
    smoke = [e for e in AuditLog(tmp_path / "audit.jsonl", "production").entries() if e["action"] == "smoke"]
    assert smoke[0]["skipped"] == "no test listener"


def test_metrics_are_read_where_the_plan_puts_the_tracks(offline, tmp_path):
    class Asked(SimulatedMetrics):
        namespaces: set = set()

        def read(self, namespaces, *args, **kwargs):
            self.namespaces = self.namespaces | set(namespaces)
            return super().read(namespaces, *args, **kwargs)

    stack = offline("production", {"rollout.blueGreen.isolation": "namespace"})
    metrics = Asked(stack, GOOD)
    assert driver_for(stack, metrics, tmp_path, FakeTime(), test_url="https://t.example", http_get=lambda url: 200).run("v2.0.0").outcome == "switched"
    assert metrics.namespaces == {"carepath-production-blue", "carepath-production-green"}

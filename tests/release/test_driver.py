"""The whole driver against the offline stack (which checks the design's invariants after
every update) and metrics simulated from the stack's own weights."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from core.actions import Refused
from core.release import release_state
from offline.harness import ROOT
from rehearsal.images import RehearsalImages
from release.audit import AuditLog
from release.driver import Drift, Driver, ImageRefused
from release.lease import LeaseLost
from release.ports import ImagesError, StackError, StackLocked
from release.report import render
from release.stackfile import StackFile, apply_changes, settings_of
from release.stacks import OfflineStack
from tests.release.conftest import BAD, BAD_MODEL, GOOD, FakeTime, SimulatedMetrics

CHAT = "services.chat-api."


def driver_for(stack, metrics, tmp_path, time: FakeTime, **options) -> Driver:
    return Driver(stack, metrics, AuditLog(tmp_path / "audit.jsonl", stack.name), RehearsalImages(), clock=time.clock, sleep=time.sleep, show=lambda line: None, **options)


def chat_api(stack: OfflineStack) -> dict:
    """The stack file's `services.chat-api`."""
    return stack.config()["services"]["chat-api"]


def canary_weights(stack: OfflineStack, service: str = "chat-api") -> list[int]:
    weights = []
    for plan in stack.plans:
        routes = plan.one("kubernetes:networking.istio.io/v1:VirtualService", service).inputs["spec"]["http"]
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
    config = chat_api(stack)
    assert config["tag"] == "v2.0.0" and "tag" not in config["rollout"]["canary"] and config["rollout"]["canary"]["weight"] == 0
    deployments = {r.inputs["metadata"]["name"] for r in stack.plans[-1].of_type("kubernetes:apps/v1:Deployment")}
    assert deployments == {"chat-api"}


def test_a_bad_canary_is_rolled_back_at_the_first_step(offline, tmp_path, fake_time):
    stack = offline("staging")
    metrics = SimulatedMetrics(stack, BAD)
    run = driver_for(stack, metrics, tmp_path, fake_time).run("v2.0.0")
    assert run.outcome == "rolled back" and run.message.startswith("analysis: errors:")
    assert canary_weights(stack) == [0, 1, 0]
    assert chat_api(stack)["tag"] == "v1.4.0" and "tag" not in chat_api(stack)["rollout"]["canary"]
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
    driver = Driver(stack, SimulatedMetrics(stack, GOOD), AuditLog(tmp_path / "audit.jsonl", "staging"), RehearsalImages(), clock=FakeTime().clock, sleep=FakeTime().sleep, show=shown.append)
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
    assert chat_api(stack)["rollout"]["canary"]["weight"] == 10, "the stack file holds the decision the cluster has not applied"
    assert stack.applied()["chat-api"].track("canary").weight == 5


def test_a_failed_up_can_abort_instead(offline, tmp_path, fake_time):
    stack = failing(offline, "staging", 3)
    run = driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, fake_time, abort_on_failure=True).run("v2.0.0")
    assert run.outcome == "stopped"
    assert canary_weights(stack)[-1] == 0 and "tag" not in chat_api(stack)["rollout"]["canary"]


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
    blue_green = chat_api(stack)["rollout"]["blueGreen"]
    assert (blue_green["active"], blue_green["green"]["tag"]) == ("green", "v2.0.0")
    assert checked == ["https://test.example:8443/healthz"]


def test_blue_green_switches_back_when_the_new_colour_fails(offline, tmp_path):
    stack, run, _ = _blue_green(offline, tmp_path, BAD)
    assert run.outcome == "switched back"
    assert chat_api(stack)["rollout"]["blueGreen"]["active"] == "blue"


def test_blue_green_does_not_switch_without_a_baseline(offline, tmp_path):
    stack = offline("production")
    driver = driver_for(stack, SimulatedMetrics(stack, GOOD, empty=True), tmp_path, FakeTime(), http_get=lambda url: 200)
    run = driver.run("v2.0.0")
    assert run.outcome == "stopped" and run.message.startswith("no baseline for blue")
    assert chat_api(stack)["rollout"]["blueGreen"]["active"] == "blue"


def test_blue_green_does_not_switch_when_smoke_tests_fail(offline, tmp_path):
    stack, run, _ = _blue_green(offline, tmp_path, GOOD, status=503)
    assert run.outcome == "stopped" and "GET /healthz: 503, expected 200" in run.message
    assert chat_api(stack)["rollout"]["blueGreen"]["active"] == "blue"


def test_rolling_rolls_back_to_the_previous_tag_on_failure(offline, tmp_path, fake_time):
    stack = offline("demo")
    run = driver_for(stack, SimulatedMetrics(stack, BAD), tmp_path, fake_time).run("v2.0.0")
    assert run.outcome == "rolled back"
    assert chat_api(stack)["tag"] == "v1.4.0"
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
    assert {e["release"] for e in entries} == {run.release_id} and {e["service"] for e in entries} == {"chat-api"}
    assert [e["action"] for e in entries if e["action"] != "analysis"][:3] == ["vet", "release", "start"]
    errors = [g for g in analyses[-1]["gates"] if g["gate"] == "errors"][0]
    assert errors["state"] == "pass" and errors["evidence"] <= errors["lower"]
    page = render(run, entries)
    assert "promoted" in page.split("</h1>")[0] and 'id="gate-errors"' in page


def test_an_idle_colour_scaled_to_zero_runs_full_size_for_the_release_then_shrinks(offline, tmp_path):
    stack, run, checked = _blue_green(offline, tmp_path, GOOD, overrides={f"{CHAT}rollout.blueGreen.idleReplicas": 0})
    assert run.outcome == "switched" and checked
    replicas = [{r.inputs["metadata"]["name"]: r.inputs["spec"]["replicas"] for r in p.of_type("kubernetes:apps/v1:Deployment")} for p in stack.plans]
    assert replicas[0] == {"chat-api-blue": 3, "chat-api-green": 0}
    assert replicas[1] == {"chat-api-blue": 3, "chat-api-green": 3}, "the candidate is tested at full size"
    assert replicas[-1] == {"chat-api-blue": 0, "chat-api-green": 3}, "the old colour shrinks after the bake"
    assert chat_api(stack)["rollout"]["blueGreen"]["idleReplicas"] == 0


MIRROR = {f"{CHAT}rollout.canary.mirror": {"percent": 20, "paths": ["/v1/models"]}}


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
    run = driver_for(stack, MovedUnderIt(stack, GOOD, at=12, changes={f"{CHAT}rollout.canary.weight": 75}), tmp_path, fake_time).run("v2.0.0")
    assert run.outcome == "stopped" and "release keys of chat-api changed under this release" in run.message and "75 %" in run.message
    assert chat_api(stack)["rollout"]["canary"]["weight"] == 75 and stack.applied()["chat-api"].track("canary").weight < 75, "nothing applied the hand edit"


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
    assert release_state(settings_of(stack.config(), "staging"), "chat-api") == stack.applied()["chat-api"], "it stopped between writes: config and cluster agree"


def test_a_rerun_after_a_failed_update_re_applies_the_stack_file_then_carries_on(offline, tmp_path, fake_time):
    stack = failing(offline, "staging", 3)
    shown: list[str] = []
    assert driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, fake_time).run("v2.0.0").outcome == "stopped"
    rerun = Driver(stack, SimulatedMetrics(stack, GOOD), AuditLog(tmp_path / "audit.jsonl", "staging"), RehearsalImages(), clock=FakeTime().clock, sleep=FakeTime().sleep, show=shown.append)
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
    assert chat_api(stack)["rollout"]["inFlight"]["previous"] == "v1.4.0" and chat_api(stack)["tag"] == "v2.0.0"
    run = driver_for(stack, SimulatedMetrics(stack, BAD), tmp_path, FakeTime()).run("v2.0.0")
    assert run.outcome == "rolled back" and chat_api(stack)["tag"] == "v1.4.0"
    assert "inFlight" not in chat_api(stack)["rollout"]


def test_a_blue_green_release_resumed_after_the_switch_bakes_and_completes(offline, tmp_path):
    stack = offline("production", {f"{CHAT}rollout.blueGreen.idleReplicas": 1})
    driver = driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, FakeTime(limit=3), http_get=lambda url: 200)
    with pytest.raises(KeyboardInterrupt):
        driver.run("v2.0.0")
    applied = stack.applied()["chat-api"]
    assert applied.active == "green" and chat_api(stack)["rollout"]["inFlight"]["tag"] == "v2.0.0"
    assert applied.track("blue").replicas == 3, "the replaced colour stays full size while the release is in flight"
    run = driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, FakeTime(), http_get=lambda url: 500).run("v2.0.0")
    assert run.outcome == "switched", "no smoke test after the switch: production already serves it"
    applied = stack.applied()["chat-api"]
    assert applied.track("blue").replicas == 1 and applied.in_flight is None


def test_a_second_release_of_another_tag_is_refused_while_one_is_in_flight(offline, tmp_path, fake_time):
    stack = offline("staging")
    driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, fake_time).start("v2.0.0")
    with pytest.raises(Refused, match="v2.0.0 is in flight"):
        driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, fake_time).run("v3.0.0")


class Real:
    """A real stack as `test_url` sees it: its `url` output, the load balancer's."""

    name = "production"

    def outputs(self):
        return {"url": "https://edge-1234.us-east-1.elb.amazonaws.com/"}


@pytest.mark.parametrize(
    "entry, url",
    [
        ({"pathPrefix": "/triage"}, "https://edge-1234.us-east-1.elb.amazonaws.com:8443/triage"),
        ({"hosts": ["triage.example.org", "triage.example.com"], "pathPrefix": "/v2"}, "https://triage.example.org:8443/v2"),
    ],
    ids=["path prefix", "hosts"],
)
def test_smoke_checks_follow_the_services_rule_on_the_test_listener(tmp_path, entry, url):
    triage = {"replicas": 3, "rollout": {"strategy": "blue-green", "blueGreen": {"blue": {"tag": "v1.0.0"}, "green": {"tag": "v1.0.0"}}}, **entry}
    settings = settings_of(apply_changes(StackFile(ROOT / "Pulumi.production.yaml").config(), {"services.triage-api": triage}), "production")
    assert driver_for(Real(), None, tmp_path, FakeTime(), service="triage-api").test_url(settings) == url
    assert driver_for(Real(), None, tmp_path, FakeTime()).test_url(settings) == "https://edge-1234.us-east-1.elb.amazonaws.com:8443", "the default service: the load balancer's host"


def test_a_verification_suite_reaches_a_canary_on_the_testers_header_and_blue_green_on_the_test_listener(tmp_path):
    triage = {"hosts": ["triage.example.org"], "pathPrefix": "/v2", "rollout": {"strategy": "canary", "canary": {"header": {"name": "x-tester", "value": "yes"}}}, "tag": "v1.0.0"}
    staging = settings_of(apply_changes(StackFile(ROOT / "Pulumi.staging.yaml").config(), {"services.triage-api": triage}), "staging")
    canary = driver_for(Real(), None, tmp_path, FakeTime(), service="triage-api").verification_target(staging)
    assert canary == ("https://triage.example.org/v2", "x-tester: yes"), "the public rule, not the test listener: the header picks the canary"
    production = settings_of(StackFile(ROOT / "Pulumi.production.yaml").config(), "production")
    assert driver_for(Real(), None, tmp_path, FakeTime()).verification_target(production) == ("https://edge-1234.us-east-1.elb.amazonaws.com:8443", "")


def test_an_offline_stack_has_no_test_listener(offline, tmp_path):
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

    stack = offline("production", {f"{CHAT}rollout.blueGreen.isolation": "namespace"})
    metrics = Asked(stack, GOOD)
    assert driver_for(stack, metrics, tmp_path, FakeTime(), test_url="https://t.example", http_get=lambda url: 200).run("v2.0.0").outcome == "switched"
    assert metrics.namespaces == {"carepath-production-blue", "carepath-production-green"}


# --- two services of one stack -------------------------------------------------------------

TRIAGE = {"tag": "v1.0.0", "replicas": 2, "hosts": ["triage.example.org"], "rollout": {"strategy": "canary"}}


def with_triage(offline) -> OfflineStack:
    """Staging with a second canary service, triage-api, deployed."""
    stack = offline("staging")
    stack.write({"services.triage-api": TRIAGE})
    stack.up()
    return stack


def test_two_services_are_released_at_once_each_judged_on_its_own_signals(offline, tmp_path):
    with_triage(offline)
    releases = {"chat-api": ("v2.0.0", GOOD), "triage-api": ("v1.1.0", BAD)}

    def release(service: str):
        stack = offline("staging")  # a stack object of its own on the one workspace, as a process of its own would have
        tag, scenario = releases[service]
        driver = driver_for(stack, SimulatedMetrics(stack, scenario, candidate=tag, service=service), tmp_path, FakeTime(), service=service, ledger=stack.ledger())
        return stack, driver.run(tag)

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = {service: pool.submit(release, service) for service in releases}
        (stack, chat_api_run), (_, triage_run) = done["chat-api"].result(), done["triage-api"].result()
    assert (chat_api_run.outcome, triage_run.outcome) == ("promoted", "rolled back")
    assert triage_run.message.startswith("analysis: errors:"), "triage-api was judged on its own (bad) errors"

    services = stack.config()["services"]
    assert services["chat-api"]["tag"] == "v2.0.0" and "tag" not in services["chat-api"]["rollout"]["canary"], "chat-api's promotion is in the stack file"
    assert services["triage-api"]["tag"] == "v1.0.0" and "tag" not in services["triage-api"]["rollout"]["canary"], "and triage-api's rollback"
    assert not any("inFlight" in services[s]["rollout"] for s in releases)
    applied = stack.applied()
    assert (applied["chat-api"].describe(), applied["triage-api"].describe()) == ("stable v2.0.0 100 %", "stable v1.0.0 100 %")

    entries = AuditLog(tmp_path / "audit.jsonl", "staging").entries()
    runs = {service: [e for e in entries if e.get("service") == service] for service in releases}
    assert {e["release"] for e in runs["chat-api"]} == {chat_api_run.release_id} and {e["release"] for e in runs["triage-api"]} == {triage_run.release_id}
    started = {service: entries.index(next(e for e in runs[service] if e["action"] == "release")) for service in releases}
    ended = {service: entries.index(runs[service][-1]) for service in releases}
    assert started["triage-api"] < ended["chat-api"] and started["chat-api"] < ended["triage-api"], "the two releases overlapped"
    subjects = stack.ledger()._check("log", "--format=%s").stdout.splitlines()
    assert {"release staging/chat-api: v2.0.0 promoted to stable", "release staging/triage-api: all traffic back on stable v1.0.0; canary v1.1.0 removed"} <= set(subjects)


def test_another_services_release_in_flight_is_neither_drift_nor_re_applied(offline, tmp_path, fake_time):
    stack = with_triage(offline)
    triage = driver_for(stack, SimulatedMetrics(stack, GOOD, candidate="v1.1.0", service="triage-api"), tmp_path, fake_time, service="triage-api")
    triage.start("v1.1.0")
    stack.write({"services.triage-api.rollout.canary.weight": 5})  # a decision of triage-api's not applied yet
    chat_api = driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, fake_time)
    assert chat_api.differences() == [] and chat_api.reconcile() is None
    assert triage.differences() == [
        "canary: v1.1.0 x1 1 % in carepath-staging -> v1.1.0 x1 5 % in carepath-staging",
        "stable: v1.0.0 x2 99 % in carepath-staging -> v1.0.0 x2 95 % in carepath-staging",
    ]
    with pytest.raises(Drift, match="not deployed: the stack file would move the release of triage-api \\(canary: v1.1.0 x1 1 %"):
        chat_api.deploy()


def test_deploy_deploys_a_service_that_has_no_applied_state_yet(offline, tmp_path, fake_time):
    stack = offline("staging")
    stack.write({"services.triage-api": TRIAGE})
    said = driver_for(stack, None, tmp_path, fake_time).deploy()
    assert said == "stack staging: deployed; release states unchanged: chat-api stable v1.4.0 100 %; triage-api stable v1.0.0 100 %"
    assert set(stack.applied()) == {"chat-api", "triage-api"}
    deploy = [e for e in AuditLog(tmp_path / "audit.jsonl", "staging").entries() if e["action"] == "deploy"]
    assert [e["event"] for e in deploy] == ["started", "applied"] and not any("service" in e for e in deploy), "the stack's action, no service's"


# --- images are vetted before a release starts ------------------------------------------


class Unreachable:
    def describe(self, repository: str, tag: str):
        raise ImagesError("could not connect to the endpoint URL")


@pytest.mark.parametrize(
    ("tag", "says"),
    [
        ("v2.0.0-unpushed", "image carepath-chat-api:v2.0.0-unpushed is not in its ECR repository"),
        ("v2.0.0-scanning", "could not be vetted: its scan is IN_PROGRESS"),
        (
            "v2.0.0-critical",
            "1 finding(s) at or above CRITICAL; fix them and push a new tag (threshold: carepath:services.chat-api.imageScan.blockAt = CRITICAL)\n"
            "  CRITICAL CVE-2024-3094 xz-utils 5.6.1-1 https://nvd.nist.gov/vuln/detail/CVE-2024-3094",
        ),
    ],
    ids=["not in ECR", "scan in progress", "critical finding"],
)
@pytest.mark.parametrize("command", ["start", "run"])
def test_a_release_on_an_image_that_fails_vetting_is_refused_before_anything_is_written(offline, tmp_path, fake_time, tag, says, command):
    stack = offline("staging")
    before, plans = stack.config(), len(stack.plans)
    driver = driver_for(stack, SimulatedMetrics(stack, GOOD, candidate=tag), tmp_path, fake_time)
    with pytest.raises(ImageRefused) as refused:
        getattr(driver, command)(tag)
    assert str(refused.value).startswith("stack staging, service chat-api: not started: ")
    assert says in str(refused.value)
    assert "HIGH" not in str(refused.value), "below the threshold: not listed"
    assert (stack.config(), len(stack.plans)) == (before, plans), "no write, no update"
    entries = AuditLog(tmp_path / "audit.jsonl", "staging").entries()
    assert [(e["action"], e["event"]) for e in entries] == [("vet", "refused")], "no release started"
    assert fake_time.sleeps == 0


def test_a_lower_threshold_blocks_and_lists_every_finding_at_or_above_it(offline, tmp_path, fake_time):
    stack = offline("staging", {"services.chat-api.imageScan.blockAt": "HIGH"})
    with pytest.raises(ImageRefused) as refused:
        driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, fake_time).start("v2.0.0-critical")
    lines = str(refused.value).splitlines()
    assert "2 finding(s) at or above HIGH" in lines[0] and "blockAt = HIGH" in lines[0]
    assert [line.split()[:2] for line in lines[1:]] == [["CRITICAL", "CVE-2024-3094"], ["HIGH", "CVE-2023-4863"]], "most severe first; the LOW one is not listed"


def test_a_registry_that_cannot_be_asked_refuses_the_release(offline, tmp_path, fake_time):
    stack = offline("staging")
    driver = Driver(stack, SimulatedMetrics(stack, GOOD), AuditLog(tmp_path / "audit.jsonl", "staging"), Unreachable(), clock=fake_time.clock, sleep=fake_time.sleep)
    with pytest.raises(ImageRefused, match="image carepath-chat-api:v2.0.0 could not be vetted: could not connect"):
        driver.start("v2.0.0")
    assert canary_weights(stack) == [0]


def test_a_clean_image_starts_and_its_vetting_is_audited(offline, tmp_path, fake_time):
    stack = offline("staging")
    driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, fake_time).start("v2.0.0")
    assert chat_api(stack)["rollout"]["canary"]["tag"] == "v2.0.0" and canary_weights(stack)[-1] == 1
    vetted, started = AuditLog(tmp_path / "audit.jsonl", "staging").entries()[:2]
    assert (vetted["action"], vetted["event"], vetted["image"], vetted["scan"]) == ("vet", "passed", "carepath-chat-api:v2.0.0", "COMPLETE")
    assert vetted["release"] == started["release"], "the vetting is the release's first line"
    assert vetted["digest"].startswith("sha256:") and (started["action"], started["event"]) == ("start", "started")


def test_a_resumed_release_is_not_vetted_again(offline, tmp_path, fake_time):
    stack = offline("staging")
    driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, fake_time).start("v2.0.0")
    resumed = Driver(stack, SimulatedMetrics(stack, GOOD), AuditLog(tmp_path / "audit.jsonl", "staging"), Unreachable(), clock=fake_time.clock, sleep=fake_time.sleep, show=lambda line: None)
    assert resumed.run("v2.0.0").outcome == "promoted", "its image was vetted when it started"


# --- the watch after a promotion (release.promotion calls it) -------------------------------


def test_a_regression_in_a_canarys_watch_reverts_stable_to_the_tag_it_replaced(offline, tmp_path, fake_time):
    stack = offline("staging")
    released = driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, fake_time).run("v2.0.0")
    assert released.outcome == "promoted" and chat_api(stack)["tag"] == "v2.0.0"
    promoted_at = fake_time.clock()
    watcher = driver_for(stack, SimulatedMetrics(stack, BAD), tmp_path, fake_time, wall_clock=fake_time.clock)

    watched = watcher.watch("v2.0.0", "v1.4.0", promoted_at, promoted_at + 600, promoted_at - 1000)

    assert watched.outcome == "rolled back" and any("errors" in reason for reason in watched.reasons)
    assert watched.seconds < 600, "at once, not at the window's end"
    assert chat_api(stack)["tag"] == "v1.4.0" and "inFlight" not in chat_api(stack)["rollout"]
    entries = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert ("revert", "applied") in [(e["action"], e.get("event")) for e in entries]


def test_a_blue_green_release_kept_for_its_watch_completes_once_watched_healthy(offline, tmp_path):
    time = FakeTime()
    stack = offline("production")
    driver = driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, time, wall_clock=time.clock, http_get=lambda url: 200, test_url="http://test")
    released = driver.run("v2.0.0", keep_replaced=True)
    assert released.outcome == "switched" and chat_api(stack)["rollout"]["inFlight"]["tag"] == "v2.0.0", "the replaced colour is kept"
    assert driver.serves("v2.0.0")

    watched = driver.watch("v2.0.0", "v1.4.0", time.clock(), time.clock() + 120, time.clock() - 600)

    assert (watched.outcome, watched.reasons) == ("healthy", ())
    assert "inFlight" not in chat_api(stack)["rollout"] and chat_api(stack)["rollout"]["blueGreen"]["active"] == "green"


def test_a_rolling_release_kept_for_its_watch_is_aborted_to_the_previous_tag_on_a_regression(offline, tmp_path, fake_time):
    stack = offline("demo")
    assert driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, fake_time).run("v2.0.0", keep_replaced=True).outcome == "promoted"
    watcher = driver_for(stack, SimulatedMetrics(stack, BAD), tmp_path, fake_time, wall_clock=fake_time.clock)
    watched = watcher.watch("v2.0.0", "v1.4.0", fake_time.clock(), fake_time.clock() + 600, fake_time.clock() - 600)
    assert watched.outcome == "rolled back" and chat_api(stack)["tag"] == "v1.4.0" and "inFlight" not in chat_api(stack)["rollout"]


def test_a_watch_of_a_version_the_stack_no_longer_serves_is_superseded_and_touches_nothing(offline, tmp_path, fake_time):
    stack = offline("demo")
    driver = driver_for(stack, SimulatedMetrics(stack, BAD), tmp_path, fake_time, wall_clock=fake_time.clock)
    before = stack.config()
    watched = driver.watch("v2.0.0", "v1.4.0", fake_time.clock(), fake_time.clock() + 600, fake_time.clock())
    assert watched.outcome == "superseded" and stack.config() == before and len(stack.plans) == 1


def test_a_watch_resumed_after_its_window_judges_it_before_it_says_healthy(offline, tmp_path, fake_time):
    stack = offline("demo")
    assert driver_for(stack, SimulatedMetrics(stack, GOOD), tmp_path, fake_time).run("v2.0.0", keep_replaced=True).outcome == "promoted"
    fake_time.now += 3600  # the promotion's process died; rerun an hour later, its window long over
    metrics = SimulatedMetrics(stack, BAD)
    watcher = driver_for(stack, metrics, tmp_path, fake_time, wall_clock=fake_time.clock)
    watched = watcher.watch("v2.0.0", "v1.4.0", fake_time.clock() - 3600, fake_time.clock() - 3000, fake_time.clock() - 4000)
    assert watched.outcome == "rolled back" and metrics.calls >= 2, "never healthy unjudged"
    assert chat_api(stack)["tag"] == "v1.4.0"

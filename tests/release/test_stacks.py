"""The Automation API adapter, with `pulumi.automation`'s stack replaced by a recording fake
(the Pulumi CLI cannot run here), and the offline stack: its workspace, its update lock, and
its invariant checks, per service."""

from __future__ import annotations

import dataclasses
import shutil
import threading
from typing import Any, Mapping

import pytest
from pulumi import automation as auto

from offline.harness import ROOT, Plan
from release.ports import StackError, StackLocked
from release.stackfile import StackFile, exclusive_lock
from release.stacks import FAULT, AutomationStack, InvariantBroken, LockWait, OfflineStack, check_invariants

CHAT = "services.chat-api."
RELEASE = {"strategy": "canary", "tracks": {"stable": {"tag": "v1.4.0", "replicas": 2, "weight": 100, "namespace": "carepath-staging"}}}


class FakeWorkspaceStack:
    def __init__(self, fail=()):
        self.calls, self.fail = [], list(fail)

    def up(self, on_output=None, policy_packs=None):
        self.calls.append(("up", policy_packs))
        if self.fail:
            raise self.fail.pop(0)

    def outputs(self):
        releases = {"chat-api": RELEASE, "broken": {"strategy": "canary"}}
        return {"url": auto.OutputValue(value="http://alb.example", secret=False), "releases": auto.OutputValue(value=releases, secret=False)}


class FakeTime:
    def __init__(self):
        self.now, self.slept = 0.0, []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def locked() -> auto.ConcurrentUpdateError:
    return auto.ConcurrentUpdateError(auto.CommandResult(stdout="", stderr="conflict: Another update is currently in progress", code=255))


@pytest.fixture
def project(tmp_path):
    shutil.copyfile(ROOT / "Pulumi.staging.yaml", tmp_path / "Pulumi.staging.yaml")
    (tmp_path / "policy").mkdir()
    return tmp_path


@pytest.fixture
def fake(monkeypatch, project):
    stack = FakeWorkspaceStack()
    selected = []
    monkeypatch.setattr(auto, "select_stack", lambda stack_name, work_dir: selected.append((stack_name, work_dir)) or stack)
    stack.selected = selected
    return stack


def test_the_config_is_the_stack_file_which_the_automation_api_reads_too(fake, project):
    stack = AutomationStack("staging", project)
    assert fake.selected == [("staging", str(project))]
    assert stack.config()["services"]["chat-api"]["rollout"]["canary"]["weight"] == 0
    stack.write({f"{CHAT}rollout.canary.tag": "v2.0.0", f"{CHAT}rollout.canary.weight": 5})
    canary = StackFile(project / "Pulumi.staging.yaml").config()["services"]["chat-api"]["rollout"]["canary"]
    assert canary == {**stack.config()["services"]["chat-api"]["rollout"]["canary"], "tag": "v2.0.0", "weight": 5}
    stack.up()
    assert fake.calls == [("up", [str(project / "policy")])], "the driver's updates run the policy pack, as the deploy workflow's do"
    assert stack.outputs()["url"] == "http://alb.example"
    assert set(stack.applied()) == {"chat-api"}, "a service's state that does not read is not one"
    assert stack.applied()["chat-api"].track("stable").tag == "v1.4.0"


def test_an_update_refused_for_the_stacks_lock_is_tried_again_and_says_so(fake, project):
    time, shown = FakeTime(), []
    stack = AutomationStack("staging", project, lock_wait=LockWait(seconds=60, poll_seconds=10, show=shown.append, clock=lambda: time.now, sleep=time.sleep))
    fake.fail = [locked(), locked()]
    stack.up()
    assert len(fake.calls) == 3 and time.slept == [10, 10]
    assert shown[0] == "stack staging: another update holds the stack's lock; trying again for up to 60 s"


def test_a_stack_locked_longer_than_the_wait_and_a_failed_up_are_told_apart(fake, project):
    time = FakeTime()
    stack = AutomationStack("staging", project, lock_wait=LockWait(seconds=25, poll_seconds=10, show=lambda line: None, clock=lambda: time.now, sleep=time.sleep))
    fake.fail = [locked() for _ in range(10)]
    with pytest.raises(StackLocked, match="locked by another update; wait for it or `pulumi cancel`; gave up after waiting 25 s"):
        stack.up()
    assert time.slept == [10, 10, 5], "a bounded wait"
    fake.fail = [auto.CommandError(auto.CommandResult(stdout="", stderr="error: creating Deployment", code=1))]
    with pytest.raises(StackError) as caught:
        stack.up()
    assert not isinstance(caught.value, StackLocked)


def test_the_offline_stack_persists_across_invocations_and_a_failed_up_changes_nothing(tmp_path, monkeypatch):
    workspace = tmp_path / "ws"
    first = OfflineStack("staging", ROOT, workspace=workspace)
    assert first.created and (workspace / "Pulumi.staging.yaml").read_text() == (ROOT / "Pulumi.staging.yaml").read_text()
    assert first.ledger()._check("log", "--format=%s").stdout.strip() == "offline stack staging: from Pulumi.staging.yaml", "the workspace is its own ledger"
    first.write({f"{CHAT}rollout.canary.tag": "v2.0.0", f"{CHAT}rollout.canary.weight": 5})
    first.up()
    again = OfflineStack("staging", ROOT, workspace=workspace)
    canary = again.config()["services"]["chat-api"]["rollout"]["canary"]
    assert not again.created and again.applied()["chat-api"].track("canary").weight == 5 and canary["weight"] == 5
    again.write({f"{CHAT}rollout.canary.weight": 10})
    monkeypatch.setenv(FAULT, "up-fails")
    with pytest.raises(StackError, match="offline fault up-fails"):
        again.up()
    monkeypatch.delenv(FAULT)
    third = OfflineStack("staging", ROOT, workspace=workspace)
    assert (third.config()["services"]["chat-api"]["rollout"]["canary"]["weight"], third.applied()["chat-api"].track("canary").weight) == (10, 5)
    assert OfflineStack("staging", ROOT, workspace=workspace, reset=True).applied()["chat-api"].track("canary") is None, "--reset starts over"
    assert "offline" not in (ROOT / "Pulumi.staging.yaml").read_text(), "the project's stack file is never touched"


def test_an_offline_stack_sees_the_updates_of_another_on_its_workspace(tmp_path):
    one, other = (OfflineStack("staging", ROOT, workspace=tmp_path / "ws") for _ in range(2))
    one.write({f"{CHAT}rollout.canary.tag": "v2.0.0", f"{CHAT}rollout.canary.weight": 5})
    one.up()
    assert other.applied()["chat-api"].track("canary").weight == 5, "the applied state is the workspace's, not cached"
    other.write({f"{CHAT}rollout.canary.weight": 10, f"{CHAT}rollout.canary.replicas": 1})
    other.up()  # its invariant check starts from `one`'s update: a weight step, the VirtualService alone
    assert one.applied()["chat-api"].track("canary").weight == 10


def test_an_offline_update_waits_for_the_workspaces_update_lock_and_says_so(tmp_path):
    shown: list[str] = []
    stack = OfflineStack("staging", ROOT, workspace=tmp_path / "ws", lock_wait=LockWait(seconds=60, poll_seconds=0.05, show=shown.append))
    stack.write({f"{CHAT}rollout.canary.tag": "v2.0.0", f"{CHAT}rollout.canary.weight": 5})
    waiting = threading.Event()
    with exclusive_lock(stack.workspace / "up.lock"):  # another update under way
        update = threading.Thread(target=lambda: (stack.up(), waiting.set()))
        update.start()
        update.join(1.0)
        assert not waiting.is_set() and shown, "the update waits, and says so"
    update.join(60)
    assert waiting.is_set() and stack.applied()["chat-api"].track("canary").weight == 5
    assert shown[0].startswith("stack staging: another update holds the stack's lock; trying again for up to")


def test_an_offline_update_gives_up_after_the_wait(tmp_path):
    stack = OfflineStack("staging", ROOT, workspace=tmp_path / "ws", lock_wait=LockWait(seconds=0.2, poll_seconds=0.05, show=lambda line: None))
    with exclusive_lock(stack.workspace / "up.lock"), pytest.raises(StackLocked, match="gave up after waiting 0 s"):
        stack.up()


def test_up_fails_after_n_counts_this_process_updates(tmp_path, monkeypatch):
    stack = OfflineStack("staging", ROOT, workspace=tmp_path / "ws")
    monkeypatch.setenv(FAULT, "up-fails-after:1")
    stack.write({f"{CHAT}rollout.canary.tag": "v2.0.0", f"{CHAT}rollout.canary.weight": 1})
    stack.up()
    with pytest.raises(StackError):
        stack.up()


def test_the_offline_stack_refuses_an_update_that_breaks_an_invariant(tmp_path):
    # A weight step with the canary's replicas left to follow the weight also rescales the canary:
    # more than the one resource a weight step may change.
    stack = OfflineStack("staging", ROOT, {f"{CHAT}replicas": 4}, workspace=tmp_path / "ws")
    stack.write({f"{CHAT}rollout.canary.tag": "v2.0.0", f"{CHAT}rollout.canary.weight": 10})
    stack.up()
    stack.write({f"{CHAT}rollout.canary.weight": 50})
    with pytest.raises(InvariantBroken, match=f"changing {CHAT}rollout.canary.weight touched"):
        stack.up()
    # With the replicas pinned first (as the driver does), the same step is the VirtualService alone.
    stack.write({f"{CHAT}rollout.canary.weight": 10, f"{CHAT}rollout.canary.replicas": 2})
    stack.up()
    stack.write({f"{CHAT}rollout.canary.weight": 50})
    stack.up()
    assert len(stack.plans) == 4


# --- the invariants, per service, on plans of the program ----------------------------------

TRIAGE = {"tag": "v1.0.0", "hosts": ["triage.example.org"], "rollout": {"strategy": "canary", "canary": {"tag": "v1.1.0", "weight": 5, "replicas": 1}}}
GATEWAY = {"tag": "v1.0.0", "hosts": ["db.example.org"], "router": "gateway-api", "rollout": {"strategy": "canary", "canary": {"tag": "v1.1.0", "weight": 5, "replicas": 1}}}
SERVICES = {"carepath:services.triage-api": TRIAGE, "carepath:services.db-api": GATEWAY}


def with_weights(**weights: int) -> dict[str, Any]:
    """Staging with triage-api (Istio) and db-api (Gateway API) canaries, at these weights (the
    services copied: a later override edits the value an earlier one set)."""
    return {**_copy(SERVICES), **{f"carepath:services.{service.replace('_', '-')}.rollout.canary.weight": weight for service, weight in weights.items()}}


@pytest.mark.parametrize("service, resource", [("triage-api", "VirtualService triage-api"), ("db-api", "HTTPRoute db-api")])
def test_a_weight_step_of_one_service_may_change_its_route_resource_alone(run_stack, service, resource):
    before = run_stack("staging", with_weights())
    step = run_stack("staging", with_weights(**{service.replace("-", "_"): 25}))
    check_invariants(before, step, {f"services.{service}.rollout.canary.weight"})
    other = "db-api" if service == "triage-api" else "triage-api"
    with pytest.raises(InvariantBroken, match=f"changing services.{other}.rollout.canary.weight touched"):
        check_invariants(before, step, {f"services.{other}.rollout.canary.weight"})
    both = run_stack("staging", with_weights(triage_api=25, db_api=25))
    check_invariants(before, both, {"services.triage-api.rollout.canary.weight", "services.db-api.rollout.canary.weight"})
    with pytest.raises(InvariantBroken, match="touched"):
        check_invariants(before, both, {f"services.{service}.rollout.canary.weight"})
    assert resource.split()[1] in {r.name for r in step.resources}


def test_a_switch_may_change_the_services_listener_rules_alone(run_stack):
    triage = {"replicas": 2, "pathPrefix": "/triage", "rollout": {"strategy": "blue-green", "blueGreen": {"blue": {"tag": "v1.0.0"}, "green": {"tag": "v1.1.0"}}}}
    before = run_stack("production", {"carepath:services.triage-api": triage})
    switched = run_stack("production", {"carepath:services.triage-api": triage, "carepath:services.triage-api.rollout.blueGreen.active": "green"})
    check_invariants(before, switched, {"services.triage-api.rollout.blueGreen.active"})
    with pytest.raises(InvariantBroken, match="changing services.chat-api.rollout.blueGreen.active touched"):
        check_invariants(before, switched, {"services.chat-api.rollout.blueGreen.active"})


def edited(plan: Plan, type_: str, name: str, edit) -> Plan:
    """`plan` with the inputs of one resource changed by `edit` (a copy of them, edited in place)."""
    resources = []
    for resource in plan.resources:
        if resource.type == type_ and resource.name == name:
            inputs: Mapping[str, Any] = _copy(resource.inputs)
            edit(inputs)
            resource = dataclasses.replace(resource, inputs=inputs)
        resources.append(resource)
    return dataclasses.replace(plan, resources=tuple(resources))


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy(item) for item in value]
    return value


def split(spec: dict, key: str) -> list[dict]:
    """The weighted route of a VirtualService (`http`) or an HTTPRoute (`rules`): the last one."""
    entry = spec[key][-1]
    return entry["route"] if key == "http" else entry["backendRefs"]


@pytest.mark.parametrize("type_, name, key", [("kubernetes:networking.istio.io/v1:VirtualService", "triage-api", "http"), ("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute", "db-api", "rules")])
def test_every_services_routes_sum_to_100_and_reach_only_tracks_with_pods(run_stack, type_, name, key):
    before = run_stack("staging", with_weights())
    check_invariants(before, before)

    def off_by_one(inputs):
        split(inputs["spec"], key)[0]["weight"] += 1

    with pytest.raises(InvariantBroken, match="weights sum to 101"):
        check_invariants(before, edited(before, type_, name, off_by_one))

    def no_canary_pods(inputs):
        inputs["spec"]["replicas"] = 0

    with pytest.raises(InvariantBroken, match=f"sends traffic to {name}-canary, which has no pods"):
        check_invariants(before, edited(before, "kubernetes:apps/v1:Deployment", f"{name}-canary", no_canary_pods))


@pytest.mark.parametrize("service", ["chat-api", "triage-api", "db-api"])
def test_no_update_replaces_a_services_serving_deployment(run_stack, service):
    before = run_stack("staging", with_weights())

    def rename_selector(inputs):
        inputs["spec"]["selector"]["matchLabels"]["track"] = "other"

    with pytest.raises(InvariantBroken, match=f"would replace the serving Deployment {service}$"):
        check_invariants(before, edited(before, "kubernetes:apps/v1:Deployment", service, rename_selector))

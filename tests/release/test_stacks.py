"""The Automation API adapter, with `pulumi.automation`'s stack replaced by a recording fake
(the Pulumi CLI cannot run here), and the offline stack's invariant checks."""

from __future__ import annotations

import shutil

import pytest
from pulumi import automation as auto

from offline.harness import ROOT
from release.ports import StackError, StackLocked
from release.stackfile import StackFile
from release.stacks import FAULT, AutomationStack, InvariantBroken, OfflineStack


class FakeWorkspaceStack:
    def __init__(self, fail=None):
        self.calls, self.fail = [], fail

    def up(self, on_output=None, policy_packs=None):
        self.calls.append(("up", policy_packs))
        if self.fail:
            raise self.fail

    def outputs(self):
        release = {"strategy": "canary", "tracks": {"stable": {"tag": "v1.4.0", "replicas": 2, "weight": 100, "namespace": "carepath-staging"}}}
        return {"url": auto.OutputValue(value="http://alb.example", secret=False), "release": auto.OutputValue(value=release, secret=False)}


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
    assert stack.config()["rollout"]["canary"]["weight"] == 0
    stack.write({"rollout.canary.tag": "v2.0.0", "rollout.canary.weight": 5})
    assert StackFile(project / "Pulumi.staging.yaml").config()["rollout"]["canary"] == {**stack.config()["rollout"]["canary"], "tag": "v2.0.0", "weight": 5}
    stack.up()
    assert fake.calls == [("up", [str(project / "policy")])], "the driver's updates run the policy pack, as the deploy workflow's do"
    assert stack.outputs()["url"] == "http://alb.example"
    assert stack.applied().track("stable").tag == "v1.4.0"


def test_a_locked_stack_and_a_failed_up_are_told_apart(fake, project):
    stack = AutomationStack("staging", project)
    fake.fail = auto.ConcurrentUpdateError(auto.CommandResult(stdout="", stderr="conflict", code=255))
    with pytest.raises(StackLocked, match="locked by another update"):
        stack.up()
    fake.fail = auto.CommandError(auto.CommandResult(stdout="", stderr="error: creating Deployment", code=1))
    with pytest.raises(StackError) as caught:
        stack.up()
    assert not isinstance(caught.value, StackLocked)


def test_the_offline_stack_persists_across_invocations_and_a_failed_up_changes_nothing(tmp_path, monkeypatch):
    workspace = tmp_path / "ws"
    first = OfflineStack("staging", ROOT, workspace=workspace)
    assert first.created and (workspace / "Pulumi.staging.yaml").read_text() == (ROOT / "Pulumi.staging.yaml").read_text()
    first.write({"rollout.canary.tag": "v2.0.0", "rollout.canary.weight": 5})
    first.up()
    again = OfflineStack("staging", ROOT, workspace=workspace)
    assert not again.created and again.applied().track("canary").weight == 5 and again.config()["rollout"]["canary"]["weight"] == 5
    again.write({"rollout.canary.weight": 10})
    monkeypatch.setenv(FAULT, "up-fails")
    with pytest.raises(StackError, match="offline fault up-fails"):
        again.up()
    monkeypatch.delenv(FAULT)
    third = OfflineStack("staging", ROOT, workspace=workspace)
    assert (third.config()["rollout"]["canary"]["weight"], third.applied().track("canary").weight) == (10, 5)
    assert OfflineStack("staging", ROOT, workspace=workspace, reset=True).applied().track("canary") is None, "--reset starts over"
    assert "offline" not in (ROOT / "Pulumi.staging.yaml").read_text(), "the project's stack file is never touched"


def test_up_fails_after_n_counts_this_process_updates(tmp_path, monkeypatch):
    stack = OfflineStack("staging", ROOT, workspace=tmp_path / "ws")
    monkeypatch.setenv(FAULT, "up-fails-after:1")
    stack.write({"rollout.canary.tag": "v2.0.0", "rollout.canary.weight": 1})
    stack.up()
    with pytest.raises(StackError):
        stack.up()


def test_the_offline_stack_refuses_an_update_that_breaks_an_invariant(tmp_path):
    # A weight step with the canary's replicas left to follow the weight also rescales the canary:
    # more than the one resource a weight step may change.
    stack = OfflineStack("staging", ROOT, {"chatApi.replicas": 4}, workspace=tmp_path / "ws")
    stack.write({"rollout.canary.tag": "v2.0.0", "rollout.canary.weight": 10})
    stack.up()
    stack.write({"rollout.canary.weight": 50})
    with pytest.raises(InvariantBroken, match="changing rollout.canary.weight touched"):
        stack.up()
    # With the replicas pinned first (as the driver does), the same step is the VirtualService alone.
    stack.write({"rollout.canary.weight": 10, "rollout.canary.replicas": 2})
    stack.up()
    stack.write({"rollout.canary.weight": 50})
    stack.up()
    assert len(stack.plans) == 4

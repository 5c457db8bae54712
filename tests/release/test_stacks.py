"""The Automation API adapter, with `pulumi.automation`'s stack replaced by a recording fake
(the Pulumi CLI cannot run here), and the offline stack's invariant checks."""

from __future__ import annotations

import pytest
from pulumi import automation as auto

from release.ports import StackError, StackLocked
from release.stacks import AutomationStack, InvariantBroken, OfflineStack


class FakeWorkspaceStack:
    def __init__(self, fail=None):
        self.calls, self.fail = [], fail

    def get_all_config(self):
        return {
            "aws:region": auto.ConfigValue(value="us-east-1"),
            "carepath:rollout": auto.ConfigValue(value='{"strategy": "canary", "canary": {"weight": 5}}'),
            "carepath:note": auto.ConfigValue(value="plain text"),
        }

    def set_config(self, key, value, path=False):
        self.calls.append(("set", key, value.value, path))

    def remove_config(self, key, path=False):
        self.calls.append(("rm", key, path))

    def up(self, on_output=None):
        self.calls.append(("up",))
        if self.fail:
            raise self.fail

    def outputs(self):
        return {"url": auto.OutputValue(value="http://alb.example", secret=False)}


@pytest.fixture
def fake(monkeypatch):
    stack = FakeWorkspaceStack()
    monkeypatch.setattr(auto, "select_stack", lambda stack_name, work_dir: stack)
    return stack


def test_config_is_read_decoded_and_written_by_path(fake):
    stack = AutomationStack("staging")
    assert stack.config() == {"rollout": {"strategy": "canary", "canary": {"weight": 5}}, "note": "plain text"}
    stack.set("rollout.canary.weight", 25)
    stack.set("rollout.canary.tag", "v2.0.0")
    stack.unset("rollout.canary.tag")
    assert fake.calls == [
        ("set", "carepath:rollout.canary.weight", "25", True),
        ("set", "carepath:rollout.canary.tag", "v2.0.0", True),
        ("rm", "carepath:rollout.canary.tag", True),
    ]
    assert stack.outputs() == {"url": "http://alb.example"}


def test_a_locked_stack_and_a_failed_up_are_told_apart(fake):
    stack = AutomationStack("staging")
    fake.fail = auto.ConcurrentUpdateError(auto.CommandResult(stdout="", stderr="conflict", code=255))
    with pytest.raises(StackLocked, match="locked by another update"):
        stack.up()
    fake.fail = auto.CommandError(auto.CommandResult(stdout="", stderr="error: creating Deployment", code=1))
    with pytest.raises(StackError) as caught:
        stack.up()
    assert not isinstance(caught.value, StackLocked)


def test_the_offline_stack_refuses_an_update_that_breaks_an_invariant():
    # A weight step with the canary's replicas left to follow the weight also rescales the canary:
    # more than the one resource a weight step may change.
    stack = OfflineStack("staging", {"chatApi.replicas": 4, "rollout.canary.tag": "v2.0.0", "rollout.canary.weight": 10})
    stack.set("rollout.canary.weight", 50)
    with pytest.raises(InvariantBroken, match="changing rollout.canary.weight touched"):
        stack.up()
    # With the replicas pinned first (as the driver does), the same step is the VirtualService alone.
    stack.set("rollout.canary.weight", 10)
    stack.set("rollout.canary.replicas", 2)
    stack.up()
    stack.set("rollout.canary.weight", 50)
    stack.up()
    assert len(stack.plans) == 3

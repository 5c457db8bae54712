"""The two `Stack`s: the real one through the Automation API, and the offline rehearsal.

Both read and write their stack file the same way (`release.stackfile`: one atomic rewrite per
action) and report the release state of their last successful update (`applied()`).

The offline stack keeps its state in a workspace, `.carepath/offline/<stack>/`, so every
command works across invocations as on a real stack:

- `Pulumi.<stack>.yaml`: a copy of the project's stack file, made when the workspace is
  created (or `--reset`); a git repository of its own holds one commit per action (its ledger);
- `applied.json`: the config and the plan of the last successful `up`, as the offline plan
  engine evaluated it; an `up` that fails or is interrupted leaves it as it was;
- `lease.json`: the release lease (this stack's backend).

Faults can be rehearsed with `CAREPATH_OFFLINE_FAULT` (offline stacks only): `up-fails` (every
`up` of the process fails), `up-fails-after:N` (the first N succeed), `up-hangs` (the next
`up` never returns, until the process is interrupted or killed, before applying anything),
`up-hangs-after:N`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import AbstractSet, Any, Mapping, Optional

from core.release import DEFAULT_SERVICE, ReleaseState, deployments
from offline.diff import diff_plans
from offline.harness import Plan, Registration, run_stack
from release.ports import StackError, StackLocked
from release.stackfile import StackFile, apply_changes, replace_atomically, settings_of

FAULT = "CAREPATH_OFFLINE_FAULT"


def stack_file_path(project: Path, name: str) -> Path:
    return project / f"Pulumi.{name}.yaml"


class _StackFileStack:
    """What both stacks share: writes go to their stack file, and the applied state is their
    last successful update's `release` output."""

    name: str
    file: StackFile

    def write(self, changes: Mapping[str, Any]) -> None:
        self.file.write(changes)

    def outputs(self) -> Mapping[str, Any]:
        raise NotImplementedError

    def applied(self) -> Optional[ReleaseState]:
        return ReleaseState.from_output(self.outputs().get("release"))


class AutomationStack(_StackFileStack):
    """A stack of this project driven through `pulumi.automation` (needs the Pulumi CLI); the
    config is the project's stack file, which the Automation API reads too."""

    def __init__(self, name: str, project: Path, on_output=print):
        from pulumi import automation as auto

        self._auto = auto
        self.name = name
        self.file = StackFile(stack_file_path(project, name))
        self._stack = auto.select_stack(stack_name=name, work_dir=str(project))
        self._policy = project / "policy"
        self._on_output = on_output

    def config(self) -> dict[str, Any]:
        return self.file.config()

    def up(self) -> None:
        try:
            self._stack.up(on_output=self._on_output, policy_packs=[str(self._policy)] if self._policy.is_dir() else None)
        except self._auto.ConcurrentUpdateError as error:
            raise StackLocked(f"stack {self.name} is locked by another update; wait for it or `pulumi cancel`") from error
        except self._auto.CommandError as error:
            raise StackError(str(error)) from error

    def outputs(self) -> Mapping[str, Any]:
        return {key: output.value for key, output in self._stack.outputs().items()}


class InvariantBroken(AssertionError):
    """An offline `up` would break one of the design's invariants."""


def _plan_to_json(plan: Plan) -> dict[str, Any]:
    return {"stack": plan.stack, "resources": [asdict(r) for r in plan.resources], "outputs": dict(plan.outputs)}


def _plan_from_json(data: Mapping[str, Any]) -> Plan:
    return Plan(data["stack"], tuple(Registration(**r) for r in data["resources"]), data["outputs"])


class OfflineStack(_StackFileStack):
    """A workspace copy of the stack file, `up` evaluated by the offline plan engine, with the
    design's invariants checked after every update. `overrides` (`--path` keys) apply on top of
    the workspace's file without being written to it (a rehearsal's faster pace)."""

    offline = True  # its outputs are mocks: no listener to smoke-test

    def __init__(self, name: str, project: Path, overrides: Optional[Mapping[str, Any]] = None, reset: bool = False, workspace: Optional[Path] = None):
        self.name = name
        self.workspace = workspace or project / ".carepath" / "offline" / name
        self.file = StackFile(self.workspace / f"Pulumi.{name}.yaml")
        self.overrides = dict(overrides or {})
        self._state = self.workspace / "applied.json"
        self._ups = 0
        if reset and self.workspace.exists():
            shutil.rmtree(self.workspace)
        self.created = not self._state.exists()
        if self.created:
            self.workspace.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(stack_file_path(project, name), self.file.path)
            self._save(self.config(), self._evaluate())  # the stack starts as deployed from its file
        state = json.loads(self._state.read_text(encoding="utf-8"))
        self._applied_config: dict[str, Any] = state["config"]
        self.plans: list[Plan] = [_plan_from_json(state["plan"])]

    def config(self) -> dict[str, Any]:
        return apply_changes(self.file.config(), self.overrides)

    def _evaluate(self) -> Plan:
        return run_stack(self.name, self.overrides, stack_file_path=self.file.path)

    def _save(self, config: dict[str, Any], plan: Plan) -> None:
        replace_atomically(self._state, json.dumps({"config": config, "plan": _plan_to_json(plan)}, sort_keys=True))

    def _fault(self) -> None:
        fault, _, count = os.environ.get(FAULT, "").partition(":")
        self._ups += 1
        due = self._ups > int(count or 0)
        if fault in ("up-fails", "up-fails-after") and due:
            raise StackError(f"offline fault {os.environ[FAULT]}: update {self._ups} failed; nothing was applied")
        if fault in ("up-hangs", "up-hangs-after") and due:
            while True:  # until Ctrl-C or kill, as a stuck `pulumi up` would
                time.sleep(3600)

    def up(self) -> None:
        self._fault()
        config = self.config()
        settings_of(config, self.name)  # bad config fails here, as in the program
        plan = self._evaluate()
        check_invariants(self.plans[-1], plan, _changed_paths(self._applied_config, config))
        self._save(config, plan)
        self.plans.append(plan)
        self._applied_config = config

    def outputs(self) -> Mapping[str, Any]:
        return self.plans[-1].outputs


def _changed_paths(before: Any, after: Any, prefix: str = "") -> set[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        paths: set[str] = set()
        for key in set(before) | set(after):
            paths |= _changed_paths(before.get(key), after.get(key), f"{prefix}{key}.")
        return paths
    return set() if before == after else {prefix.rstrip(".")}


# One config change, and the only resources it may change.
ONLY_CHANGES = {
    frozenset({"rollout.canary.weight"}): {"kubernetes:networking.istio.io/v1:VirtualService"},
    frozenset({"rollout.canary.replicas"}): {"kubernetes:apps/v1:Deployment"},
    frozenset({"rollout.blueGreen.active"}): {"aws:lb/listener:Listener"},
}


def check_invariants(before: Plan, after: Plan, changed: AbstractSet[str] = frozenset()) -> None:
    """The design's invariants for one update, on the offline plans before and after it."""
    diff = diff_plans(before, after)
    allowed = ONLY_CHANGES.get(frozenset(changed))
    if allowed is not None:
        touched = {(c.type, c.action) for c in diff.changes}
        if any(kind not in allowed or action != "update" for kind, action in touched):
            raise InvariantBroken(f"changing {', '.join(sorted(changed))} touched {sorted(touched)}")
    for change in diff.changes:
        serving = {deployments(DEFAULT_SERVICE)[track] for track in ("stable", "blue", "green")}
        if change.type == "kubernetes:apps/v1:Deployment" and change.name in serving and change.action in ("replace", "delete"):
            raise InvariantBroken(f"the update would {change.action} the serving Deployment {change.name}")
    deployments = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in after.of_type("kubernetes:apps/v1:Deployment")}
    for service in after.of_type("kubernetes:networking.istio.io/v1:VirtualService"):
        for route in service.inputs["spec"]["http"]:
            weights = [d["weight"] for d in route["route"]]
            if sum(weights) != 100:
                raise InvariantBroken(f"route {route['name']} weights sum to {sum(weights)}")
            for destination in route["route"]:
                subset = destination["destination"]["subset"]
                name = deployments(DEFAULT_SERVICE)[subset]
                if destination["weight"] > 0 and deployments.get(name, {}).get("replicas", 0) < 1:
                    raise InvariantBroken(f"route {route['name']} sends traffic to {subset}, which has no pods")

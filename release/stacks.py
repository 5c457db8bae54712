"""The two `Stack`s: the real one through the Automation API, and the offline rehearsal."""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional

from core.settings import NAMESPACE, parse
from offline.diff import diff_plans
from offline.harness import ROOT, Plan, apply_overrides, load_stack_config, run_stack
from release.ports import StackError, StackLocked


class AutomationStack:
    """A stack of this project driven through `pulumi.automation` (needs the Pulumi CLI)."""

    def __init__(self, name: str, on_output=print):
        from pulumi import automation as auto

        self._auto = auto
        self.name = name
        self._stack = auto.select_stack(stack_name=name, work_dir=str(ROOT))
        self._on_output = on_output

    def config(self) -> dict[str, Any]:
        raw = {}
        for key, value in self._stack.get_all_config().items():
            namespace, _, section = key.partition(":")
            if namespace == NAMESPACE:
                try:
                    raw[section] = json.loads(value.value)
                except ValueError:
                    raw[section] = value.value
        return raw

    def set(self, path: str, value: Any) -> None:
        text = json.dumps(value) if not isinstance(value, str) else value
        self._stack.set_config(f"{NAMESPACE}:{path}", self._auto.ConfigValue(value=text), path=True)

    def unset(self, path: str) -> None:
        try:
            self._stack.remove_config(f"{NAMESPACE}:{path}", path=True)
        except self._auto.CommandError:
            pass  # already absent

    def up(self) -> None:
        try:
            self._stack.up(on_output=self._on_output)
        except self._auto.ConcurrentUpdateError as error:
            raise StackLocked(f"stack {self.name} is locked by another update; wait for it or `pulumi cancel`") from error
        except self._auto.CommandError as error:
            raise StackError(str(error)) from error

    def outputs(self) -> Mapping[str, Any]:
        return {key: output.value for key, output in self._stack.outputs().items()}


class InvariantBroken(AssertionError):
    """An offline `up` would break one of the design's invariants."""


class OfflineStack:
    """The stack file plus the config changes made so far, `up` evaluated by the offline plan
    engine, with the design's invariants checked after every update."""

    def __init__(self, name: str, overrides: Optional[Mapping[str, Any]] = None):
        self.name = name
        self._config = {
            key.partition(":")[2]: value
            for key, value in apply_overrides(load_stack_config(name), overrides or {}).items()
            if key.startswith(f"{NAMESPACE}:")
        }
        self.plans: list[Plan] = [self._evaluate()]
        self._applied = self.config()

    def config(self) -> dict[str, Any]:
        return json.loads(json.dumps(self._config))

    def _edit(self, path: str, value: Any, remove: bool) -> None:
        section, *rest = path.split(".")
        if not rest:
            self._config.pop(section, None) if remove else self._config.__setitem__(section, value)
            return
        node = self._config.setdefault(section, {})
        for part in rest[:-1]:
            node = node.setdefault(part, {})
        if remove:
            node.pop(rest[-1], None)
        else:
            node[rest[-1]] = value

    def set(self, path: str, value: Any) -> None:
        self._edit(path, value, remove=False)

    def unset(self, path: str) -> None:
        self._edit(path, None, remove=True)

    def _evaluate(self) -> Plan:
        return run_stack(self.name, {section: value for section, value in self._config.items()}, unset=self._removed())

    def _removed(self) -> list[str]:
        on_file = {key.partition(":")[2] for key in load_stack_config(self.name) if key.startswith(f"{NAMESPACE}:")}
        return sorted(on_file - set(self._config))

    def up(self) -> None:
        parse(self._config, self.name, frozenset({"secrets"}))  # bad config fails here, as in the program
        plan = self._evaluate()
        check_invariants(self.plans[-1], plan, _changed_paths(self._applied, self._config))
        self.plans.append(plan)
        self._applied = self.config()

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


def check_invariants(before: Plan, after: Plan, changed: set[str] = frozenset()) -> None:
    """The design's invariants for one update, on the offline plans before and after it."""
    diff = diff_plans(before, after)
    allowed = ONLY_CHANGES.get(frozenset(changed))
    if allowed is not None:
        touched = {(c.type, c.action) for c in diff.changes}
        if any(kind not in allowed or action != "update" for kind, action in touched):
            raise InvariantBroken(f"changing {', '.join(sorted(changed))} touched {sorted(touched)}")
    for change in diff.changes:
        if change.type == "kubernetes:apps/v1:Deployment" and change.name in ("chat-api", "chat-api-blue", "chat-api-green") and change.action in ("replace", "delete"):
            raise InvariantBroken(f"the update would {change.action} the serving Deployment {change.name}")
    deployments = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in after.of_type("kubernetes:apps/v1:Deployment")}
    for service in after.of_type("kubernetes:networking.istio.io/v1:VirtualService"):
        for route in service.inputs["spec"]["http"]:
            weights = [d["weight"] for d in route["route"]]
            if sum(weights) != 100:
                raise InvariantBroken(f"route {route['name']} weights sum to {sum(weights)}")
            for destination in route["route"]:
                subset = destination["destination"]["subset"]
                name = "chat-api" if subset == "stable" else f"chat-api-{subset}"
                if destination["weight"] > 0 and deployments.get(name, {}).get("replicas", 0) < 1:
                    raise InvariantBroken(f"route {route['name']} sends traffic to {subset}, which has no pods")

"""The two `Stack`s: the real one through the Automation API, and the offline rehearsal.

Both read and write their stack file the same way (`release.stackfile`: one atomic rewrite per
action, under the file's lock) and report, per service, the release state of their last
successful update (`applied()`, from the `releases` output).

Drivers of two services can release on one stack at once, and their updates then meet on
Pulumi's own stack lock: an `up` refused because another update holds it waits (`LockWait`:
up to 15 minutes, saying so) and tries again. The real stack learns it from the Automation
API (`ConcurrentUpdateError`); the offline stack holds `up.lock` in its workspace for each
update, so its updates take turns the same way.

The offline stack keeps its state in a workspace, `.carepath/offline/<stack>/`, so every
command works across invocations (and processes) as on a real stack:

- `Pulumi.<stack>.yaml`: a copy of the project's stack file, made when the workspace is
  created (or `--reset`); a git repository of its own holds one commit per action (its ledger);
- `applied.json`: the config and the plan of the last successful `up`, as the offline plan
  engine evaluated it; an `up` that fails or is interrupted leaves it as it was;
- `leases/<service>.json`: the release leases (this stack's backend).

Faults can be rehearsed with `CAREPATH_OFFLINE_FAULT` (offline stacks only): `up-fails` (every
`up` of the process fails), `up-fails-after:N` (the first N succeed), `up-hangs` (the next
`up` never returns, until the process is interrupted or killed, before applying anything),
`up-hangs-after:N`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import AbstractSet, Any, Callable, Iterator, Mapping, Optional, TypeVar

from core.release import ReleaseState, deployments
from offline.diff import diff_plans
from offline.harness import Plan, Registration, run_stack
from release.ledger import GitLedger
from release.ports import StackError, StackLocked
from release.stackfile import StackFile, apply_changes, exclusive_lock, replace_atomically, settings_of

FAULT = "CAREPATH_OFFLINE_FAULT"
T = TypeVar("T")


def stack_file_path(project: Path, name: str) -> Path:
    return project / f"Pulumi.{name}.yaml"


@dataclass(frozen=True)
class LockWait:
    """How long an `up` waits for another update of the stack to end, how often it tries again,
    and where it says that it waits."""

    seconds: float = 900.0
    poll_seconds: float = 10.0
    show: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def attempt(self, stack: str, update: Callable[[], T]) -> T:
        """`update()`, tried again while it raises StackLocked, until `seconds` have passed."""
        deadline = self.clock() + self.seconds
        while True:
            try:
                return update()
            except StackLocked as locked:
                left = deadline - self.clock()
                if left <= 0:
                    raise StackLocked(f"{locked}; gave up after waiting {self.seconds:.0f} s") from locked
                self.show(f"stack {stack}: another update holds the stack's lock; trying again for up to {left:.0f} s")
                self.sleep(min(self.poll_seconds, left))


class _StackFileStack:
    """What both stacks share: writes go to their stack file, and the applied state is their
    last successful update's `releases` output."""

    name: str
    file: StackFile

    def write(self, changes: Mapping[str, Any]) -> None:
        self.file.write(changes)

    def outputs(self) -> Mapping[str, Any]:
        raise NotImplementedError

    def applied(self) -> dict[str, ReleaseState]:
        releases = self.outputs().get("releases")
        states = {str(name): ReleaseState.from_output(value) for name, value in releases.items()} if isinstance(releases, Mapping) else {}
        return {name: state for name, state in states.items() if state is not None}


class AutomationStack(_StackFileStack):
    """A stack of this project driven through `pulumi.automation` (needs the Pulumi CLI); the
    config is the project's stack file, which the Automation API reads too."""

    def __init__(self, name: str, project: Path, on_output: Callable[[str], None] = print, lock_wait: LockWait = LockWait()):
        from pulumi import automation as auto

        self._auto = auto
        self.name = name
        self.file = StackFile(stack_file_path(project, name))
        self._stack = auto.select_stack(stack_name=name, work_dir=str(project))
        self._policy = project / "policy"
        self._on_output = on_output
        self._lock_wait = lock_wait

    def config(self) -> dict[str, Any]:
        return self.file.config()

    def up(self) -> None:
        self._lock_wait.attempt(self.name, self._up)

    def _up(self) -> None:
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
    the workspace's file without being written to it (a rehearsal's faster pace). Several
    processes may hold one workspace: the applied state is read from it, never cached."""

    offline = True  # its outputs are mocks: no listener to smoke-test

    def __init__(
        self, name: str, project: Path, overrides: Optional[Mapping[str, Any]] = None, reset: bool = False,
        workspace: Optional[Path] = None, lock_wait: LockWait = LockWait(poll_seconds=0.2),
    ):
        self.name = name
        self.workspace = workspace or project / ".carepath" / "offline" / name
        self.file = StackFile(self.workspace / f"Pulumi.{name}.yaml")
        self.overrides = dict(overrides or {})
        self._state = self.workspace / "applied.json"
        self._lock = self.workspace / "up.lock"
        self._lock_wait = lock_wait
        self._ups = 0
        self.workspace.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self._lock):  # one process creates (or resets) the workspace; the others wait for it
            if reset:
                for entry in self.workspace.iterdir():
                    if entry.is_dir():
                        shutil.rmtree(entry)
                    elif entry != self._lock:
                        entry.unlink()
            self.created = not self._state.exists()
            if self.created:
                shutil.copyfile(stack_file_path(project, name), self.file.path)
                self._save(self.config(), self._evaluate())  # the stack starts as deployed from its file
            if not (self.workspace / ".git").exists():
                GitLedger.init(self.workspace, self.file.path, f"offline stack {name}: from Pulumi.{name}.yaml")
        self.plans: list[Plan] = [_plan_from_json(self._applied_state()["plan"])]  # this object's updates, from the state it opened

    def ledger(self) -> GitLedger:
        """The workspace's repository: the stack file's ledger, without a remote."""
        return GitLedger(self.workspace, self.file.path, remote=None)

    def config(self) -> dict[str, Any]:
        return apply_changes(self.file.config(), self.overrides)

    def _evaluate(self) -> Plan:
        return run_stack(self.name, self.overrides, stack_file_path=self.file.path)

    def _applied_state(self) -> dict[str, Any]:
        return json.loads(self._state.read_text(encoding="utf-8"))

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

    @contextlib.contextmanager
    def _updating(self) -> Iterator[None]:
        """The stack's update lock, waited for as a real stack's is."""
        held = contextlib.ExitStack()

        def take() -> None:
            try:
                held.enter_context(exclusive_lock(self._lock, wait=False))
            except BlockingIOError:
                raise StackLocked(f"stack {self.name} is locked by another update") from None

        self._lock_wait.attempt(self.name, take)
        with held:
            yield

    def up(self) -> None:
        self._fault()
        with self._updating():
            config = self.config()
            settings_of(config, self.name)  # bad config fails here, as in the program
            applied = self._applied_state()
            plan = self._evaluate()
            check_invariants(_plan_from_json(applied["plan"]), plan, _changed_paths(applied["config"], config))
            self._save(config, plan)
        self.plans.append(plan)

    def outputs(self) -> Mapping[str, Any]:
        return self._applied_state()["plan"]["outputs"]


def _changed_paths(before: Any, after: Any, prefix: str = "") -> set[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        paths: set[str] = set()
        for key in set(before) | set(after):
            paths |= _changed_paths(before.get(key), after.get(key), f"{prefix}{key}.")
        return paths
    return set() if before == after else {prefix.rstrip(".")}


SERVICE = "carepath:services:Service"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
VIRTUAL_SERVICE = "kubernetes:networking.istio.io/v1:VirtualService"
HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
LISTENER_RULE = "aws:lb/listenerRule:ListenerRule"
ROUTE_RESOURCES = (VIRTUAL_SERVICE, HTTP_ROUTE)  # what a router splits traffic by weight in

# A key of one service's config, and what a change of it alone may update (nothing else, and
# nothing replaced): a predicate of the service, the resource and the router that owns it.
ONLY_CHANGES: dict[str, Callable[[str, Registration, Optional[str]], bool]] = {
    # a weight step: the route resource of the service's router (its VirtualService, its HTTPRoute)
    "rollout.canary.weight": lambda service, resource, router: resource.type in ROUTE_RESOURCES and router == service,
    "rollout.canary.replicas": lambda service, resource, router: resource.type == DEPLOYMENT and resource.name in deployments(service).values(),
    # a switch: the service's listener rules (production, and the test listener's to the other colour)
    "rollout.blueGreen.active": lambda service, resource, router: resource.type == LISTENER_RULE and resource.name in (f"{service}-production", f"{service}-test"),
}


def _allowed(changed: AbstractSet[str]) -> Optional[Callable[[Registration, Optional[str]], bool]]:
    """What an update of the `changed` config paths may touch: a resource one of their
    `ONLY_CHANGES` rules allows (None: anything, when a path has no rule or none changed)."""
    rules: list[tuple[str, Callable[[str, Registration, Optional[str]], bool]]] = []
    for path in changed:
        section, service, key = (path.split(".", 2) + ["", ""])[:3]
        rule = ONLY_CHANGES.get(key) if section == "services" else None
        if rule is None:
            return None
        rules.append((service, rule))
    if not rules:
        return None
    return lambda resource, router: any(rule(service, resource, router) for service, rule in rules)


def check_invariants(before: Plan, after: Plan, changed: AbstractSet[str] = frozenset()) -> None:
    """The design's invariants for one update, on the offline plans before and after it, for
    every service of the stack."""
    diff = diff_plans(before, after)
    resources = {r.urn: r for r in (*before.resources, *after.resources)}
    routers = {r.urn: r.name for r in resources.values() if r.type.startswith("carepath:router:")}  # a router is named after its service
    allowed = _allowed(changed)
    if allowed is not None:
        touched = [(c, resources[c.urn]) for c in diff.changes]
        if any(change.action != "update" or not allowed(resource, routers.get(resource.parent)) for change, resource in touched):
            raise InvariantBroken(f"changing {', '.join(sorted(changed))} touched {sorted((c.type, c.name, c.action) for c, _ in touched)}")
    services = [r.name for r in after.of_type(SERVICE)]
    serving = {deployments(service)[track] for service in services for track in ("stable", "blue", "green")}
    for change in diff.changes:
        if change.type == DEPLOYMENT and change.name in serving and change.action in ("replace", "delete"):
            raise InvariantBroken(f"the update would {change.action} the serving Deployment {change.name}")
    specs = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in after.of_type(DEPLOYMENT)}

    def check(route: str, destinations: list[tuple[str, int]]) -> None:
        weights = [weight for _, weight in destinations]
        if sum(weights) != 100:
            raise InvariantBroken(f"{route}: weights sum to {sum(weights)}")
        for deployment, weight in destinations:
            if weight > 0 and specs.get(deployment, {}).get("replicas", 0) < 1:
                raise InvariantBroken(f"{route} sends traffic to {deployment}, which has no pods")

    for virtual_service in after.of_type(VIRTUAL_SERVICE):
        service = virtual_service.inputs["metadata"]["name"]
        for route in virtual_service.inputs["spec"]["http"]:
            destinations = [(deployments(service)[d["destination"]["subset"]], d["weight"]) for d in route["route"]]
            check(f"VirtualService {service} route {route['name']}", destinations)
    for http_route in after.of_type(HTTP_ROUTE):
        for rule in http_route.inputs["spec"]["rules"]:
            check(f"HTTPRoute {http_route.name} rule {rule.get('name', '')}", [(ref["name"], ref["weight"]) for ref in rule["backendRefs"]])

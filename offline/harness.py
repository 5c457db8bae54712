"""Run the Pulumi program in-process under mocks and record what it registers.

`run_stack(stack, overrides)` is the one entry point: the offline plan, the
diff, the benchmark and the tests all use it. Each run gets a fresh Pulumi
runtime (its own context and mock monitor), so runs never leak into each other.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import engine_pb2, resource_pb2
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from core.paths import UNSET, PathError, set_path
from core.settings import NAMESPACE
from core.stack_config import carepath_sections, config_path
from offline.mocks import CarePathMocks
from offline.stack_yaml import StackFileError, stack_config

PROJECT = NAMESPACE  # Pulumi names a project's config namespace after the project
ROOT = Path(__file__).resolve().parent.parent
STACKS = ("demo", "staging", "production")
SECRET = "[secret]"


@dataclass(frozen=True)
class Registration:
    """One registered resource: what `pulumi up` would be asked to create."""

    urn: str
    type: str
    name: str
    parent: str  # parent URN; "" for the stack itself
    custom: bool
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    options: Mapping[str, Any] = field(default_factory=dict)
    # input name -> URNs of the resources whose outputs it takes (the request's `propertyDependencies`)
    dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    sequence: int = 0  # when the program constructed it (the stack is 0): the build order


@dataclass(frozen=True)
class Plan:
    """What a run registered (the stack root first, then by URN) and the stack outputs."""

    stack: str
    resources: tuple[Registration, ...]
    outputs: Mapping[str, Any]
    warnings: tuple[str, ...] = ()  # what the program logged as warnings (`pulumi.log.warn`), in order

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: Optional[str] = None) -> Registration:
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one {type_} {name or ''}, found {[r.name for r in found]}")
        return found[0]

    def children(self, parent: Registration) -> list[Registration]:
        return [r for r in self.resources if r.parent == parent.urn]

    @property
    def managed(self) -> list[Registration]:
        """Everything but the stack's root resource."""
        return [r for r in self.resources if r.type != "pulumi:pulumi:Stack"]


class ProgramFailed(Exception):
    """The program raised; `plan` holds what it had registered by then."""

    def __init__(self, cause: BaseException, plan: Plan):
        super().__init__(str(cause))
        self.cause = cause
        self.plan = plan


def _decode(value: Any) -> Any:
    """A property struct, as JSON, to plain values without rehydrating resources: a resource
    reference becomes its URN, a secret is masked, an unknown is marked, integral floats are ints.
    (Rehydrating a reference on the mock monitor's worker thread races the program's event loop.)"""
    if isinstance(value, dict):
        signature = value.get(rpc._special_sig_key)
        if signature == rpc._special_resource_sig:
            return value["urn"]
        if signature == rpc._special_secret_sig:
            return SECRET
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if value == rpc.UNKNOWN:
        return "[unknown]"
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _run_on_own_loop(awaitable: Any) -> Any:
    """Run a coroutine on the monitor's worker thread with a loop closed right after
    (a loop left open in a worker thread is collected noisily at interpreter exit)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(awaitable)
    finally:
        loop.close()


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, also keeping each registration's parent, inputs and options, and
    the stack outputs; resource references reach the mocks as URNs."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self.stack_outputs: dict[str, Any] = {}
        self.sequence: dict[str, int] = {}  # URN -> when the program constructed it

    def number_constructions(self) -> None:
        """Number each resource the program constructs from now on, in that order: registration
        itself waits on inputs and runs on worker threads, so its order varies from run to run."""
        root = pulumi.runtime.get_root_resource()
        urns: dict[int, str] = {id(root): self.make_urn("", "pulumi:pulumi:Stack", f"{PROJECT}-{pulumi.get_stack()}")}
        constructed: list[pulumi.Resource] = []  # kept alive, so no id is reused

        def number(args: pulumi.ResourceTransformationArgs) -> None:
            urn = self.make_urn(urns[id(args.opts.parent or root)], args.type_, args.name)
            constructed.append(args.resource)
            urns[id(args.resource)] = urn
            self.sequence[urn] = len(constructed)

        pulumi.runtime.register_stack_transformation(number)

    def RegisterResource(self, request):
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            self.registrations.append(Registration(urn, request.type, request.name, "", False, {}, {}))
            return resource_pb2.RegisterResourceResponse(urn=urn)
        inputs = _decode(json_format.MessageToDict(request.object))
        physical_id, state = self.mocks.new_resource(
            pulumi.runtime.MockResourceArgs(
                typ=request.type,
                name=request.name,
                inputs=inputs,
                provider=request.provider,
                resource_id=request.importId,
                custom=request.custom or False,
            )
        )
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, physical_id or "", state)
        self.registrations.append(
            Registration(
                urn=urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                custom=request.custom,
                inputs=inputs,
                outputs=_decode(state),
                options={
                    "protect": request.protect,
                    "deleteBeforeReplace": request.deleteBeforeReplace,
                    "ignoreChanges": list(request.ignoreChanges),
                    "replaceOnChanges": list(request.replaceOnChanges),
                    "dependsOn": sorted(request.dependencies),
                    "provider": request.provider,
                },
                dependencies={key: tuple(sorted(urns.urns)) for key, urns in request.propertyDependencies.items() if urns.urns},
                sequence=self.sequence[urn],
            )
        )
        state_struct = _run_on_own_loop(rpc.serialize_properties(state, {}))
        return resource_pb2.RegisterResourceResponse(urn=urn, id=physical_id or "", object=state_struct)

    def RegisterResourceOutputs(self, request):
        if request.urn.split("::")[2] == "pulumi:pulumi:Stack":
            self.stack_outputs = _decode(json_format.MessageToDict(request.outputs))
        return super().RegisterResourceOutputs(request)


class RecordingEngine(pulumi_mocks.MockEngine):
    """The SDK's mock engine, keeping the program's warnings for the plan rather than logging
    them, so each caller shows them its own way (the offline CLI on stderr)."""

    def __init__(self) -> None:
        super().__init__(None)
        self.warnings: list[str] = []

    def Log(self, request):
        if request.severity == engine_pb2.WARNING:
            self.warnings.append(request.message)
        else:
            super().Log(request)


def run_program(
    stack: str, config: Mapping[str, str], program: Callable[[], None], secret_keys: Sequence[str] = ()
) -> Plan:
    """Run `program` as stack `stack` with runtime config `config` (key -> string)."""
    region = config.get("aws:region", "us-east-1")
    monitor = RecordingMonitor(CarePathMocks(region))
    engine = RecordingEngine()

    def plan() -> Plan:
        # Registration order depends on the event loop; sort so plans of one config are identical.
        ordered = sorted(monitor.registrations, key=lambda r: (r.parent != "", r.urn))
        return Plan(stack=stack, resources=tuple(ordered), outputs=dict(monitor.stack_outputs), warnings=tuple(engine.warnings))

    def run() -> Plan:
        pulumi.runtime.set_all_config(dict(config), list(secret_keys))
        pulumi.runtime.settings.ROOT.set(None)
        pulumi.runtime.settings.configure(
            pulumi_mocks.MockSettings(
                monitor=monitor,
                monitor_features=set(monitor.GetDeploymentInfo(None).supportedFeatures),
                engine=engine,
                project=PROJECT,
                stack=stack,
                dry_run=False,
                organization="organization",
                callbacks=None,
            )
        )
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)

        def numbered() -> None:
            monitor.number_constructions()
            program()

        try:
            _sync_await(run_in_stack(numbered))
        except Exception as error:
            raise ProgramFailed(error, plan()) from error
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            # Join the mock monitor's worker threads, so their event loops go with them.
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
            asyncio.set_event_loop(None)
        return plan()

    return contextvars.Context().run(run)


# --- stack files and overrides -------------------------------------------------


def stack_file(stack: str) -> Path:
    return ROOT / f"Pulumi.{stack}.yaml"


def stack_names(root: Path = ROOT) -> tuple[str, ...]:
    """Every stack with a `Pulumi.<name>.yaml` in the project at `root` (a copied
    `Pulumi.dev.yaml` is a stack like the others)."""
    return tuple(sorted(path.name[len("Pulumi."):-len(".yaml")] for path in root.glob("Pulumi.*.yaml")))


def load_stack_config(stack: str, path: Optional[Path] = None) -> dict[str, Any]:
    """The `config:` of Pulumi.<stack>.yaml (or of the stack file at `path`), key -> decoded
    value, read strictly (`offline.stack_yaml`: StackFileError when refused)."""
    path = path or stack_file(stack)
    if not path.exists():
        here = stack_names(path.parent)
        raise StackFileError(path, "no such stack file" + (f" (stacks here: {', '.join(here)})" if here else ""))
    return stack_config(path)


def carepath_config(stack: str, path: Optional[Path] = None) -> dict[str, Any]:
    """The `carepath:` sections of Pulumi.<stack>.yaml (or of the stack file at `path`), section
    name -> value: the program's and the release driver's reading (`core.stack_config`)."""
    return carepath_sections(load_stack_config(stack, path))


def parse_value(text: str) -> Any:
    """A value as `pulumi config set --path` stores it: true/false and integers typed (`010`
    stays a string, as there), anything else a string; and, for whole lists and mappings, JSON
    (`[5, 50, 100]`, `{"tag": "v2"}`) or a list of plain items (`[/v1/models, /v1/chat]`, each
    typed the same way). ValueError for a bracketed value that is neither."""
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"[+-]?[0-9]+", text) and not (len(text) > 1 and text[0] == "0"):
        return int(text)
    if text[:1] not in ("[", "{"):
        return text
    try:
        return json.loads(text)
    except ValueError as error:
        inside = text[1:-1]
        if text[0] == "[" and text[-1] == "]" and not re.search(r'[\[\]{}"]', inside):
            return [parse_value(item.strip()) for item in inside.split(",")] if inside.strip() else []
        raise ValueError(f"{text} is neither JSON ({error}) nor a list of plain items such as [/v1/models, /v1/chat]") from None


def apply_overrides(
    config: Mapping[str, Any], overrides: Optional[Mapping[str, Any]] = None, unset: Sequence[str] = ()
) -> dict[str, Any]:
    """`config` with `--path`-style overrides (`services.chat-api.rollout.canary.weight` -> 25)
    and removals."""
    result = json.loads(json.dumps(dict(config)))  # deep copy
    for key, value in [*dict(overrides or {}).items(), *((key, UNSET) for key in unset)]:
        try:
            set_path(result, config_path(key), value if value is UNSET else copy.deepcopy(value))  # the caller's value stays its own
        except PathError as error:
            raise PathError(f"{key}: {error}") from None
    return result


SECRET_PLACEHOLDER = "offline-placeholder"


def _unseal(value: Any) -> tuple[Any, bool]:
    """`value` with every `{secure: ...}` leaf (which cannot be decrypted offline) replaced by a
    placeholder, and whether there was one."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return SECRET_PLACEHOLDER, True
    if isinstance(value, dict):
        pairs = {key: _unseal(item) for key, item in value.items()}
        return {key: item for key, (item, _) in pairs.items()}, any(found for _, found in pairs.values())
    return value, False


def runtime_config(config: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Stack-file values as the runtime hands them to the program (strings, JSON for the rest),
    and the keys holding encrypted values."""
    values, secret_keys = {}, []
    for key, raw in config.items():
        value, secret = _unseal(raw)
        values[key] = value if isinstance(value, str) else json.dumps(value)
        if secret:
            secret_keys.append(key)
    return values, secret_keys


def run_stack(stack: str, overrides: Optional[Mapping[str, Any]] = None, unset: Sequence[str] = (), stack_file_path: Optional[Path] = None) -> Plan:
    """Evaluate the program for Pulumi.<stack>.yaml (or another version of it, such as the base
    branch's) with overrides, entirely offline."""
    import program

    values, secret_keys = runtime_config(apply_overrides(load_stack_config(stack, stack_file_path), overrides, unset))
    return run_program(stack, values, program.main, secret_keys)

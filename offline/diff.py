"""What `pulumi up` would change between two offline plans of one stack.

Resources are matched by URN. A changed input is an update unless the provider
must replace the resource for it: `REPLACE_ON` lists, per type, the force-new
properties among those this program sets (from the providers' schemas and the
Kubernetes API's immutable fields), and a resource's own `replaceOnChanges`
option counts too. It is the engine's diff without the engine: good enough to
prove what a release step touches, not a substitute for `pulumi preview`.

Two rules bring it closer to the engine's preview:
- Propagation. Under the mocks a replaced resource keeps its fake outputs, so a
  resource taking one of them would read unchanged; at preview that output is
  unknown. An input that depends (the registration's `propertyDependencies`) on a
  created or replaced resource is therefore unknown where it holds one of that
  resource's computed outputs (or wholly, when none is found in it): its resource
  updates, or is replaced when that input forces replacement, and so on along
  the dependencies.
- Named lists. Lists whose items all carry a distinct `name` (routes, containers,
  ports, volumes, env, ...), and a listener rule's conditions (by kind), are
  compared item by name, so a new route is one added item (`spec.http[testers]:
  + {...}`), not every later position shifting. An item added to or removed from
  the end of any other list of objects is one item too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Optional, Sequence

from offline.harness import Plan, Registration
from offline.render import flatten, show

_KUBERNETES_IDENTITY = ("metadata.name", "metadata.namespace")
REPLACE_ON: dict[str, tuple[str, ...]] = {
    "awsx:ec2:Vpc": ("cidrBlock", "numberOfAvailabilityZones", "subnetSpecs"),
    "eks:index:Cluster": ("name", "vpcId", "encryptionConfigKeyArn"),
    "eks:index:ManagedNodeGroup": ("amiType", "instanceTypes", "subnetIds", "nodeRoleArn", "cluster"),
    "eks:index:VpcCniAddon": ("clusterName",),
    "aws:ecr/repository:Repository": ("name", "encryptionConfigurations"),
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": ("repository",),
    "aws:iam/role:Role": ("name", "path"),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("role", "policyArn"),
    "aws:lb/loadBalancer:LoadBalancer": ("name", "internal", "loadBalancerType"),
    "aws:lb/targetGroup:TargetGroup": ("name", "port", "protocol", "targetType", "vpcId"),
    "aws:lb/listenerRule:ListenerRule": ("listenerArn",),
    "aws:ec2/securityGroup:SecurityGroup": ("name", "vpcId", "description"),
    "kubernetes:apps/v1:Deployment": _KUBERNETES_IDENTITY + ("spec.selector",),
    "kubernetes:core/v1:Service": _KUBERNETES_IDENTITY + ("spec.clusterIP",),
}

Action = Literal["create", "update", "replace", "delete"]
SYMBOL = {"create": "+", "update": "~", "replace": "+-", "delete": "-"}


UNKNOWN_SHOWN = "output<string>"  # what `pulumi preview --diff` prints for a value known only after the update


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: Any
    after: Any
    unknown: bool = False  # `after` is known only once a resource it depends on exists (see propagation)


@dataclass(frozen=True)
class Change:
    action: Action
    type: str
    name: str
    urn: str
    fields: tuple[FieldChange, ...] = ()
    replace_because: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanDiff:
    stack: str
    changes: tuple[Change, ...]
    unchanged: int
    outputs: tuple[FieldChange, ...]

    def of(self, action: Action) -> list[Change]:
        return [c for c in self.changes if c.action == action]


def _replace_triggers(resource: Registration) -> tuple[str, ...]:
    rules = REPLACE_ON.get(resource.type)
    if rules is None and resource.type.startswith("kubernetes:"):
        rules = _KUBERNETES_IDENTITY
    return tuple(rules or ()) + tuple(resource.options.get("replaceOnChanges", ()))


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "[")


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """`flatten`, with the items of a named list under their names (`containers[chat-api].image`)."""
    names = _names(value, prefix)
    if names is None:
        if isinstance(value, Mapping) and value:
            return {p: v for key, item in value.items() for p, v in _leaves(item, f"{prefix}.{key}" if prefix else str(key)).items()}
        if isinstance(value, list) and any(isinstance(v, (Mapping, list)) for v in value):
            return {p: v for index, item in enumerate(value) for p, v in _leaves(item, f"{prefix}[{index}]").items()}
        return flatten(value, prefix)
    return {p: v for name, item in zip(names, value, strict=True) for p, v in _leaves(item, f"{prefix}[{name}]").items()}


def _names(items: Any, path: str) -> Optional[list[str]]:
    """The items' keys when `items` is a named list: every item carries a distinct string `name`,
    or, for a listener rule's `conditions` (no names; one condition of a kind each), its kind."""
    if not isinstance(items, list) or not items or not all(isinstance(i, Mapping) for i in items):
        return None
    if path == "conditions" and all(len(i) == 1 for i in items):
        names = [next(iter(i)) for i in items]
    elif all(isinstance(i.get("name"), str) for i in items):
        names = [i["name"] for i in items]
    else:
        return None
    return names if len(set(names)) == len(names) else None


def _changes(before: Any, after: Any, path: str) -> list[FieldChange]:
    if isinstance(before, Mapping) and isinstance(after, Mapping) and (before or after):
        return [c for key in sorted({*before, *after}) for c in _changes(before.get(key), after.get(key), f"{path}.{key}" if path else str(key))]
    old_names, new_names = _names(before, path), _names(after, path)
    if (old_names or before in (None, [])) and (new_names or after in (None, [])) and (old_names or new_names):
        old = dict(zip(old_names or (), before or (), strict=True))
        new = dict(zip(new_names or (), after or (), strict=True))
        out: list[FieldChange] = []
        for name in [*(new_names or ()), *(n for n in old_names or () if n not in new)]:
            item_path = f"{path}[{name}]"
            if name in old and name in new:
                out += _changes(old[name], new[name], item_path)
            else:
                out.append(FieldChange(item_path, old.get(name), new.get(name)))
        return out
    if isinstance(before, list) and isinstance(after, list) and any(isinstance(v, (Mapping, list)) for v in (*before, *after)):
        common = min(len(before), len(after))
        return [
            *(c for index in range(common) for c in _changes(before[index], after[index], f"{path}[{index}]")),
            *(FieldChange(f"{path}[{index}]", None, item) for index, item in enumerate(after[common:], common)),
            *(FieldChange(f"{path}[{index}]", item, None) for index, item in enumerate(before[common:], common)),
        ]
    flat_before, flat_after = _leaves(before, path), _leaves(after, path)
    return [
        FieldChange(leaf, flat_before.get(leaf), flat_after.get(leaf))
        for leaf in sorted(set(flat_before) | set(flat_after))
        if flat_before.get(leaf) != flat_after.get(leaf)
    ]


def _field_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    return tuple(_changes(dict(before), dict(after), ""))


def _computed(resource: Registration) -> set[str]:
    """The string values among `resource`'s outputs that the provider computes (not echoed
    inputs): what is unknown at preview when it is created or replaced."""
    inputs = _leaves(dict(resource.inputs))
    values: set[str] = set()
    for path, value in _leaves(dict(resource.outputs)).items():
        if inputs.get(path) == value:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and len(item) >= 8:  # short strings ("ip", "HTTPS") would match by chance
                values.add(item)
    return values


def _unknown_paths(resource: Registration, key: str, computed: set[str]) -> list[str]:
    """The leaves of input `key` holding one of `computed`, or `key` itself when none does
    (the value went through a transformation the mocks cannot see through)."""
    leaves = _leaves(resource.inputs.get(key), key)
    found = [
        path
        for path, value in leaves.items()
        if any(isinstance(item, str) and any(c in item for c in computed) for item in (value if isinstance(value, list) else [value]))
    ]
    return found or [key]


def diff_plans(base: Plan, head: Plan) -> PlanDiff:
    before = {r.urn: r for r in base.managed}
    after = {r.urn: r for r in head.managed}
    known = {urn: _field_changes(before[urn].inputs, r.inputs) for urn, r in after.items() if urn in before}
    unknown: dict[str, dict[str, FieldChange]] = {urn: {} for urn in known}

    def action(urn: str) -> Optional[Action]:
        if urn not in before:
            return "create"
        fields = [*known[urn], *unknown[urn].values()]
        if not fields:
            return None
        return "replace" if _replace_because(after[urn], fields) else "update"

    # Propagate to a fixed point: each round may replace more resources, whose dependents follow.
    changed = True
    while changed:
        changed = False
        fresh = {urn for urn in after if action(urn) in ("create", "replace")}
        for urn, resource in after.items():
            if urn not in before:
                continue
            for key, urns in resource.dependencies.items():
                # The SDK names a local component's children here, and a remote one (awsx, eks) itself,
                # whose outputs the mocks compute as a resource's.
                sources = [after[u] for u in urns if u in fresh]
                if not sources:
                    continue
                computed = set().union(*(_computed(source) for source in sources))
                olds = {f.path: f.before for f in known[urn]}
                for path in _unknown_paths(resource, key, computed):
                    if path not in unknown[urn]:
                        before_value = olds[path] if path in olds else _leaves(before[urn].inputs.get(key), key).get(path)
                        unknown[urn][path] = FieldChange(path, before_value, None, unknown=True)
                        changed = True

    changes: list[Change] = []
    unchanged = 0
    for urn, resource in after.items():
        kind = action(urn)
        if kind is None:
            unchanged += 1
            continue
        if kind == "create":
            changes.append(Change("create", resource.type, resource.name, urn))
            continue
        fields = tuple(sorted([*(f for f in known[urn] if f.path not in unknown[urn]), *unknown[urn].values()], key=lambda f: f.path))
        changes.append(Change(kind, resource.type, resource.name, urn, fields, _replace_because(resource, fields)))
    changes += [Change("delete", r.type, r.name, urn) for urn, r in before.items() if urn not in after]
    return PlanDiff(head.stack, tuple(changes), unchanged, _field_changes(base.outputs, head.outputs))


def _replace_because(resource: Registration, fields: Sequence[FieldChange]) -> tuple[str, ...]:
    triggers = _replace_triggers(resource)
    return tuple(f.path for f in fields if any(_under(f.path, t) for t in triggers))


def _shown(field: FieldChange) -> str:
    if field.unknown:
        return f"{show(field.before)} → {UNKNOWN_SHOWN}"
    if field.before is None and isinstance(field.after, Mapping):
        return f"+ {show(field.after)}"
    if field.after is None and isinstance(field.before, Mapping):
        return f"- {show(field.before)}"
    return f"{show(field.before)} → {show(field.after)}"


def render_diff(diff: PlanDiff) -> str:
    lines = [f"Offline diff of stack {diff.stack}:"]
    for change in diff.changes:
        note = f"  (replace: {', '.join(change.replace_because)} changed)" if change.replace_because else ""
        lines.append(f"{SYMBOL[change.action]:>2} {change.action:<8} {change.name}  [{change.type}]{note}")
        lines += [f"        {f.path}: {_shown(f)}" for f in change.fields]
    if diff.outputs:
        lines.append("Outputs:")
        lines += [f"  ~ {f.path}: {show(f.before)} → {show(f.after)}" for f in diff.outputs]

    def count(action: Action) -> str:
        propagated = sum(1 for c in diff.of(action) if any(f.unknown for f in c.fields))
        return f"{len(diff.of(action))} to {action}" + (f" ({propagated} by propagation)" if propagated else "")

    lines.append(f"Summary: {', '.join(count(a) for a in ('create', 'update', 'replace', 'delete'))}, {diff.unchanged} unchanged")
    return "\n".join(lines)


def diff_json(diff: PlanDiff) -> str:
    return json.dumps(
        {
            "stack": diff.stack,
            "unchanged": diff.unchanged,
            "changes": [
                {
                    "action": c.action,
                    "type": c.type,
                    "name": c.name,
                    "urn": c.urn,
                    "replaceBecause": list(c.replace_because),
                    "fields": [{"path": f.path, "before": f.before, "after": f.after, "unknown": f.unknown} for f in c.fields],
                }
                for c in diff.changes
            ],
            "outputs": [{"path": f.path, "before": f.before, "after": f.after} for f in diff.outputs],
        },
        indent=2,
    )

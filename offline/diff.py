"""What `pulumi up` would change between two offline plans of one stack.

Resources are matched by URN. A changed input is an update unless the provider
must replace the resource for it: `REPLACE_ON` lists, per type, the force-new
properties among those this program sets (from the providers' schemas and the
Kubernetes API's immutable fields), and a resource's own `replaceOnChanges`
option counts too. It is the engine's diff without the engine: good enough to
prove what a release step touches, not a substitute for `pulumi preview`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, Optional

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


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: Any
    after: Any


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


def _field_changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[FieldChange, ...]:
    flat_before, flat_after = flatten(before), flatten(after)
    return tuple(
        FieldChange(path, flat_before.get(path), flat_after.get(path))
        for path in sorted(set(flat_before) | set(flat_after))
        if flat_before.get(path) != flat_after.get(path)
    )


def diff_plans(base: Plan, head: Plan) -> PlanDiff:
    before = {r.urn: r for r in base.managed}
    after = {r.urn: r for r in head.managed}
    changes: list[Change] = []
    unchanged = 0
    for urn, resource in after.items():
        old: Optional[Registration] = before.get(urn)
        if old is None:
            changes.append(Change("create", resource.type, resource.name, urn))
            continue
        fields = _field_changes(dict(old.inputs), dict(resource.inputs))
        if not fields:
            unchanged += 1
            continue
        triggers = _replace_triggers(resource)
        because = tuple(f.path for f in fields if any(_under(f.path, t) for t in triggers))
        action: Action = "replace" if because else "update"
        changes.append(Change(action, resource.type, resource.name, urn, fields, because))
    changes += [Change("delete", r.type, r.name, urn) for urn, r in before.items() if urn not in after]
    return PlanDiff(head.stack, tuple(changes), unchanged, _field_changes(dict(base.outputs), dict(head.outputs)))


def render_diff(diff: PlanDiff) -> str:
    lines = [f"Offline diff of stack {diff.stack}:"]
    for change in diff.changes:
        note = f"  (replace: {', '.join(change.replace_because)} changed)" if change.replace_because else ""
        lines.append(f"{SYMBOL[change.action]:>2} {change.action:<8} {change.name}  [{change.type}]{note}")
        lines += [f"        {f.path}: {show(f.before)} → {show(f.after)}" for f in change.fields]
    if diff.outputs:
        lines.append("Outputs:")
        lines += [f"  ~ {f.path}: {show(f.before)} → {show(f.after)}" for f in diff.outputs]
    counts = ", ".join(f"{len(diff.of(a))} to {a}" for a in ("create", "update", "replace", "delete"))
    lines.append(f"Summary: {counts}, {diff.unchanged} unchanged")
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
                    "fields": [{"path": f.path, "before": f.before, "after": f.after} for f in c.fields],
                }
                for c in diff.changes
            ],
            "outputs": [{"path": f.path, "before": f.before, "after": f.after} for f in diff.outputs],
        },
        indent=2,
    )

"""The offline plan as a reviewer reads it: the resource tree with the fields that
matter per type, or everything as JSON."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Iterator, Mapping

from offline.harness import Plan, Registration

# Per resource type, the input paths a reviewer looks at first; `--json` has all of them.
KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "awsx:ec2:Vpc": ("cidrBlock", "numberOfAvailabilityZones", "natGateways.strategy"),
    "eks:index:Cluster": (
        "name",
        "version",
        "authenticationMode",
        "endpointPublicAccess",
        "publicAccessCidrs",
        "enabledClusterLogTypes",
        "encryptionConfigKeyArn",
        "deletionProtection",
    ),
    "eks:index:ManagedNodeGroup": ("amiType", "instanceTypes", "scalingConfig"),
    "eks:index:VpcCniAddon": ("clusterName", "serviceAccountRoleArn"),
    "aws:kms/key:Key": ("enableKeyRotation", "deletionWindowInDays"),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("policyArn",),
    "aws:ecr/repository:Repository": (
        "name",
        "imageTagMutability",
        "imageScanningConfiguration.scanOnPush",
        "encryptionConfigurations",
    ),
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": ("policy",),
    "aws:lb/loadBalancer:LoadBalancer": ("internal", "idleTimeout", "dropInvalidHeaderFields"),
    "aws:lb/targetGroup:TargetGroup": ("port", "targetType", "deregistrationDelay", "healthCheck.path"),
    "aws:lb/listener:Listener": ("port", "protocol", "sslPolicy", "defaultActions"),
    "aws:lb/listenerRule:ListenerRule": ("priority", "conditions", "actions"),
    "aws:ec2/securityGroup:SecurityGroup": ("ingress", "egress"),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": ("fromPort", "toPort", "referencedSecurityGroupId"),
    "kubernetes:helm.sh/v4:Chart": ("chart", "version", "namespace"),
    "kubernetes:yaml/v2:ConfigFile": ("file",),
    "kubernetes:core/v1:Namespace": ("metadata.name", "metadata.labels"),
    "kubernetes:apps/v1:Deployment": (
        "metadata.namespace",
        "spec.replicas",
        "spec.selector.matchLabels",
        "spec.strategy.rollingUpdate",
        "spec.template.spec.containers",
    ),
    "kubernetes:core/v1:Service": ("metadata.namespace", "spec.selector", "spec.ports"),
    "kubernetes:policy/v1:PodDisruptionBudget": ("spec.maxUnavailable", "spec.selector.matchLabels"),
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": ("spec.minReplicas", "spec.maxReplicas"),
    "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding": ("spec.serviceRef", "spec.targetGroupARN"),
    "kubernetes:networking.istio.io/v1:Gateway": ("spec.servers",),
    "kubernetes:networking.istio.io/v1:VirtualService": ("spec.hosts", "spec.gateways", "spec.http"),
    "kubernetes:networking.istio.io/v1:DestinationRule": ("spec.host", "spec.subsets"),
    "kubernetes:security.istio.io/v1:PeerAuthentication": ("spec.mtls.mode",),
    "kubernetes:gateway.networking.k8s.io/v1:Gateway": ("spec.gatewayClassName", "spec.listeners"),
    "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute": ("spec.parentRefs", "spec.hostnames", "spec.rules"),
    "kubernetes:monitoring.coreos.com/v1:ServiceMonitor": ("spec.namespaceSelector", "spec.selector"),
}


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested inputs to `path -> leaf` (`spec.template.spec.containers[0].image`)."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and any(isinstance(v, (Mapping, list)) for v in value):
        out = {}
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{index}]"))
        return out
    return {prefix: value}


def lookup(inputs: Mapping[str, Any], path: str) -> Any:
    node: Any = inputs
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def show(value: Any) -> str:
    if isinstance(value, str):
        return value if value and " " not in value and len(value) < 120 else json.dumps(value)
    return json.dumps(value, separators=(", ", ": "))


def _summary(resource: Registration) -> Iterator[str]:
    for path in KEY_FIELDS.get(resource.type, ()):
        value = lookup(resource.inputs, path)
        if value is None:
            continue
        if path == "policy" and isinstance(value, str):
            value = [rule.get("description") for rule in json.loads(value).get("rules", [])]
        if path == "spec.template.spec.containers":
            value = [{"image": c.get("image"), "resources": c.get("resources")} for c in value]
        yield f"{path}: {show(value)}"


def type_counts(plan: Plan) -> list[tuple[str, int]]:
    """How many resources of each type the plan has, the most common first (then by name)."""
    counts = Counter(resource.type for resource in plan.managed)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def render_tree(plan: Plan) -> str:
    """The tree in build order: each resource's children in the order the program constructed them,
    so the platform comes first (network, cluster, edge, ...), then each service; then the count
    of each resource type."""
    by_parent: dict[str, list[Registration]] = {}
    for resource in sorted(plan.resources, key=lambda r: r.sequence):
        by_parent.setdefault(resource.parent, []).append(resource)
    lines = [f"Offline plan of stack {plan.stack}: {len(plan.managed)} resources (mocked providers, no cloud calls)", ""]

    def walk(resource: Registration, prefix: str, last: bool, root: bool) -> None:
        branch = "" if root else ("└── " if last else "├── ")
        lines.append(f"{prefix}{branch}{resource.name}  [{resource.type}]")
        child_prefix = prefix if root else prefix + ("    " if last else "│   ")
        children = by_parent.get(resource.urn, [])
        for field in _summary(resource):
            lines.append(f"{child_prefix}{'│ ' if children else '  '}    {field}")
        for index, child in enumerate(children):
            walk(child, child_prefix, index == len(children) - 1, False)

    for root in by_parent.get("", []):
        walk(root, "", True, True)
    counts = type_counts(plan)
    width = max((len(type_) for type_, _ in counts), default=0)
    lines += ["", "Resources by type:"] + [f"  {type_:<{width}}  {count:>3}" for type_, count in counts]
    lines += [f"  {'total':<{width}}  {len(plan.managed):>3}"]
    lines += ["", "Outputs:"] + [f"  {key}: {show(value)}" for key, value in sorted(plan.outputs.items())]
    return "\n".join(lines)


def render_json(plan: Plan) -> str:
    return json.dumps(
        {
            "stack": plan.stack,
            "resources": [
                {
                    "urn": r.urn,
                    "type": r.type,
                    "name": r.name,
                    "parent": r.parent,
                    "custom": r.custom,
                    "inputs": r.inputs,
                    "options": r.options,
                    "sequence": r.sequence,  # the list is by URN; sorted by this, it is in build order
                }
                for r in plan.resources
            ],
            "outputs": plan.outputs,
        },
        indent=2,
        sort_keys=True,
    )

"""ServiceNetworkPolicy: what one service's pods may receive and send, as a `networking.k8s.io/v1`
NetworkPolicy in each namespace its tracks run in (the rules are `core.network_policy`'s).

The VPC CNI enforces them (`enableNetworkPolicy` on its add-on, `components.cluster`), on top of
each app namespace's default deny (`components.namespace`). What must keep working does:

- the ALB's traffic and its health checks (the load balancer controller's target groups point
  at the pods' IPs) come from the ALB's nodes to the backends' ports, both admitted from the
  ALB's address blocks; with a mesh router the ALB reaches the ingress gateway instead, outside
  the app namespaces, and the gateway's pods are admitted to the service port;
- Prometheus scrapes from the `monitoring` namespace: the metrics port, or with sidecars Istio's
  merged metrics port (15020), both admitted;
- kubelet probes come from the pod's own node: Kubernetes' NetworkPolicy does not let a pod
  block its node, and the VPC CNI's network policy agent allows the node's IP to and from every
  policy it enforces (aws-network-policy-agent #56, #65); with sidecars, Istio rewrites the
  probes to the sidecar's status port, still from the kubelet;
- sidecars reach istiod for their configuration and certificates (15012).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from core.network_policy import NAME_LABEL, Allow, Peer, ServicePolicy

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set by Kubernetes on every namespace


def peers(peer: Peer) -> list[dict[str, Any]]:
    if peer.cidrs:
        return [{"ipBlock": {"cidr": cidr}} for cidr in peer.cidrs]
    selected: dict[str, Any] = {}
    if peer.namespaces:
        selected["namespaceSelector"] = {"matchExpressions": [{"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": list(peer.namespaces)}]}
    if peer.pods:
        selected["podSelector"] = {"matchLabels": dict(peer.pods)}
    return [selected]


def rule(allow: Allow, direction: str) -> dict[str, Any]:
    """An ingress (`from`) or egress (`to`) rule of a NetworkPolicy."""
    ports = [{"port": port, "protocol": protocol} for port in allow.ports for protocol in allow.protocols]
    return {direction: peers(allow.peer), "ports": ports}


def policy_spec(pods: Mapping[str, str], ingress: Optional[Sequence[Allow]], egress: Optional[Sequence[Allow]]) -> dict[str, Any]:
    """The spec of a policy over the pods labelled `pods` (empty: every pod of the namespace);
    a direction given, even with no rules, is governed by it (no rules: nothing allowed)."""
    spec: dict[str, Any] = {"podSelector": {"matchLabels": dict(pods)} if pods else {}, "policyTypes": []}
    if ingress is not None:
        spec["policyTypes"].append("Ingress")
        spec["ingress"] = [rule(allow, "from") for allow in ingress]
    if egress is not None:
        spec["policyTypes"].append("Egress")
        spec["egress"] = [rule(allow, "to") for allow in egress]
    return spec


@dataclass(frozen=True)
class ServiceNetworkPolicyArgs:
    policy: ServicePolicy
    namespaces: Mapping[str, pulumi.Input[str]]  # namespace name -> the namespace resource's output


class ServiceNetworkPolicy(pulumi.ComponentResource):
    policies: list[k8s.networking.v1.NetworkPolicy]

    def __init__(self, name: str, args: ServiceNetworkPolicyArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:network:ServiceNetworkPolicy", name, None, opts)
        policy = args.policy
        spec = policy_spec({NAME_LABEL: policy.service}, policy.ingress, policy.egress)
        self.policies = [
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{namespace}",  # by namespace: a blue/green switch never renames one
                metadata={"name": policy.service, "namespace": args.namespaces[namespace]},
                spec=spec,  # pyright: ignore[reportArgumentType]
                opts=pulumi.ResourceOptions(parent=self),
            )
            for namespace in policy.namespaces
        ]
        self.register_outputs({})

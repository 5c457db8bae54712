"""AppNamespace: a namespace the stack's services run in, `carepath-<stack>` (and, for
blue/green with `isolation: namespace`, one per colour).

It enforces the "restricted" Pod Security Standard (pinned to the cluster's minor version, so
an upgrade never tightens it silently) and has the AWS Load Balancer Controller inject pod
readiness gates, so a rolling update waits until the ALB sees each new pod healthy before it
removes an old one. Sidecars are not a namespace's choice: a service whose router routes in
the mesh labels its own pods for injection and requires mutual TLS for them
(`components.service`), so services on the ALB and in the mesh can share a namespace.

Its pods get no traffic and reach nothing but cluster DNS unless a policy allows it: a
`default-deny` NetworkPolicy over every pod, both directions, and `allow-dns`; each service
opens exactly what it needs (`components.network_policy`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.mesh import APP_NAMESPACE_LABEL
from components.network_policy import policy_spec
from core.network_policy import namespace_allows


@dataclass(frozen=True)
class AppNamespaceArgs:
    name: str
    kubernetes_version: str


def namespace_labels(kubernetes_version: str) -> dict[str, str]:
    version = f"v{kubernetes_version}"
    return {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": version,
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": version,
        "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled",
        APP_NAMESPACE_LABEL: "true",
    }


class AppNamespace(pulumi.ComponentResource):
    name: pulumi.Output[str]

    def __init__(self, name: str, args: AppNamespaceArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:namespace:AppNamespace", name, None, opts)
        namespace = k8s.core.v1.Namespace(
            name,
            metadata={"name": args.name, "labels": namespace_labels(args.kubernetes_version)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.name = namespace.metadata.apply(lambda metadata: metadata["name"])
        for policy, spec in (("default-deny", policy_spec({}, [], [])), ("allow-dns", policy_spec({}, None, namespace_allows()))):
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{policy}",
                metadata={"name": policy, "namespace": self.name},
                spec=spec,  # pyright: ignore[reportArgumentType]
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"name": self.name})

"""AppNamespace: the stack's namespace, `carepath-<stack>`.

It enforces the "restricted" Pod Security Standard (pinned to the cluster's
minor version, so an upgrade never tightens it silently) and has the AWS Load
Balancer Controller inject pod readiness gates, so a rolling update waits until
the ALB sees each new pod healthy before it removes an old one. With the mesh,
its pods get Istio sidecars and only mutual TLS (PeerAuthentication STRICT).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s


@dataclass(frozen=True)
class AppNamespaceArgs:
    name: str
    kubernetes_version: str
    mesh: Optional[pulumi.Resource] = None  # the mesh's control plane, when the mesh is on


def namespace_labels(kubernetes_version: str, mesh: bool) -> dict[str, str]:
    version = f"v{kubernetes_version}"
    return {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": version,
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": version,
        "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled",
        **({"istio-injection": "enabled"} if mesh else {}),
    }


class AppNamespace(pulumi.ComponentResource):
    name: pulumi.Output[str]

    def __init__(self, name: str, args: AppNamespaceArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:namespace:AppNamespace", name, None, opts)
        namespace = k8s.core.v1.Namespace(
            name,
            metadata={"name": args.name, "labels": namespace_labels(args.kubernetes_version, args.mesh is not None)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.name = namespace.metadata.apply(lambda metadata: metadata["name"])
        if args.mesh is not None:
            k8s.apiextensions.CustomResource(
                f"{name}-mtls",
                api_version="security.istio.io/v1",
                kind="PeerAuthentication",
                metadata={"name": "default", "namespace": self.name},
                spec={"mtls": {"mode": "STRICT"}},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[args.mesh]),
            )
        self.register_outputs({"name": self.name})

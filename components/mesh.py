"""IstioMesh: Istio from its Helm charts, in order: `base` (CRDs), `cni`, `istiod`, and
the `gateway` that the ALB targets.

- Charts come from https://blob.istio.io/istio-release/charts at `mesh.istioVersion`.
- The validating webhook is rendered `failurePolicy: Fail` (`base.validationFailurePolicy`):
  istiod turns an `Ignore` into `Fail` once it is up, which Pulumi would then undo on
  every `up`; rendering `Fail` from the start leaves nothing to fight over.
- Istio CNI sets up pod networking instead of the `istio-init` container, which needs
  NET_ADMIN and NET_RAW: injected pods still meet the "restricted" standard. The CNI
  node agent itself is privileged, so `istio-system` is a privileged namespace.
- The gateway runs in `istio-ingress` as a ClusterIP Service on port 80; a
  TargetGroupBinding hands its pods to the ALB's target group, created before the
  gateway's pods so they get the ALB readiness gate. The ALB stays the one entrypoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from components.load_balancer_controller import target_group_binding

CHART_REPOSITORY = "https://blob.istio.io/istio-release/charts"
SYSTEM_NAMESPACE = "istio-system"
GATEWAY_NAMESPACE = "istio-ingress"
GATEWAY_NAME = "istio-ingressgateway"  # the chart labels its pods istio: ingressgateway
GATEWAY_SELECTOR = {"istio": "ingressgateway"}
GATEWAY_PORT = 80
GATEWAY_HEALTH_PORT = 15021  # the gateway's status port
GATEWAY_HEALTH_PATH = "/healthz/ready"


@dataclass(frozen=True)
class IstioMeshArgs:
    version: str
    gateway_target_group_arn: pulumi.Input[str]
    controller: pulumi.Resource  # the load balancer controller (TargetGroupBinding CRD and webhook)


class IstioMesh(pulumi.ComponentResource):
    """Kubernetes children use the provider given in `opts.providers`."""

    control_plane: k8s.helm.v4.Chart  # istiod: its injection webhook must be up before pods that want sidecars

    def __init__(self, name: str, args: IstioMeshArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:mesh:IstioMesh", name, None, opts)

        def chart(release: str, chart_name: str, namespace: k8s.core.v1.Namespace, values: dict[str, Any], after: list[pulumi.Resource]) -> k8s.helm.v4.Chart:
            return k8s.helm.v4.Chart(
                release,
                chart=chart_name,
                version=args.version,
                repository_opts={"repo": CHART_REPOSITORY},
                namespace=namespace.metadata.apply(lambda metadata: metadata["name"]),
                values=values,
                opts=pulumi.ResourceOptions(parent=self, depends_on=after),
            )

        system = k8s.core.v1.Namespace(
            SYSTEM_NAMESPACE,
            metadata={"name": SYSTEM_NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "privileged"}},
            opts=pulumi.ResourceOptions(parent=self),
        )
        ingress = k8s.core.v1.Namespace(
            GATEWAY_NAMESPACE,
            metadata={
                "name": GATEWAY_NAMESPACE,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "baseline",
                    "pod-security.kubernetes.io/warn": "restricted",
                    "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled",
                },
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        no_flip = {"validationFailurePolicy": "Fail"}
        base = chart("istio-base", "base", system, {"base": no_flip, "defaultRevision": "default"}, [])
        cni = chart("istio-cni", "cni", system, {"cni": {"ambient": {"enabled": False}}}, [base])
        self.control_plane = chart(
            "istiod",
            "istiod",
            system,
            {
                "base": no_flip,
                "pilot": {"cni": {"enabled": True}, "autoscaleMin": 2},
                "meshConfig": {"accessLogFile": "/dev/stdout"},
                "global": {"proxy": {"holdApplicationUntilProxyStarts": True}},
            },
            [cni],
        )
        binding = target_group_binding(
            GATEWAY_NAME,
            GATEWAY_NAMESPACE,
            GATEWAY_NAME,
            GATEWAY_PORT,
            args.gateway_target_group_arn,
            pulumi.ResourceOptions(parent=self, depends_on=[args.controller, ingress]),
        )
        chart(
            GATEWAY_NAME,
            "gateway",
            ingress,
            {
                "service": {"type": "ClusterIP", "ports": [{"name": "http", "port": GATEWAY_PORT, "targetPort": GATEWAY_PORT, "protocol": "TCP"}]},
                "autoscaling": {"minReplicas": 2},
            },
            [self.control_plane, binding],
        )
        self.register_outputs({"gateway": GATEWAY_NAME})

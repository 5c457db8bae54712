"""IstioMesh: Istio from its Helm charts, in order: `base` (CRDs), `cni`, `istiod`, and
the `gateway` that the ALB targets.

- Charts come from https://blob.istio.io/istio-release/charts at `mesh.istioVersion`.
- The validating webhook is rendered `failurePolicy: Fail` (`base.validationFailurePolicy`):
  istiod turns an `Ignore` into `Fail` once it is up, which Pulumi would then undo on
  every `up`; rendering `Fail` from the start leaves nothing to fight over.
- Istio CNI sets up pod networking instead of the `istio-init` container, which needs
  NET_ADMIN and NET_RAW: injected pods still meet the "restricted" standard. The CNI
  node agent itself is privileged, so `istio-system` is a privileged namespace.
- The ingress gateway (when an istio-routed service needs it) runs in `istio-ingress` as a
  ClusterIP Service on port 443, with one Istio `Gateway` (`istio-ingress/edge`, any host,
  terminating the ALB's TLS with a certificate from the in-cluster CA,
  `components.certificates`) that the services' VirtualServices bind to; a
  TargetGroupBinding hands its pods to the ALB's target group, created before the gateway's
  pods so they get the ALB readiness gate. The ALB stays the one entrypoint.
- The Gateway API (when a gateway-api-routed service needs it): its standard-channel CRDs at
  `GATEWAY_API_VERSION`, installed before istiod so Istio serves them from the start, and one
  `Gateway` (`istio-ingress/carepath`, class `istio`, an HTTPS listener with a certificate of
  its own) that Istio deploys as a ClusterIP Service `carepath-istio`, bound to the ALB's
  `gateway-api` target group the same way. From either gateway on, traffic is Istio's mutual
  TLS; their status port (`GATEWAY_HEALTH_PORT`, the ALB's health check) speaks plain HTTP.
- Node drains never take a component down: istiod and both gateways run at least
  `MIN_REPLICAS` pods under a PodDisruptionBudget of `minAvailable: 1`. The charts render
  theirs from values; for the Gateway API's Gateway, Istio renders the HPA and the PDB it
  deploys from the ConfigMap the Gateway's `infrastructure.parametersRef` names (Istio
  renders neither without it), so both live and die with the Gateway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.certificates import certificate
from components.load_balancer_controller import target_group_binding
from core.edge import TLS_CIPHERS

CHART_REPOSITORY = "https://blob.istio.io/istio-release/charts"
SYSTEM_NAMESPACE = "istio-system"
GATEWAY_NAMESPACE = "istio-ingress"
GATEWAY_NAME = "istio-ingressgateway"  # the chart labels its pods istio: ingressgateway
GATEWAY_SELECTOR = {"istio": "ingressgateway"}
GATEWAY_PORT = 443  # HTTPS, from the ALB
GATEWAY_API_LISTENER = "https"  # the Gateway API gateway's listener: the routes' sectionName
GATEWAY_HEALTH_PORT = 15021  # the gateway's status port
GATEWAY_HEALTH_PATH = "/healthz/ready"
GATEWAY_BACKEND = "gateway"  # the edge's target group for the ingress gateway
MESH_GATEWAY = f"{GATEWAY_NAMESPACE}/edge"  # the Istio Gateway VirtualServices bind to
GATEWAY_API_VERSION = "v1.4.0"
GATEWAY_API_CRDS = f"https://github.com/kubernetes-sigs/gateway-api/releases/download/{GATEWAY_API_VERSION}/standard-install.yaml"
GATEWAY_API_BACKEND = "gateway-api"  # the edge's target group for the Gateway API's Gateway
GATEWAY_API_NAME = "carepath"
GATEWAY_API_SERVICE = f"{GATEWAY_API_NAME}-istio"  # Istio names the Service it deploys for a Gateway so
GATEWAY_API_OPTIONS = f"{GATEWAY_API_NAME}-options"  # the ConfigMap Istio reads the Gateway's HPA and PDB from
# The gateways' certificates' Secrets, in GATEWAY_NAMESPACE, as each gateway names them.
GATEWAY_CERTIFICATE = f"{GATEWAY_NAME}-tls"
GATEWAY_API_CERTIFICATE = f"{GATEWAY_API_NAME}-gateway-tls"
APP_NAMESPACE_LABEL = "carepath.io/app-namespace"  # on the stack's app namespaces: routes may attach from them
MIN_REPLICAS = 2  # istiod and each gateway: one pod can be evicted while another serves
DISRUPTION_BUDGET = {"minAvailable": 1}
MAX_REPLICAS = 5  # the charts' own autoscaling ceiling


@dataclass(frozen=True)
class IstioMeshArgs:
    version: str
    controller: pulumi.Resource  # the load balancer controller (TargetGroupBinding CRD and webhook)
    # The edge's target groups by backend: `gateway` and `gateway-api` bring up what serves them.
    target_group_arns: Mapping[str, pulumi.Input[str]]
    issuer: pulumi.Resource  # the CA ClusterIssuer of the gateways' certificates


class IstioMesh(pulumi.ComponentResource):
    """Kubernetes children use the provider given in `opts.providers`."""

    control_plane: k8s.helm.v4.Chart  # istiod: its injection webhook must be up before pods that want sidecars

    def __init__(self, name: str, args: IstioMeshArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:mesh:IstioMesh", name, None, opts)

        def chart(release: str, chart_name: str, namespace: k8s.core.v1.Namespace, values: dict[str, Any], after: Sequence[pulumi.Resource]) -> k8s.helm.v4.Chart:
            return k8s.helm.v4.Chart(
                release,
                chart=chart_name,
                version=args.version,
                repository_opts={"repo": CHART_REPOSITORY},
                namespace=namespace.metadata.apply(lambda metadata: metadata["name"]),
                values=values,
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)),
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
        gateway_api_group = args.target_group_arns.get(GATEWAY_API_BACKEND)
        # Istio serves the Gateway API only if its CRDs exist when istiod starts.
        gateway_api_crds = (
            [k8s.yaml.v2.ConfigFile("gateway-api-crds", file=GATEWAY_API_CRDS, opts=pulumi.ResourceOptions(parent=self))] if gateway_api_group is not None else []
        )
        base = chart("istio-base", "base", system, {"base": no_flip, "defaultRevision": "default"}, gateway_api_crds)
        cni = chart("istio-cni", "cni", system, {"cni": {"ambient": {"enabled": False}}}, [base])
        self.control_plane = chart(
            "istiod",
            "istiod",
            system,
            {
                "base": no_flip,
                "pilot": {"cni": {"enabled": True}, "autoscaleMin": MIN_REPLICAS, "pdb": DISRUPTION_BUDGET},
                "meshConfig": {"accessLogFile": "/dev/stdout"},
                "global": {"proxy": {"holdApplicationUntilProxyStarts": True}, "defaultPodDisruptionBudget": {"enabled": True}},
            },
            [cni],
        )
        after_controller = pulumi.ResourceOptions(parent=self, depends_on=[args.controller, ingress])

        def gateway_certificate(secret: str, service: str) -> k8s.apiextensions.CustomResource:
            return certificate(
                secret,
                GATEWAY_NAMESPACE,
                secret,
                [f"{service}.{GATEWAY_NAMESPACE}.svc", f"{service}.{GATEWAY_NAMESPACE}.svc.cluster.local"],
                pulumi.ResourceOptions(parent=self, depends_on=[args.issuer, ingress]),
            )

        gateway_group = args.target_group_arns.get(GATEWAY_BACKEND)
        if gateway_group is not None:
            binding = target_group_binding(GATEWAY_NAME, GATEWAY_NAMESPACE, GATEWAY_NAME, GATEWAY_PORT, gateway_group, after_controller)
            chart(
                GATEWAY_NAME,
                "gateway",
                ingress,
                {
                    "service": {"type": "ClusterIP", "ports": [{"name": "https", "port": GATEWAY_PORT, "targetPort": GATEWAY_PORT, "protocol": "TCP"}]},
                    "autoscaling": {"minReplicas": MIN_REPLICAS},
                    "podDisruptionBudget": DISRUPTION_BUDGET,
                },
                [self.control_plane, binding],
            )
            k8s.apiextensions.CustomResource(
                "edge-gateway",
                api_version="networking.istio.io/v1",
                kind="Gateway",
                metadata={"name": MESH_GATEWAY.split("/")[1], "namespace": GATEWAY_NAMESPACE},
                spec={
                    "selector": GATEWAY_SELECTOR,
                    "servers": [
                        {
                            "port": {"number": GATEWAY_PORT, "name": "https", "protocol": "HTTPS"},
                            "hosts": ["*/*"],
                            "tls": {"mode": "SIMPLE", "credentialName": GATEWAY_CERTIFICATE, "minProtocolVersion": "TLSV1_2", "cipherSuites": TLS_CIPHERS.split(":")},
                        }
                    ],
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.control_plane, ingress, gateway_certificate(GATEWAY_CERTIFICATE, GATEWAY_NAME)]),
            )
        self.gateway_api: Optional[k8s.apiextensions.CustomResource] = None
        self.gateway_api_ref: Optional[tuple[str, str]] = None  # its namespace and name, for routes' parentRefs
        if gateway_api_group is not None:
            binding = target_group_binding(GATEWAY_API_SERVICE, GATEWAY_NAMESPACE, GATEWAY_API_SERVICE, GATEWAY_PORT, gateway_api_group, after_controller)
            # Overlays on the HPA and PDB Istio renders for the Gateway (JSON is YAML).
            options = k8s.core.v1.ConfigMap(
                GATEWAY_API_OPTIONS,
                metadata={"name": GATEWAY_API_OPTIONS, "namespace": GATEWAY_NAMESPACE},
                data={
                    "horizontalPodAutoscaler": json.dumps({"spec": {"minReplicas": MIN_REPLICAS, "maxReplicas": MAX_REPLICAS}}),
                    "podDisruptionBudget": json.dumps({"spec": DISRUPTION_BUDGET}),
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[ingress]),
            )
            self.gateway_api = k8s.apiextensions.CustomResource(
                "gateway-api-gateway",
                api_version="gateway.networking.k8s.io/v1",
                kind="Gateway",
                # Istio deploys the Gateway's proxy; a ClusterIP Service, since the ALB is the one entrypoint.
                metadata={"name": GATEWAY_API_NAME, "namespace": GATEWAY_NAMESPACE, "annotations": {"networking.istio.io/service-type": "ClusterIP"}},
                spec={
                    "gatewayClassName": "istio",
                    "infrastructure": {"parametersRef": {"group": "", "kind": "ConfigMap", "name": GATEWAY_API_OPTIONS}},
                    "listeners": [
                        {
                            "name": GATEWAY_API_LISTENER,
                            "port": GATEWAY_PORT,
                            "protocol": "HTTPS",
                            "tls": {"mode": "Terminate", "certificateRefs": [{"group": "", "kind": "Secret", "name": GATEWAY_API_CERTIFICATE}]},
                            # Routes attach from the stack's app namespaces only.
                            "allowedRoutes": {"namespaces": {"from": "Selector", "selector": {"matchLabels": {APP_NAMESPACE_LABEL: "true"}}}},
                        }
                    ],
                },
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[self.control_plane, binding, ingress, options, gateway_certificate(GATEWAY_API_CERTIFICATE, GATEWAY_API_SERVICE)]
                ),
            )
            self.gateway_api_ref = (GATEWAY_NAMESPACE, GATEWAY_API_NAME)
        self.register_outputs({"gateway": GATEWAY_NAME})

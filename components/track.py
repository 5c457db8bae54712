"""Track: one version of a service, its Deployment, Service, PodDisruptionBudget and
optional HorizontalPodAutoscaler, all named after the track's Deployment.

Pods meet the "restricted" Pod Security Standard, spread over zones, and drain
without cutting requests (see `core.drain`). Where the ALB's targets are the pods (outside the
mesh), each pod runs a TLS proxy (`TlsProxy`) as a native sidecar: an init container with
`restartPolicy: Always`, started before the app and stopped after it, that terminates the
ALB's TLS on `TLS_PROXY_PORT` and forwards to the app on loopback; the track's Service
exposes it as `https` on `TLS_SERVICE_PORT`. The Service and the selector are
fixed per track, so a new tag only rolls the Deployment's pods; `pulumi up` waits
for the rollout (the provider's await) and fails if it never becomes ready.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from core.drain import DrainTimings
from core.edge import TLS_PROXY_DIR, TLS_SERVICE_PORT, tls_proxy_config
from core.release import SERVICE_PORT, TrackSpec
from core.settings import ServiceSettings
from core.settings.rules import TLS_PROXY_PORT

METRICS_LABEL = "carepath.io/metrics"  # Services that their service's ServiceMonitor scrapes
RUN_AS = 10001  # any non-root uid; the image must not need a particular one
PROBE_PERIOD_SECONDS = 5
PROXY_CONFIG = "/etc/nginx/carepath"  # nginx.conf, from the service's ConfigMap
# Mounted over the image's own, so the read-only root filesystem never needs writing.
PROXY_WRITABLE = ("/tmp", "/var/cache/nginx")


def tls_proxy_names(service: str) -> tuple[str, str]:
    """The ConfigMap and the certificate's Secret a service's proxies use, in each of its namespaces."""
    return f"{service}-tls-proxy", f"{service}-tls"


def tls_proxy_config_map(
    resource_name: str, service: str, settings: ServiceSettings, namespace: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> k8s.core.v1.ConfigMap:
    """The proxies' nginx.conf for `service` (to its `port`), one per namespace it runs in."""
    config_map, _ = tls_proxy_names(service)
    return k8s.core.v1.ConfigMap(
        resource_name,
        metadata={"name": config_map, "namespace": namespace},
        data={"nginx.conf": tls_proxy_config(settings.port)},
        opts=opts,
    )


@dataclass(frozen=True)
class TlsProxy:
    """The pod's TLS proxy: its image, and the ConfigMap and Secret named by `tls_proxy_names`."""

    image: pulumi.Input[str]


@dataclass(frozen=True)
class TrackArgs:
    namespace: pulumi.Input[str]  # the output of the namespace resource, so children wait for it
    spec: TrackSpec
    image: pulumi.Input[str]
    settings: ServiceSettings
    drain: DrainTimings
    mesh: bool = False  # inject an Istio sidecar (turning it on rolls the pods, maxUnavailable 0)
    # What the Deployment waits for: the TargetGroupBinding (the ALB readiness gate is injected only
    # into pods created after it), and for a track leaving traffic, the listener that moved it away.
    deployment_after: Sequence[pulumi.Resource] = ()
    tls_proxy: Optional[TlsProxy] = None  # set where the ALB's targets are the pods


_RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _tls_proxy(proxy: TlsProxy, service: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The proxy's init container (a native sidecar) and its volumes."""
    config_map, secret = tls_proxy_names(service)
    writable = [(f"proxy-{path.rsplit('/', 1)[1]}", path) for path in PROXY_WRITABLE]
    container = {
        "name": "tls-proxy",
        "image": proxy.image,
        "restartPolicy": "Always",
        # nginx itself, not the image's entrypoint (which rewrites files under /etc/nginx).
        "command": ["nginx", "-c", f"{PROXY_CONFIG}/nginx.conf", "-g", "daemon off;"],
        "ports": [{"name": "https", "containerPort": TLS_PROXY_PORT, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
        "readinessProbe": {"tcpSocket": {"port": "https"}, "periodSeconds": PROBE_PERIOD_SECONDS, "timeoutSeconds": 2, "failureThreshold": 2},
        "securityContext": _RESTRICTED_CONTAINER,
        "volumeMounts": [
            {"name": "proxy-config", "mountPath": PROXY_CONFIG, "readOnly": True},
            {"name": "proxy-tls", "mountPath": TLS_PROXY_DIR, "readOnly": True},
            *({"name": volume, "mountPath": path} for volume, path in writable),
        ],
    }
    volumes = [
        {"name": "proxy-config", "configMap": {"name": config_map}},
        # Mounted in the proxy only, readable by the pod's user and group (fsGroup), no one else.
        {"name": "proxy-tls", "secret": {"secretName": secret, "defaultMode": 0o440}},
        *({"name": volume, "emptyDir": {"sizeLimit": "64Mi"}} for volume, _ in writable),
    ]
    return container, volumes


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def pod_metadata(args: TrackArgs) -> dict[str, Any]:
    labels = {**args.spec.selector, "app.kubernetes.io/version": args.spec.tag}
    # Where the app's metrics are; with the mesh, the sidecar merges them into its own endpoint.
    scrape = {"prometheus.io/scrape": "true", "prometheus.io/port": str(args.settings.metrics_port), "prometheus.io/path": "/metrics"}
    if not args.mesh:
        return {"labels": labels, "annotations": scrape}
    # The sidecar must outlive the app's drain, or the pod stops taking traffic mid-drain.
    proxy = {"terminationDrainDuration": f"{args.drain.termination_grace_seconds}s", "holdApplicationUntilProxyStarts": True}
    return {
        "labels": {**labels, "sidecar.istio.io/inject": "true"},
        "annotations": {**scrape, "proxy.istio.io/config": json.dumps(proxy, sort_keys=True)},
    }


def pod_spec(args: TrackArgs) -> dict[str, Any]:
    service, drain = args.settings, args.drain
    resources = service.resources
    selector = args.spec.selector
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": drain.termination_grace_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": key,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector},
                "matchLabelKeys": ["pod-template-hash"],
            }
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
        ],
        "containers": [
            {
                "name": args.spec.service,
                "image": args.image,
                "ports": [
                    {"name": "http", "containerPort": service.port, "protocol": "TCP"},
                    {"name": "metrics", "containerPort": service.metrics_port, "protocol": "TCP"},
                ],
                "resources": {
                    "requests": {"cpu": resources.requests.cpu, "memory": resources.requests.memory},
                    "limits": {"cpu": resources.limits.cpu, "memory": resources.limits.memory},
                },
                "startupProbe": _probe(
                    service.health_path, PROBE_PERIOD_SECONDS, math.ceil(service.startup_seconds / PROBE_PERIOD_SECONDS)
                ),
                "readinessProbe": _probe(service.health_path, PROBE_PERIOD_SECONDS, 2),
                "livenessProbe": _probe(service.health_path, 10, 3),
                "lifecycle": {"preStop": {"sleep": {"seconds": drain.pre_stop_sleep_seconds}}},
                "securityContext": _RESTRICTED_CONTAINER,
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
    }
    if args.tls_proxy is not None:
        proxy, volumes = _tls_proxy(args.tls_proxy, args.spec.service)
        spec["initContainers"] = [proxy]
        spec["volumes"] += volumes
    return spec


class Track(pulumi.ComponentResource):
    deployment: k8s.apps.v1.Deployment

    def __init__(self, name: str, args: TrackArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:track:Track", name, None, opts)
        spec, rolling, scaling = args.spec, args.settings.rollout.rolling, args.settings.autoscaling
        deployment_name = spec.deployment
        metadata = {"name": deployment_name, "namespace": args.namespace, "labels": {**spec.selector, "app.kubernetes.io/part-of": "carepath"}}
        child = pulumi.ResourceOptions(parent=self)

        service = k8s.core.v1.Service(
            deployment_name,
            metadata={**metadata, "labels": {**metadata["labels"], METRICS_LABEL: "true"}},  # pyright: ignore[reportArgumentType]
            spec={  # pyright: ignore[reportArgumentType]
                "type": "ClusterIP",
                "selector": spec.selector,
                # appProtocol tells Istio and the ALB the port speaks HTTP.
                "ports": [
                    {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"},
                    {"name": "metrics", "port": args.settings.metrics_port, "targetPort": "metrics", "protocol": "TCP", "appProtocol": "http"},
                    *(
                        [{"name": "https", "port": TLS_SERVICE_PORT, "targetPort": "https", "protocol": "TCP", "appProtocol": "https"}]
                        if args.tls_proxy is not None
                        else []
                    ),
                ],
            },
            opts=child,
        )
        k8s.policy.v1.PodDisruptionBudget(
            deployment_name,
            metadata=metadata,  # pyright: ignore[reportArgumentType]
            spec={  # pyright: ignore[reportArgumentType]
                "maxUnavailable": 1,
                "selector": {"matchLabels": spec.selector},
                # A crash-looping pod must not block node drains.
                "unhealthyPodEvictionPolicy": "AlwaysAllow",
            },
            opts=child,
        )
        self.deployment = deployment = k8s.apps.v1.Deployment(
            deployment_name,
            metadata=metadata,  # pyright: ignore[reportArgumentType]
            spec={  # pyright: ignore[reportArgumentType]
                # With an autoscaler the replica count is its to set; leaving it out keeps Pulumi from resetting it.
                **({} if scaling.enabled else {"replicas": spec.replicas}),
                "selector": {"matchLabels": spec.selector},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": rolling.max_surge, "maxUnavailable": rolling.max_unavailable},
                },
                "minReadySeconds": rolling.min_ready_seconds,
                "progressDeadlineSeconds": rolling.progress_deadline_seconds,
                "revisionHistoryLimit": rolling.revision_history_limit,
                "template": {"metadata": pod_metadata(args), "spec": pod_spec(args)},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[service, *args.deployment_after]),
        )
        if scaling.enabled:
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                deployment_name,
                metadata=metadata,  # pyright: ignore[reportArgumentType]
                spec={  # pyright: ignore[reportArgumentType]
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment_name},
                    "minReplicas": scaling.min_replicas,
                    "maxReplicas": scaling.max_replicas,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": scaling.target_cpu_percent}},
                        }
                    ],
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[deployment]),
            )
        self.register_outputs({"deployment": deployment_name, "service": deployment_name})

"""Service: one CarePath AI service as a unit, named after it (`chat-api`, `triage-api`).

It owns the service's ECR repository, its router (chosen by name, `components.routers.factory`),
its tracks (the Deployments of its release plan) and its release signals (ServiceMonitor,
recording rules, alerts, dashboard). Everything it names starts with the service's name, so
services never collide; what it shares (the edge, the cluster, the mesh, Prometheus) it gets
from the platform.

Order, so one `pulumi up` is safe: the router first (bindings, mesh objects), then the tracks
that take production traffic, then the production route, then the other tracks, then the test
route (see `components.routers.router`). The listener rules the router sets are the service's
children, so a change of router updates them in place. A service routed in the mesh labels its
own pods for sidecar injection and requires mutual TLS for them (a PeerAuthentication per
namespace it runs in, selecting its pods only); outside the mesh the ALB's targets are its pods,
which terminate the ALB's TLS in a proxy of their own (`components.track.TlsProxy`), with a
certificate from the in-cluster CA and the proxy's config in each namespace it runs in. Its pods' NetworkPolicy
(`components.network_policy`) comes before any of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.certificates import certificate, proxy_image
from components.network_policy import ServiceNetworkPolicy, ServiceNetworkPolicyArgs
from components.registry import Registry, RegistryArgs
from components.release_signals import ReleaseSignals, ReleaseSignalsArgs
from components.routers.router import EdgeEntry, PlatformParts, Router, RouterArgs
from components.track import TlsProxy, Track, TrackArgs, tls_proxy_config_map, tls_proxy_names
from core.drain import DrainTimings
from core.network_policy import ServicePolicy
from core.release import ReleasePlan, TrackSpec
from core.settings import ServiceSettings, ThresholdSettings
from core.signals import catalogue


@dataclass(frozen=True)
class SignalsArgs:
    monitoring: pulumi.Resource  # the kube-prometheus-stack chart: its CRDs must exist first
    thresholds: ThresholdSettings


@dataclass(frozen=True)
class ServiceArgs:
    settings: ServiceSettings
    repository: str
    plan: ReleasePlan
    router: type[Router]
    namespaces: Mapping[str, pulumi.Input[str]]  # namespace name -> the namespace resource's output
    edge: EdgeEntry
    platform: PlatformParts
    drain: DrainTimings
    network_policy: ServicePolicy
    signals: Optional[SignalsArgs] = None  # unset: monitoring is off


class Service(pulumi.ComponentResource):
    repository_url: pulumi.Output[str]
    deployments: dict[str, k8s.apps.v1.Deployment]  # track -> its Deployment

    def __init__(self, name: str, args: ServiceArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:services:Service", name, None, opts)
        settings, plan = args.settings, args.plan
        child = pulumi.ResourceOptions(parent=self)
        registry = Registry(name, RegistryArgs(repository=args.repository, create=settings.create_repository, keep_releases=settings.keep_releases), opts=child)
        # Before any pod: under the namespace's default deny, a pod without it would never pass the ALB's health check.
        network = ServiceNetworkPolicy(name, ServiceNetworkPolicyArgs(policy=args.network_policy, namespaces=args.namespaces), opts=child)
        in_mesh = args.router.traits.mesh
        if in_mesh:
            assert args.platform.mesh is not None, "the settings turn the mesh on for a service routed in it"
            for namespace in plan.namespaces:
                k8s.apiextensions.CustomResource(
                    f"{name}-mtls" if namespace == plan.serving.namespace else f"{name}-mtls-{namespace}",
                    api_version="security.istio.io/v1",
                    kind="PeerAuthentication",
                    metadata={"name": name, "namespace": args.namespaces[namespace]},
                    spec={"selector": {"matchLabels": {"app.kubernetes.io/name": name}}, "mtls": {"mode": "STRICT"}},
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[args.platform.mesh]),
                )
        tls_proxy: Optional[TlsProxy] = None
        proxy_ready: list[pulumi.Resource] = []
        if not in_mesh:
            platform = args.platform
            assert platform.issuer is not None and platform.proxy_image_cache is not None, "the program sets up backend TLS for pods the ALB targets"
            tls_proxy = TlsProxy(image=registry.repository_url.apply(proxy_image))
            _, secret = tls_proxy_names(name)
            proxy_ready.append(platform.proxy_image_cache)
            # Named by namespace, never by role: a blue/green switch of namespaces replaces nothing.
            for namespace in plan.namespaces:
                proxy_ready += [
                    tls_proxy_config_map(f"{name}-tls-proxy-{namespace}", name, settings, args.namespaces[namespace], child),
                    certificate(
                        f"{name}-tls-{namespace}",
                        args.namespaces[namespace],
                        secret,
                        [f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local"],
                        pulumi.ResourceOptions(parent=self, depends_on=[platform.issuer]),
                    ),
                ]
        router = args.router(
            name,
            RouterArgs(service=name, settings=settings, plan=plan, namespaces=args.namespaces, edge=args.edge, platform=args.platform, rule_parent=self),
            opts=child,
        )
        self.deployments = {}

        def deploy(track: TrackSpec, after: Sequence[pulumi.Resource]) -> pulumi.Resource:
            self.deployments[track.track] = Track(
                track.deployment,
                TrackArgs(
                    namespace=args.namespaces[track.namespace],
                    spec=track,
                    image=registry.image(track.tag, settings.pin_digest),
                    settings=settings,
                    drain=args.drain,
                    mesh=in_mesh,
                    deployment_after=[*router.deployment_after(track.track), network, *proxy_ready, *after],
                    tls_proxy=tls_proxy,
                ),
                opts=child,
            ).deployment
            return self.deployments[track.track]

        production = router.route_production(after=[deploy(track, []) for track in plan.production_tracks])
        router.route_test(after=[deploy(track, [production]) for track in plan.other_tracks])
        if args.signals is not None:
            ReleaseSignals(
                name,
                ReleaseSignalsArgs(
                    service=name,
                    namespaces=plan.namespaces,
                    mesh=in_mesh,
                    thresholds=args.signals.thresholds,
                    monitoring=args.signals.monitoring,
                    signals=catalogue(name, settings.rollout.analysis.signals),
                ),
                opts=child,
            )
        self.repository_url = registry.repository_url
        self.register_outputs({"repositoryUrl": self.repository_url})

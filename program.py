"""The Pulumi program: settings in, platform and release out. `__main__.py` calls
`main()`; the offline plan and the tests run the same `main()` under mocks."""

from __future__ import annotations

import json
from typing import Any

import pulumi

from components.canary_router import CanaryRouter, CanaryRouterArgs
from components.cluster import Cluster, ClusterArgs
from components.edge import Edge, EdgeArgs
from components.load_balancer_controller import LoadBalancerController, LoadBalancerControllerArgs
from components.mesh import GATEWAY_HEALTH_PATH, GATEWAY_HEALTH_PORT, GATEWAY_PORT, IstioMesh, IstioMeshArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.namespace import AppNamespace, AppNamespaceArgs
from components.network import ExistingVpc, Network, NetworkArgs
from components.registry import Registry, RegistryArgs
from components.release_signals import ReleaseSignals, ReleaseSignalsArgs
from components.router import Router
from components.target_group_router import TargetGroupRouter, TargetGroupRouterArgs
from components.track import Track, TrackArgs
from core.drain import drain_timings
from core.release import GATEWAY_BACKEND, TrackSpec, edge_backends, plan_release, release_state
from core.settings import NAMESPACE, Settings, parse
from core.signals import catalogue


def raw_config() -> dict[str, Any]:
    """Every `carepath:` key of the stack, decoded, unknown ones included (so typos are caught)."""
    config = pulumi.runtime.config
    keys = set(config.CONFIG.get()) | set(config.get_config_env())
    raw: dict[str, Any] = {}
    for key in keys:
        namespace, _, name = key.partition(":")
        if namespace != NAMESPACE:
            continue
        value = config.get_config(key)
        try:
            raw[name] = json.loads(value)
        except (TypeError, ValueError):
            raw[name] = value
    return raw


def secret_sections() -> frozenset[str]:
    config = pulumi.runtime.config
    keys = set(config._SECRET_KEYS.get()) | set(config.get_config_secret_keys_env())
    return frozenset(key.partition(":")[2] for key in keys if key.startswith(f"{NAMESPACE}:"))


def load_settings() -> Settings:
    return parse(raw_config(), pulumi.get_stack(), secret_sections())


def build(settings: Settings) -> dict[str, Any]:
    """Register the stack's resources; returns the stack outputs."""
    release = plan_release(settings)
    cluster_config, chat_api, mesh_on = settings.cluster, settings.chat_api, settings.mesh_enabled

    existing = (
        ExistingVpc(cluster_config.vpc_id, cluster_config.public_subnet_ids, cluster_config.private_subnet_ids)
        if cluster_config.vpc_id
        else None
    )
    network = Network(
        "network",
        NetworkArgs(cidr_block=cluster_config.vpc_cidr, nat_gateways=cluster_config.nat_gateways, existing=existing),
    )
    cluster = Cluster(
        "cluster",
        ClusterArgs(
            cluster_name=settings.cluster_name,
            config=cluster_config,
            vpc_id=network.vpc_id,
            public_subnet_ids=network.public_subnet_ids,
            private_subnet_ids=network.private_subnet_ids,
        ),
    )
    registry = Registry(
        "chat-api",
        RegistryArgs(repository=chat_api.repository, create=chat_api.create_repository, keep_releases=chat_api.keep_releases),
    )
    on_cluster = pulumi.ResourceOptions(providers=[cluster.provider])

    edge_config = settings.edge
    # With the mesh the ALB targets the ingress gateway, and checks the gateway's own readiness
    # (its routes match on Host, which an ALB health check does not send).
    target_port, health_path, health_port = (
        (GATEWAY_PORT, GATEWAY_HEALTH_PATH, GATEWAY_HEALTH_PORT) if mesh_on else (chat_api.port, chat_api.health_path, None)
    )
    edge = Edge(
        "edge",
        EdgeArgs(
            vpc_id=network.vpc_id,
            public_subnet_ids=network.public_subnet_ids,
            node_security_group_id=cluster.node_security_group_id,
            target_port=target_port,
            health_path=health_path,
            health_port=health_port,
            certificate_arn=edge_config.certificate_arn,
            allowed_cidrs=edge_config.allowed_cidrs,
            deregistration_delay_seconds=edge_config.deregistration_delay_seconds,
            idle_timeout_seconds=edge_config.idle_timeout_seconds,
            backends=edge_backends(release, mesh_on),
            test_port=edge_config.test_port if release.test_track else None,
            test_cidrs=edge_config.test_cidrs,
        ),
    )
    controller = LoadBalancerController(
        "aws-load-balancer-controller",
        LoadBalancerControllerArgs(
            cluster_name=cluster.cluster_name,
            region=pulumi.Config("aws").require("region"),
            vpc_id=network.vpc_id,
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_provider_url=cluster.oidc_provider_url,
            target_group_arns=list(edge.target_group_arns.values()),
            chart_version=edge_config.controller_chart_version,
        ),
        opts=on_cluster,
    )
    mesh = (
        IstioMesh(
            "mesh",
            IstioMeshArgs(
                version=settings.mesh.istio_version,
                gateway_target_group_arn=edge.target_group_arns[GATEWAY_BACKEND],
                controller=controller.chart,
            ),
            opts=on_cluster,
        )
        if mesh_on
        else None
    )
    namespaces = {
        name: AppNamespace(
            name,
            AppNamespaceArgs(
                name=name,
                kubernetes_version=cluster_config.kubernetes_version,
                mesh=mesh.control_plane if mesh else None,
            ),
            opts=on_cluster,
        )
        for name in release.namespaces
    }
    router: Router
    if mesh is not None:
        router = CanaryRouter(
            "router",
            CanaryRouterArgs(
                plan=release,
                namespace=namespaces[settings.namespace].name,
                namespace_name=settings.namespace,
                header=settings.rollout.canary.header,
                stickiness=settings.rollout.canary.stickiness,
                mirror=settings.rollout.canary.mirror,
                public_hosts=[edge.dns_name, *edge_config.hostnames],
                mesh=mesh.control_plane,
                load_balancer_arn=edge.load_balancer_arn,
                gateway_target_group_arn=edge.target_group_arns[GATEWAY_BACKEND],
                certificate_arn=edge_config.certificate_arn,
            ),
            opts=on_cluster,
        )
    else:
        router = TargetGroupRouter(
            "router",
            TargetGroupRouterArgs(
                plan=release,
                load_balancer_arn=edge.load_balancer_arn,
                target_group_arns=edge.target_group_arns,
                certificate_arn=edge_config.certificate_arn,
                test_port=edge_config.test_port,
                controller=controller.chart,
                namespaces=list(namespaces.values()),
            ),
            opts=on_cluster,
        )
    drain = drain_timings(edge_config.deregistration_delay_seconds, chat_api.shutdown_seconds)

    def deploy(track: TrackSpec, after: list[pulumi.Resource]) -> pulumi.Resource:
        return Track(
            track.deployment,
            TrackArgs(
                namespace=namespaces[track.namespace].name,
                spec=track,
                image=registry.image(track.tag, chat_api.pin_digest),
                chat_api=chat_api,
                rolling=settings.rollout.rolling,
                drain=drain,
                mesh=mesh_on,
                deployment_after=[*router.deployment_after(track.track), *after],
            ),
            opts=on_cluster,
        ).deployment

    production = router.route_production(after=[deploy(track, []) for track in release.production_tracks])
    router.route_test(after=[deploy(track, [production]) for track in release.other_tracks])

    outputs: dict[str, Any] = {}
    if settings.monitoring.enabled:
        monitoring = Monitoring("monitoring", MonitoringArgs(settings=settings.monitoring, secrets=settings.secrets), opts=on_cluster)
        ReleaseSignals(
            "release-signals",
            ReleaseSignalsArgs(
                namespaces=release.namespaces,
                mesh=mesh_on,
                thresholds=settings.monitoring.thresholds,
                monitoring=monitoring.chart,
                signals=catalogue(overrides=settings.rollout.analysis.signals),
            ),
            opts=on_cluster,
        )
        outputs["grafanaAdminPassword"] = monitoring.grafana_password
    return {
        **outputs,
        "url": edge.url,
        "vpcId": network.vpc_id,
        "clusterName": cluster.cluster_name,
        "kubeconfig": cluster.kubeconfig,
        "repositoryUrl": registry.repository_url,
        "namespace": settings.namespace,
        # What this update deployed; Pulumi records it only when the update succeeds, so the
        # release driver can tell config written from config applied.
        "release": release_state(settings).to_output(),
    }


def main() -> None:
    for key, value in build(load_settings()).items():
        pulumi.export(key, value)

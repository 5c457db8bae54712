"""The Pulumi program: settings in, platform and release out. `__main__.py` calls
`main()`; the offline plan and the tests run the same `main()` under mocks."""

from __future__ import annotations

from typing import Any

import pulumi
from pydantic.alias_generators import to_camel

from components.certificates import BackendTls, BackendTlsArgs
from components.cluster import Cluster, ClusterArgs
from components.edge import Edge, EdgeArgs
from components.load_balancer_controller import LoadBalancerController, LoadBalancerControllerArgs
from components.mesh import IstioMesh, IstioMeshArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.namespace import AppNamespace, AppNamespaceArgs
from components.network import AVAILABILITY_ZONES, ExistingVpc, Network, NetworkArgs
from components.routers.factory import ROUTERS, TRAITS
from components.routers.router import EdgeEntry, PlatformParts
from components.service import Service, ServiceArgs, SignalsArgs
from core.drain import drain_timings
from core.edge import entry_rules
from core.network_policy import alb_blocks, service_policies
from core.release import plan_release, release_states
from core.settings import Settings, parse
from core.stack_config import carepath_sections, runtime_value


def provider_keys() -> dict[str, frozenset[str]]:
    """The config keys of each provider whose package lists them (`aws` -> `region`,
    `defaultTags`, ...): pulumi_aws's `config` module has one property per key, in snake case.
    The other providers' packages list none, so their namespaces go unchecked."""
    from pulumi_aws.config import vars as aws_config  # through the package: it loads lazily

    return {"aws": frozenset(to_camel(name) for name, member in vars(aws_config._ExportableConfig).items() if isinstance(member, property))}


def raw_config() -> dict[str, Any]:
    """Every `carepath:` key of the stack, decoded, unknown ones included (so typos are caught),
    and the providers' unknown keys."""
    config = pulumi.runtime.config
    keys = set(config.CONFIG.get()) | set(config.get_config_env())
    return carepath_sections({key: config.get_config(key) for key in keys}, runtime_value, provider_keys())


def secret_sections() -> frozenset[str]:
    """The `carepath:` sections stored encrypted."""
    config = pulumi.runtime.config
    keys = set(config._SECRET_KEYS.get()) | set(config.get_config_secret_keys_env())
    return frozenset(carepath_sections(dict.fromkeys(keys)))


def load_settings() -> Settings:
    return parse(raw_config(), pulumi.get_stack(), secret_sections(), routers=TRAITS, providers=provider_keys())


def build(settings: Settings) -> dict[str, Any]:
    """Register the stack's resources: the shared platform, then each service; returns the stack
    outputs. Each service's router says what it needs from the edge (its backends) and from the
    platform (its traits: the settings turn the mesh and the Gateway API on for it)."""
    cluster_config, edge_config = settings.cluster, settings.edge
    plans = {name: plan_release(settings, name) for name in settings.services}
    routers = {name: ROUTERS[traits.name] for name, traits in settings.routers.items()}
    service_backends = {name: router.backends(plans[name], settings.services[name]) for name, router in routers.items()}
    backends = {backend.name: backend for name in routers for backend in service_backends[name]}
    network_policies = service_policies(settings, plans, service_backends, alb_blocks(cluster_config, AVAILABILITY_ZONES))

    existing = (
        ExistingVpc(cluster_config.vpc_id, cluster_config.public_subnet_ids, cluster_config.private_subnet_ids)
        if cluster_config.vpc_id
        else None
    )
    network = Network(
        "network",
        NetworkArgs(cidr_block=cluster_config.vpc_cidr, nat_gateways=cluster_config.nat_gateways, name=settings.cluster_name, existing=existing),
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
    on_cluster = pulumi.ResourceOptions(providers=[cluster.provider])
    edge = Edge(
        "edge",
        EdgeArgs(
            vpc_id=network.vpc_id,
            public_subnet_ids=network.public_subnet_ids,
            node_security_group_id=cluster.node_security_group_id,
            certificate_arn=edge_config.certificate_arn,
            allowed_cidrs=edge_config.allowed_cidrs,
            deregistration_delay_seconds=edge_config.deregistration_delay_seconds,
            idle_timeout_seconds=edge_config.idle_timeout_seconds,
            backends=list(backends.values()),
            # Blue/green tests the idle colour through a listener of its own, while it has pods.
            test_port=edge_config.test_port if any(plan.test_track is not None for plan in plans.values()) else None,
            test_cidrs=edge_config.test_cidrs,
            name=settings.cluster_name,
            access_log_retention_days=edge_config.access_logs.retention_days,
            deletion_protection=edge_config.deletion_protection,
            waf=edge_config.waf.enabled,
            waf_log_retention_days=edge_config.waf.log_retention_days,
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
    # The ALB reaches its targets over TLS: the pods' proxies outside the mesh, the mesh's gateways.
    backend_tls = BackendTls(
        "backend-tls", BackendTlsArgs(proxy_image_cache=any(not traits.mesh for traits in settings.routers.values()), node_role=cluster.node_role_name), opts=on_cluster
    )
    mesh = (
        IstioMesh(
            "mesh",
            IstioMeshArgs(
                version=settings.mesh.istio_version, controller=controller.chart, target_group_arns=edge.target_group_arns, issuer=backend_tls.issuer
            ),
            opts=on_cluster,
        )
        if settings.mesh_enabled
        else None
    )
    namespaces = {
        name: AppNamespace(name, AppNamespaceArgs(name=name, kubernetes_version=cluster_config.kubernetes_version), opts=on_cluster).name
        for name in sorted({namespace for plan in plans.values() for namespace in plan.namespaces})
    }
    platform = PlatformParts(
        controller=controller.chart,
        mesh=mesh.control_plane if mesh else None,
        gateway=mesh.gateway_api_ref if mesh else None,
        gateway_resource=mesh.gateway_api if mesh else None,
        issuer=backend_tls.issuer,
        proxy_image_cache=backend_tls.image_cache,
    )
    outputs: dict[str, Any] = {}
    signals = None
    if settings.monitoring.enabled:
        monitoring = Monitoring(
            "monitoring", MonitoringArgs(settings=settings.monitoring, secrets=settings.secrets, mesh=settings.mesh_enabled), opts=on_cluster
        )
        signals = SignalsArgs(monitoring=monitoring.chart, thresholds=settings.monitoring.thresholds)
        outputs["grafanaAdminPassword"] = monitoring.grafana_password

    rules = entry_rules(settings.services)
    services = {
        name: Service(
            name,
            ServiceArgs(
                settings=service,
                repository=settings.repository(name),
                plan=plans[name],
                router=routers[name],
                namespaces=namespaces,
                edge=EdgeEntry(
                    production_listener_arn=edge.production_listener_arn,
                    test_listener_arn=edge.test_listener_arn,
                    target_group_arns=edge.target_group_arns,
                    rule=rules[name],
                    dns_name=edge.dns_name,
                ),
                platform=platform,
                drain=drain_timings(edge_config.deregistration_delay_seconds, service.shutdown_seconds),
                network_policy=network_policies[name],
                signals=signals,
            ),
            opts=on_cluster,
        )
        for name, service in settings.services.items()
    }
    return {
        **outputs,
        "url": edge.url,
        "vpcId": network.vpc_id,
        "clusterName": cluster.cluster_name,
        "kubeconfig": cluster.kubeconfig,
        "namespace": settings.namespace,
        "repositoryUrls": {name: service.repository_url for name, service in services.items()},
        # What this update deployed, per service; Pulumi records it only when the update succeeds,
        # so the release driver can tell config written from config applied.
        "releases": {name: state.to_output() for name, state in release_states(settings).items()},
    }


def main() -> None:
    settings = load_settings()
    for warning in settings.warnings:
        pulumi.log.warn(warning)
    for key, value in build(settings).items():
        pulumi.export(key, value)

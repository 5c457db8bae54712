"""The Pulumi program: settings in, platform out. `__main__.py` calls `main()`;
the offline plan and the tests run the same `main()` under mocks."""

from __future__ import annotations

import json
from typing import Any

import pulumi

from components.cluster import Cluster, ClusterArgs
from components.network import ExistingVpc, Network, NetworkArgs
from components.registry import Registry, RegistryArgs
from core.settings import NAMESPACE, Settings, parse


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


def load_settings() -> Settings:
    return parse(raw_config(), pulumi.get_stack())


def build(settings: Settings) -> dict[str, Any]:
    """Register the stack's resources; returns the stack outputs."""
    cluster_config = settings.cluster
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
        RegistryArgs(
            repository=settings.chat_api.repository,
            create=settings.chat_api.create_repository,
            keep_releases=settings.chat_api.keep_releases,
        ),
    )
    return {
        "vpcId": network.vpc_id,
        "clusterName": cluster.cluster_name,
        "kubeconfig": cluster.kubeconfig,
        "repositoryUrl": registry.repository_url,
        "namespace": settings.namespace,
    }


def main() -> None:
    for key, value in build(load_settings()).items():
        pulumi.export(key, value)

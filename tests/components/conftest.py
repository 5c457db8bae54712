"""The routers' tests drive a router as `components.service.Service` does, with stand-ins for what
it gets from the platform (the load balancer controller, istiod, the Gateway API's Gateway) and
for the tracks' Deployments."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import pulumi
import pytest

from components.routers.factory import ROUTERS
from components.routers.router import EdgeEntry, PlatformParts, RouterArgs
from core.edge import Backend, entry_rules
from core.release import TrackSpec, plan_release
from core.settings import Settings
from offline.harness import Plan
from tests.conftest import one_service, settings_from

PRODUCTION_LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/edge/0123456789abcdef/production"
TEST_LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/edge/0123456789abcdef/test"
DNS_NAME = "edge-0123.us-east-1.elb.amazonaws.com"
GATEWAY_API_GATEWAY = ("istio-ingress", "carepath")


def target_group_arn(backend: str) -> str:
    return f"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/edge-{backend}/0123456789abcdef"


def stand_in_platform() -> PlatformParts:
    """The platform's parts as stand-ins (call inside a program: they are resources)."""
    return PlatformParts(
        controller=pulumi.CustomResource("carepath:test:Controller", "controller", {}),
        mesh=pulumi.CustomResource("carepath:test:Istiod", "istiod", {}),
        gateway=GATEWAY_API_GATEWAY,
        gateway_resource=pulumi.CustomResource("carepath:test:Gateway", "gateway", {}),
        issuer=pulumi.CustomResource("carepath:test:ClusterIssuer", "issuer", {}),
        proxy_image_cache=pulumi.CustomResource("carepath:test:PullThroughCacheRule", "proxy-image-cache", {}),
    )


def stand_in_edge(settings: Settings, name: str, backends: Sequence[Backend]) -> EdgeEntry:
    """The edge as the program hands it to a service: fixed ARNs, the service's own rule."""
    return EdgeEntry(
        production_listener_arn=PRODUCTION_LISTENER,
        test_listener_arn=TEST_LISTENER,
        target_group_arns={backend.name: target_group_arn(backend.name) for backend in backends},
        rule=entry_rules(settings.services)[name],
        dns_name=DNS_NAME,
    )


@pytest.fixture(scope="session")
def run_router(run_component) -> Callable[..., Plan]:
    """`run_router(service_config, name=..., stack=..., **sections)`: the plan of one service's
    router (`services.<name>` is `service_config`), its tracks' Deployments stood in by
    `carepath:test:Deployment` resources, its listener rules' parent by `carepath:test:Service`."""

    def run(service: Mapping[str, Any], name: str = "chat-api", stack: str = "staging", **sections: Any) -> Plan:
        settings = settings_from(one_service(service, name, **sections), stack)
        plan = plan_release(settings, name)
        router = ROUTERS[settings.routers[name].name]
        backends = router.backends(plan, settings.service(name))

        def build() -> None:
            owner = pulumi.ComponentResource("carepath:test:Service", name)
            platform = stand_in_platform()
            edge = stand_in_edge(settings, name, backends)
            args = RouterArgs(
                service=name,
                settings=settings.service(name),
                plan=plan,
                namespaces={namespace: namespace for namespace in plan.namespaces},
                edge=edge,
                platform=platform,
                rule_parent=owner,
            )
            instance = router(name, args, pulumi.ResourceOptions(parent=owner))

            def deploy(track: TrackSpec, after: list[pulumi.Resource]) -> pulumi.Resource:
                opts = pulumi.ResourceOptions(depends_on=[*instance.deployment_after(track.track), *after])
                return pulumi.CustomResource("carepath:test:Deployment", track.deployment, {}, opts=opts)

            production = instance.route_production(after=[deploy(track, []) for track in plan.production_tracks])
            instance.route_test(after=[deploy(track, [production]) for track in plan.other_tracks])

        return run_component(build)

    return run

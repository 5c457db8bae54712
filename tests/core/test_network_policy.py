"""The network policies' rules (pure): who reaches a service's pods on which ports, where they go."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from components.routers.factory import ROUTERS
from core.edge import Backend
from core.network_policy import (
    DNS,
    GATEWAY_NAMESPACE,
    ISTIOD,
    MERGED_METRICS_PORT,
    MONITORING_NAMESPACE,
    NAME_LABEL,
    Allow,
    Peer,
    alb_blocks,
    edge_ports,
    namespace_allows,
    service_policies,
)
from core.release import plan_release
from core.settings import ClusterSettings, Settings
from tests.conftest import settings_from

ALB = ("10.0.32.0/20",)


def policies(settings: Settings, alb: tuple[str, ...] = ALB, backends: dict[str, tuple[Backend, ...]] | None = None):
    """The policies as the program derives them: each service's router's backends."""
    plans = {name: plan_release(settings, name) for name in settings.services}
    routers = {name: ROUTERS[traits.name].backends(plans[name], settings.services[name]) for name, traits in settings.routers.items()}
    return service_policies(settings, plans, {**routers, **(backends or {})}, alb)


def stack(**services: dict) -> Settings:
    return settings_from({"services": {name.replace("_", "-"): entry for name, entry in services.items()}})


ALB_SERVICE = {"tag": "v1", "rollout": {"strategy": "rolling"}, "router": "alb"}
ISTIO_SERVICE = {"tag": "v1", "rollout": {"strategy": "canary"}, "router": "istio", "hosts": ["chat.example.org"]}
GATEWAY_SERVICE = {"tag": "v1", "rollout": {"strategy": "canary"}, "router": "gateway-api", "hosts": ["triage.example.org"]}


def test_every_app_pod_may_resolve_names_and_nothing_else():
    assert namespace_allows() == (Allow(DNS, (53,), ("UDP", "TCP")),)
    assert DNS == Peer(("kube-system",), (("k8s-app", "kube-dns"),))


def alb_ports(settings: Settings, name: str) -> tuple[int, ...]:
    """Where the ALB reaches the service's pods, as its router says."""
    return edge_ports(ROUTERS["alb"].backends(plan_release(settings, name), settings.service(name)))


def test_an_alb_service_admits_the_albs_addresses_on_its_backends_ports_only():
    settings = stack(chat_api=dict(ALB_SERVICE, port=8081, metricsPort=9091))
    policy = policies(settings)["chat-api"]
    assert policy.ingress == (
        Allow(Peer(cidrs=ALB), alb_ports(settings, "chat-api")),  # the ALB's traffic and its health checks
        Allow(Peer((MONITORING_NAMESPACE,)), (9091,)),
    )
    assert policy.egress == ()  # no sidecar, no calls, no egress: DNS only (the namespace's)
    assert policy.namespaces == ("carepath-staging",)


def test_edge_ports_follow_the_backends_port_and_health_port():
    assert edge_ports((Backend("a", 8443, "/healthz", 8444), Backend("b", 8443, "/healthz"))) == (8443, 8444)
    moved = {"chat-api": (Backend("chat-api-stable", 8443, "/healthz", 8444),)}
    policy = policies(stack(chat_api=ALB_SERVICE), backends=moved)["chat-api"]
    assert policy.ingress[0] == Allow(Peer(cidrs=ALB), (8443, 8444))


def test_a_mesh_service_admits_the_ingress_gateways_istios_scrape_and_reaches_istiod():
    for name, entry in (("chat-api", ISTIO_SERVICE), ("triage-api", GATEWAY_SERVICE)):
        policy = policies(stack(**{name.replace("-", "_"): entry}))[name]
        assert policy.ingress == (
            Allow(Peer((GATEWAY_NAMESPACE,)), (8080,)),
            Allow(Peer((MONITORING_NAMESPACE,)), (9090, MERGED_METRICS_PORT)),
        ), name
        assert policy.egress == (Allow(ISTIOD, (15012,)),), name


def test_calls_open_the_callers_egress_and_the_callees_ingress_and_nothing_more():
    settings = stack(
        chat_api=dict(ALB_SERVICE, calls=["triage-api"], egress=[{"cidrs": ["198.51.100.0/24"], "ports": [443]}]),
        triage_api=dict(GATEWAY_SERVICE, port=8088),
        audit_api=dict(ALB_SERVICE, pathPrefix="/audit"),
    )
    found = policies(settings)
    chat, triage, audit = found["chat-api"], found["triage-api"], found["audit-api"]
    triage_pods = Peer(("carepath-staging",), ((NAME_LABEL, "triage-api"),))
    assert chat.egress == (Allow(triage_pods, (8088,)), Allow(Peer(cidrs=("198.51.100.0/24",)), (443,)))
    assert Allow(Peer(("carepath-staging",), ((NAME_LABEL, "chat-api"),)), (8088,)) in triage.ingress
    # Nobody calls audit-api, and it calls nobody: the edge and Prometheus only.
    assert [allow.peer for allow in audit.ingress] == [Peer(cidrs=ALB), Peer((MONITORING_NAMESPACE,))]
    assert audit.egress == ()


def test_a_blue_green_service_is_governed_in_each_colours_namespace():
    blue_green = {"strategy": "blue-green", "blueGreen": {"isolation": "namespace", "blue": {"tag": "v1"}, "green": {"tag": "v2"}}}
    settings = settings_from({"services": {"chat-api": {"rollout": blue_green}}, "edge": {"testCidrs": ["203.0.113.0/24"]}})
    policy = policies(settings)["chat-api"]
    assert policy.namespaces == ("carepath-staging-blue", "carepath-staging-green")
    assert policy.ingress[0] == Allow(Peer(cidrs=ALB), alb_ports(settings, "chat-api"))  # both colours' target groups


def test_the_albs_blocks_are_the_public_subnets_awsx_lays_out():
    # awsx's Legacy layout of components.network's specs for its default VPC: private /19 first in each zone's /18.
    assert alb_blocks(ClusterSettings(), 3) == ("10.0.32.0/20", "10.0.96.0/20", "10.0.160.0/20")
    public, private = ("subnet-0aaaaaaa", "subnet-0bbbbbbb"), ("subnet-0ccccccc", "subnet-0ddddddd")
    reused = ClusterSettings(vpc_cidr="172.31.0.0/16", vpc_id="vpc-0123456789abcdef0", public_subnet_ids=public, private_subnet_ids=private)
    assert alb_blocks(reused, 3) == ("172.31.0.0/16",)


@hypothesis_settings(max_examples=100, deadline=None)
@given(prefix=st.integers(16, 20), base=st.integers(0, 2**32 - 1), zones=st.integers(1, 4))
def test_the_albs_blocks_never_hold_a_pods_address(prefix, base, zones):
    vpc = ipaddress.IPv4Network((base, prefix), strict=False)
    blocks = [ipaddress.IPv4Network(block) for block in alb_blocks(ClusterSettings(vpc_cidr=str(vpc)), zones)]
    assert len(blocks) == zones and all(block.subnet_of(vpc) and block.prefixlen == prefix + 4 for block in blocks)
    # Pods take their addresses in the private subnets: the first 1/8 of each zone's block.
    zone_size = vpc.num_addresses >> (zones - 1).bit_length()
    for zone in range(zones):
        private = ipaddress.IPv4Network((int(vpc.network_address) + zone * zone_size, prefix + 3))
        assert not any(block.overlaps(private) for block in blocks)


SERVICE_ENTRIES = st.fixed_dictionaries(
    {
        "port": st.integers(1024, 14999),
        "metricsPort": st.integers(16000, 65535),
        "router": st.sampled_from(["alb", "istio", "gateway-api"]),
    }
)


@hypothesis_settings(max_examples=60, deadline=None)
@given(chat=SERVICE_ENTRIES, triage=SERVICE_ENTRIES, calls=st.booleans())
def test_a_service_admits_only_ports_its_pods_or_their_sidecars_declare(chat, triage, calls):
    def entry(values: dict, host: str, **more) -> dict:
        strategy = "rolling" if values["router"] == "alb" else "canary"
        return {**values, "tag": "v1", "rollout": {"strategy": strategy}, "hosts": [host], **more}

    settings = stack(chat_api=entry(chat, "chat.example.org", calls=["triage-api"] if calls else []), triage_api=entry(triage, "triage.example.org"))
    plans = {name: plan_release(settings, name) for name in settings.services}
    for name, policy in policies(settings).items():
        service, traits = settings.services[name], settings.routers[name]
        declared = {service.port, service.metrics_port}
        if traits.mesh:
            declared.add(MERGED_METRICS_PORT)
        else:
            declared |= set(edge_ports(ROUTERS[traits.name].backends(plans[name], service)))
        assert policy.ingress_ports <= declared, name
        assert all(allow.ports for allow in (*policy.ingress, *policy.egress)), "an empty port list would allow every port"

"""Who may reach a service's pods, and where they may go (pure): the allow rules the
NetworkPolicies carry (`components.network_policy`, `components.namespace`).

Every app namespace denies all traffic to and from its pods but DNS (`namespace_allows`); each
service then allows exactly (`service_policies`):

- from the edge to the ports its router's backends name (`Router.backends`, so they follow any
  change of port): the ALB's addresses for a service on the `alb` router (its targets are the
  pods, and its health checks come from the same nodes to the same ports), or the mesh's
  ingress gateway pods (`istio-ingress`) for a router in the mesh, to the service port;
- from the `monitoring` namespace to the metrics port, and for pods with sidecars to Istio's
  merged metrics port, where the ServiceMonitor scrapes them;
- with sidecars, to istiod for their configuration and certificates;
- what the service declares: the services it `calls` (egress to their port; each callee admits
  the caller's pods), and its `egress` blocks outside the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from core.edge import Backend
from core.release import ReleasePlan
from core.settings import ClusterSettings, Settings
from core.subnets import subnet_layout

NAME_LABEL = "app.kubernetes.io/name"  # every track's pods of a service carry it
DNS_PORT = 53
MONITORING_NAMESPACE = "monitoring"
GATEWAY_NAMESPACE = "istio-ingress"  # the mesh's ingress gateways (Istio's and the Gateway API's)
# Sidecars fetch their configuration and certificates over xDS on 15012; istiod's other ports
# (15017 its webhook, 15014 its monitoring) are called by the API server and Prometheus, not by pods.
ISTIOD_XDS_PORT = 15012
MERGED_METRICS_PORT = 15020  # the sidecar's endpoint merging its own and the app's metrics


@dataclass(frozen=True)
class Peer:
    """The other end of an allowed connection: pods (by labels, in namespaces named, or the
    policy's own namespace when none are), or address blocks outside the cluster."""

    namespaces: tuple[str, ...] = ()
    pods: tuple[tuple[str, str], ...] = ()  # labels; empty: every pod of those namespaces
    cidrs: tuple[str, ...] = ()  # set: these blocks instead of pods


@dataclass(frozen=True)
class Allow:
    """Connections to or from `peer` on `ports` (TCP unless `protocols` says otherwise)."""

    peer: Peer
    ports: tuple[int, ...]
    protocols: tuple[str, ...] = ("TCP",)


DNS = Peer(("kube-system",), (("k8s-app", "kube-dns"),))  # CoreDNS
ISTIOD = Peer(("istio-system",), (("app", "istiod"),))


@dataclass(frozen=True)
class ServicePolicy:
    """What a service's pods (`NAME_LABEL: service`, every track) may receive and send, in each
    namespace its tracks run in."""

    service: str
    namespaces: tuple[str, ...]
    ingress: tuple[Allow, ...]
    egress: tuple[Allow, ...]

    @property
    def ingress_ports(self) -> frozenset[int]:
        return frozenset(port for allow in self.ingress for port in allow.ports)


def namespace_allows() -> tuple[Allow, ...]:
    """Egress every pod of an app namespace keeps under its default deny: cluster DNS."""
    return (Allow(DNS, (DNS_PORT,), ("UDP", "TCP")),)


def alb_blocks(cluster: ClusterSettings, zones: int) -> tuple[str, ...]:
    """The address blocks the ALB's nodes live in: the public subnets of the VPC the stack creates
    (`core.subnets`). Only these, not the VPC's block, which holds every pod's address too. A
    reused VPC's subnets are not the stack's to know: there `cluster.vpcCidr`, which must then be
    that VPC's block."""
    if cluster.vpc_id is not None:
        return (cluster.vpc_cidr,)
    return subnet_layout(cluster.vpc_cidr, zones).public


def edge_ports(backends: tuple[Backend, ...]) -> tuple[int, ...]:
    """The ports the ALB reaches a service's pods on: its target groups' traffic and health ports."""
    return tuple(sorted({port for backend in backends for port in (backend.port, backend.health_port or backend.port)}))


def service_policies(
    settings: Settings,
    plans: Mapping[str, ReleasePlan],
    backends: Mapping[str, tuple[Backend, ...]],
    alb_cidrs: tuple[str, ...],
) -> dict[str, ServicePolicy]:
    """Each service's policy. `backends` are each service's router's; `alb_cidrs` the blocks the
    ALB's nodes take their addresses from."""
    callers: dict[str, list[str]] = {name: [] for name in settings.services}
    for name, service in settings.services.items():
        for callee in service.calls:
            callers[callee].append(name)

    def pods_of(name: str) -> Peer:
        return Peer(plans[name].namespaces, ((NAME_LABEL, name),))

    policies: dict[str, ServicePolicy] = {}
    for name, service in settings.services.items():
        mesh = settings.routers[name].mesh
        if mesh:
            edge = Allow(Peer((GATEWAY_NAMESPACE,)), (service.port,))
        else:
            edge = Allow(Peer(cidrs=alb_cidrs), edge_ports(backends[name]))
        metrics = (service.metrics_port, MERGED_METRICS_PORT) if mesh else (service.metrics_port,)
        ingress = [edge, Allow(Peer((MONITORING_NAMESPACE,)), metrics)]
        ingress += [Allow(pods_of(caller), (service.port,)) for caller in sorted(callers[name])]
        egress = [Allow(ISTIOD, (ISTIOD_XDS_PORT,))] if mesh else []
        egress += [Allow(pods_of(callee), (settings.services[callee].port,)) for callee in service.calls]
        egress += [Allow(Peer(cidrs=entry.cidrs), entry.ports) for entry in service.egress]
        policies[name] = ServicePolicy(name, plans[name].namespaces, tuple(ingress), tuple(egress))
    return policies

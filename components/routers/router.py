"""The Router interface: how the edge's traffic reaches a release plan's tracks.

One implementation per way of splitting traffic, one file each (the model: Flagger's router
package and its factory):

- `alb.AlbRouter`: at the ALB, a target group per track (rolling, blue/green);
- `istio.IstioRouter`: in the Istio mesh, subsets of one host (canary; rolling with the mesh);
- `gateway_api.GatewayApiRouter`: an HTTPRoute on a Gateway that Istio serves (canary, rolling).

A router declares, before anything is built, what it needs: from the platform in its
`traits` (the mesh, the Gateway API), from the edge in `backends` (the target groups it
forwards to, their port and health check). The service then drives it the same way
whatever it is: create the router, create each track with `deployment_after(track)`, then
`route_production(after=<the Deployments with production traffic>)`, the remaining tracks,
and `route_test(after=<theirs>)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Optional, Protocol, Sequence

import pulumi
import pulumi_aws as aws

from components.listeners import listener_rule
from core.edge import Backend, EntryRule
from core.release import ReleasePlan
from core.routers import RouterTraits
from core.settings import ServiceSettings


@dataclass(frozen=True)
class EdgeEntry:
    """What a router gets from the shared edge."""

    production_listener_arn: pulumi.Input[str]
    test_listener_arn: Optional[pulumi.Input[str]]  # set while a blue-green service has an idle colour to test
    target_group_arns: Mapping[str, pulumi.Input[str]]  # backend name -> its target group
    rule: EntryRule  # the service's hosts and path on the listeners
    dns_name: pulumi.Input[str]  # the ALB's own host name, for a service on its default host


@dataclass(frozen=True)
class PlatformParts:
    """The shared platform's pieces a router may wait for or attach to."""

    controller: pulumi.Resource  # the load balancer controller: TargetGroupBinding's CRD and webhook
    mesh: Optional[pulumi.Resource] = None  # istiod: sidecar injection and the Istio CRDs
    gateway: Optional[tuple[str, str]] = None  # the Gateway API Gateway: namespace, name
    gateway_resource: Optional[pulumi.Resource] = None
    # `components.certificates.BackendTls`: the CA ClusterIssuer that signs the backends'
    # certificates, and the pull-through cache rule the pods' TLS proxy image comes through.
    issuer: Optional[pulumi.Resource] = None
    proxy_image_cache: Optional[pulumi.Resource] = None


@dataclass(frozen=True)
class RouterArgs:
    service: str
    settings: ServiceSettings
    plan: ReleasePlan
    namespaces: Mapping[str, pulumi.Input[str]]  # name -> the namespace resource's output, so children wait for it
    edge: EdgeEntry
    platform: PlatformParts
    # The service's component: the parent of its listener rules, so a change of router updates
    # them in place (a new rule could not take the priority the old one holds on the listener).
    rule_parent: pulumi.Resource


class Router(Protocol):
    traits: ClassVar[RouterTraits]

    def __init__(self, name: str, args: RouterArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None: ...

    @staticmethod
    def backends(plan: ReleasePlan, service: ServiceSettings) -> tuple[Backend, ...]:
        """The target groups the router forwards to from the edge."""
        ...

    def deployment_after(self, track: str) -> list[pulumi.Resource]:
        """What a track's Deployment must wait for."""
        ...

    def route_production(self, after: Sequence[pulumi.Resource]) -> pulumi.Resource:
        """The production route, changed only after `after` are ready; returns it."""
        ...

    def route_test(self, after: Sequence[pulumi.Resource]) -> None:
        """The test route, if the strategy has one; ends the router's registration."""
        ...


def service_rule(args: RouterArgs, listener: str, action: dict[str, Any], after: Sequence[pulumi.Resource]) -> aws.lb.ListenerRule:
    """The service's rule (`<service>-production` or `<service>-test`) on that listener of the
    edge, to `action` once `after` are ready; the Service's child whatever the router, so a
    change of router updates the rule in place."""
    listener_arn = args.edge.production_listener_arn if listener == "production" else args.edge.test_listener_arn
    assert listener_arn is not None, f"the edge has no {listener} listener"
    return listener_rule(f"{args.service}-{listener}", listener_arn, args.edge.rule, action, pulumi.ResourceOptions(parent=args.rule_parent, depends_on=list(after)))


"""What a router is, as the settings and the plan see it (pure): its name, the strategies it can
route, and what it needs from the shared platform. Each router component declares its traits
(`components/routers/`); the factory hands them to `core.settings.parse`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:  # core.settings reads the traits: a type only, never an import cycle
    from core.settings.service import ServiceSettings


@dataclass(frozen=True)
class RouterTraits:
    name: str
    strategies: tuple[str, ...]  # the release strategies it can carry out
    mesh: bool = False  # needs the Istio mesh (sidecars, mutual TLS, istiod)
    gateway_api: bool = False  # needs the Gateway API CRDs and a Gateway on the edge
    # Whether services on it can share a host, told apart by path prefix behind it (Istio merges
    # the VirtualServices of one gateway host in creation order: one could shadow another).
    path_routing: bool = True
    # A cap on the matches of one service's route object (the Gateway API: 128 per HTTPRoute), and
    # how many the router renders for a service at its largest (a canary in flight), counted on
    # the router's own rendering; the settings refuse a service over the cap.
    match_limit: Optional[int] = None
    route_matches: Optional[Callable[["ServiceSettings"], int]] = None


def default_router(strategy: str, mesh_enabled: Optional[bool]) -> str:
    """The router a service gets when it names none, as before routers had names: the canary's
    split is Istio's; rolling goes through the mesh when the stack turns it on; blue/green
    switches ALB target groups."""
    if strategy == "canary" or (strategy == "rolling" and mesh_enabled is True):
        return "istio"
    return "alb"

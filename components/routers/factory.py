"""The routers by name: a service's `router` picks one. A new router is a new file in this
package and one line here."""

from __future__ import annotations

from typing import Mapping

from components.routers.alb import AlbRouter
from components.routers.gateway_api import GatewayApiRouter
from components.routers.istio import IstioRouter
from components.routers.router import Router
from core.routers import RouterTraits

ROUTERS: Mapping[str, type[Router]] = {router.traits.name: router for router in (IstioRouter, AlbRouter, GatewayApiRouter)}
TRAITS: Mapping[str, RouterTraits] = {name: router.traits for name, router in ROUTERS.items()}

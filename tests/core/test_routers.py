"""A router as the settings see it: its traits, and the router a service gets when it names none."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from components.routers.factory import TRAITS
from core.routers import RouterTraits, default_router
from core.settings import STRATEGIES


@pytest.mark.parametrize(
    "strategy, mesh_enabled, router",
    [
        ("rolling", None, "alb"),
        ("rolling", False, "alb"),
        ("rolling", True, "istio"),  # a stack that turns the mesh on routes rolling services in it
        ("canary", None, "istio"),
        ("canary", False, "istio"),  # the settings refuse this pair, naming the mesh
        ("canary", True, "istio"),
        ("blue-green", None, "alb"),
        ("blue-green", False, "alb"),
        ("blue-green", True, "alb"),
    ],
)
def test_the_default_router_follows_the_strategy_and_the_mesh(strategy, mesh_enabled, router):
    assert default_router(strategy, mesh_enabled) == router


@pytest.mark.parametrize("strategy, mesh_enabled", list(itertools.product(STRATEGIES, (None, False, True))))
def test_every_default_router_exists_and_carries_out_its_strategy(strategy, mesh_enabled):
    assert strategy in TRAITS[default_router(strategy, mesh_enabled)].strategies


def test_a_router_needs_nothing_from_the_platform_and_routes_by_path_unless_it_says_so():
    traits = RouterTraits("plain", strategies=("rolling",))
    assert (traits.mesh, traits.gateway_api, traits.path_routing) == (False, False, True)


def test_traits_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TRAITS["alb"].mesh = True  # type: ignore[misc]

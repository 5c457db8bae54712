"""Every router of the factory satisfies the `Router` interface. Pyright checks the same statically,
on the factory's `ROUTERS: Mapping[str, type[Router]]` (`make lint`)."""

import inspect

import pytest

from components.routers.factory import ROUTERS, TRAITS
from components.routers.router import Router
from core.edge import Backend
from core.release import plan_release
from tests.conftest import one_service, settings_from

METHODS = ("__init__", "backends", "deployment_after", "route_production", "route_test")
TAGS = {"rolling": {"tag": "v1.4.0"}, "canary": {"tag": "v1.4.0"}, "blue-green": {}}
BLUE_GREEN = {"blueGreen": {"blue": {"tag": "v1.4.0"}, "green": {"tag": "v2.0.0"}}}
SECTIONS = {"mesh": {"enabled": True}, "edge": {"testCidrs": ["198.51.100.0/24"]}}


def _parameters(function):
    return [(p.name, p.kind, p.default is inspect.Parameter.empty) for p in inspect.signature(function).parameters.values()]


def _service(name, strategy):
    rollout = {"strategy": strategy, **(BLUE_GREEN if strategy == "blue-green" else {})}
    return {**TAGS[strategy], "router": name, "rollout": rollout}




def test_the_factory_has_the_three_routers_and_hands_their_traits_to_the_settings():
    assert set(ROUTERS) == {"istio", "alb", "gateway-api"}
    assert TRAITS == {name: router.traits for name, router in ROUTERS.items()}


@pytest.mark.parametrize("name", sorted(ROUTERS))
def test_a_router_is_known_by_its_traits_name(name):
    assert ROUTERS[name].traits.name == name
    assert ROUTERS[name].traits.strategies


@pytest.mark.parametrize("name", sorted(ROUTERS))
def test_a_router_has_the_interfaces_methods_with_its_signatures(name):
    router = ROUTERS[name]
    assert isinstance(inspect.getattr_static(router, "backends"), staticmethod)
    for method in METHODS:
        assert _parameters(getattr(router, method)) == _parameters(getattr(Router, method)), method


@pytest.mark.parametrize("name, strategy", [(name, strategy) for name in sorted(ROUTERS) for strategy in ROUTERS[name].traits.strategies])
def test_backends_are_declared_before_anything_is_built(name, strategy):
    settings = settings_from(one_service(_service(name, strategy), **SECTIONS))
    backends = ROUTERS[name].backends(plan_release(settings, "chat-api"), settings.service("chat-api"))
    assert isinstance(backends, tuple) and backends
    assert all(isinstance(backend, Backend) for backend in backends)


@pytest.mark.parametrize("name", sorted(ROUTERS))
def test_a_router_registers_as_carepath_router_and_its_class_name(run_router, name):
    strategy = ROUTERS[name].traits.strategies[0]
    plan = run_router(_service(name, strategy), **SECTIONS)
    component = plan.one(f"carepath:router:{ROUTERS[name].__name__}")
    assert component.name == "chat-api"
    assert "chat-api-production" in {r.name for r in plan.of_type("aws:lb/listenerRule:ListenerRule")}

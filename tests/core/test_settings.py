"""Settings: defaults, every rule's error (full key, value, what is allowed), all at once, per
service; the services on the shared edge and their routers."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
import typing
from typing import Any, Mapping, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter
from pydantic.alias_generators import to_camel

from components.routers.factory import TRAITS
from core import signals
from core.routers import default_router
from core.settings import SECTIONS, Settings, SettingsError, UnknownService, parse
from core.settings.errors import key_of
from core.stack_config import carepath_sections, secret_paths
from offline.harness import STACKS, apply_overrides, load_stack_config
from tests.conftest import one_service, settings_from

ROLLING = one_service({"tag": "v1.4.0", "rollout": {"strategy": "rolling"}})
API = "services.chat-api"  # the prefix of chat-api's keys
TEST_CIDRS = {"edge.testCidrs": ["203.0.113.0/24"]}
BLUE_GREEN = {f"{API}.rollout.strategy": "blue-green", f"{API}.rollout.blueGreen.blue.tag": "v1", f"{API}.rollout.blueGreen.green.tag": "v2"}


def with_(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict:
    """`base` with `--path`-style overrides (`services.chat-api.rollout.canary.weight` -> 25)."""
    namespaced = {f"carepath:{k}": v for k, v in base.items()}
    result = apply_overrides(namespaced, overrides)
    return {k.removeprefix("carepath:"): v for k, v in result.items()}


def service(strategy: str = "rolling", rollout: Optional[Mapping[str, Any]] = None, **keys: Any) -> dict[str, Any]:
    """One service's config: a strategy with the tags it needs, `rollout` keys and any other keys
    (camelCase); a key set to None is left out."""
    tags = {"blue-green": {"blueGreen": {"blue": {"tag": "v1"}, "green": {"tag": "v2"}}}}.get(strategy, {})
    stable = {} if strategy == "blue-green" else {"tag": "v1.4.0"}
    entry = {**stable, **keys, "rollout": {"strategy": strategy, **tags, **(rollout or {})}}
    return {key: value for key, value in entry.items() if value is not None}


def services(**entries: dict[str, Any]) -> dict[str, Any]:
    """A raw config with these services (`triage_api` is `triage-api`) and the test listener's CIDRs."""
    return {"services": {name.replace("_", "-"): entry for name, entry in entries.items()}, "edge": {"testCidrs": ["203.0.113.0/24"]}}


def problems(raw: Mapping[str, Any], stack: str = "demo") -> list[str]:
    with pytest.raises(SettingsError) as caught:
        settings_from(raw, stack)
    return caught.value.problems


def test_defaults_are_the_documented_ones():
    settings = settings_from(ROLLING, "demo")
    chat_api = settings.service("chat-api")
    rollout = chat_api.rollout
    assert settings.cluster_name == "carepath-demo"
    assert settings.namespace == "carepath-demo"
    assert settings.cluster.kubernetes_version == "1.34"
    assert (settings.cluster.min_nodes, settings.cluster.desired_nodes, settings.cluster.max_nodes) == (2, 2, 4)
    assert settings.cluster.nat_gateways == "single"
    assert settings.repository("chat-api") == "carepath-chat-api" and chat_api.create_repository
    assert (chat_api.replicas, chat_api.port, chat_api.health_path) == (2, 8080, "/healthz")
    assert (chat_api.hosts, chat_api.path_prefix, chat_api.router) == ((), None, None)
    assert (rollout.rolling.max_surge, rollout.rolling.max_unavailable) == (1, 0)
    assert rollout.canary.steps == (1, 5, 10, 25, 50, 75, 100)
    assert rollout.canary.weight == 0 and rollout.canary.tag is None
    assert (rollout.canary.header.name, rollout.canary.header.value) == ("x-version", "canary")
    assert rollout.blue_green.active == "blue"
    assert settings.edge.allow_plain_http is False and settings.edge.test_port == 8443
    assert settings.mesh.istio_version == "1.30.5"
    assert settings.monitoring.enabled is True


def test_settings_are_frozen():
    settings = settings_from(ROLLING, "demo")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.service("chat-api").replicas = 5  # type: ignore[misc]


def test_a_repository_is_named_after_its_service_unless_the_config_names_one():
    settings = settings_from(services(chat_api=service(), triage_api=service(hosts=["triage.example.org"], repository="team/triage")))
    assert (settings.repository("chat-api"), settings.repository("triage-api")) == ("carepath-chat-api", "team/triage")


def test_services_are_in_name_order_whatever_the_config_order():
    raw = services(triage_api=service(hosts=["triage.example.org"]), db_api=service(pathPrefix="/db"), chat_api=service())
    assert list(settings_from(raw).services) == ["chat-api", "db-api", "triage-api"]


def test_asking_for_a_service_the_stack_lacks_names_the_ones_it_has():
    settings = settings_from(services(chat_api=service(), triage_api=service(hosts=["triage.example.org"])), "staging")
    with pytest.raises(UnknownService, match=r"^stack staging has no service 'db-api' \(its services: chat-api, triage-api\)$"):
        settings.service("db-api")
    with pytest.raises(UnknownService):
        settings.repository("db-api")


BAD_INPUTS = [
    (with_(ROLLING, {f"{API}.rollout.strategy": "canry"}), "carepath:services.chat-api.rollout.strategy: 'canry' is not one of rolling, canary, blue-green"),
    (one_service({"tag": "v1", "rollout": {}}), "carepath:services.chat-api.rollout.strategy is required: one of rolling, canary, blue-green"),
    (one_service({"tag": "v1"}), "carepath:services.chat-api.rollout is required"),
    (with_(ROLLING, {f"{API}.rollout.canary.weight": 120}), "carepath:services.chat-api.rollout.canary.weight: 120 is not in 0..100"),
    (with_(ROLLING, {f"{API}.rollout.canary.weight": -5}), "carepath:services.chat-api.rollout.canary.weight: -5 is not in 0..100"),
    (with_(ROLLING, {f"{API}.rollout.canary.weight": 12.5}), "carepath:services.chat-api.rollout.canary.weight: 12.5 is not an integer"),
    (with_(ROLLING, {f"{API}.rollout.canary.weight": "10"}), "carepath:services.chat-api.rollout.canary.weight: '10' is not an integer"),
    (with_(ROLLING, {f"{API}.rollout.canary.steps": [5, 50, 25, 100]}), "carepath:services.chat-api.rollout.canary.steps: [5, 50, 25, 100] is not strictly increasing"),
    (with_(ROLLING, {f"{API}.rollout.canary.steps": [5, 5, 100]}), "carepath:services.chat-api.rollout.canary.steps: [5, 5, 100] is not strictly increasing"),
    (with_(ROLLING, {f"{API}.rollout.canary.steps": [5, 10, 50]}), "carepath:services.chat-api.rollout.canary.steps: [5, 10, 50] does not end at 100"),
    (with_(ROLLING, {f"{API}.rollout.canary.steps": []}), "carepath:services.chat-api.rollout.canary.steps: [] is empty"),
    (with_(ROLLING, {f"{API}.rollout.canary.steps": [5, 150]}), "carepath:services.chat-api.rollout.canary.steps[1]: 150 is not in 0..100"),
    (with_(ROLLING, {f"{API}.replicas": 0}), "carepath:services.chat-api.replicas: 0 is not in 1..1000"),
    (with_(ROLLING, {f"{API}.replicas": "two"}), "carepath:services.chat-api.replicas: 'two' is not an integer"),
    (with_(ROLLING, {f"{API}.replicas": True}), "carepath:services.chat-api.replicas: true is not an integer"),
    (with_(ROLLING, {"cluster.minNodes": 3, "cluster.desiredNodes": 2}), "carepath:cluster: node sizes must satisfy minNodes <= desiredNodes <= maxNodes, got minNodes=3, desiredNodes=2, maxNodes=4"),
    (with_(ROLLING, {"cluster.desiredNodes": 5, "cluster.maxNodes": 4}), "carepath:cluster: node sizes must satisfy minNodes <= desiredNodes <= maxNodes, got minNodes=2, desiredNodes=5, maxNodes=4"),
    (with_(ROLLING, {f"{API}.tag": ""}), "carepath:services.chat-api.tag: '' is empty"),
    (with_(ROLLING, {f"{API}.tag": "latest"}), "carepath:services.chat-api.tag: 'latest' is a moving tag"),
    (with_(ROLLING, {f"{API}.tag": "LATEST"}), "carepath:services.chat-api.tag: 'LATEST' is a moving tag"),
    (with_(ROLLING, {f"{API}.tag": "v1.4.0:bad"}), "carepath:services.chat-api.tag: 'v1.4.0:bad' is not a valid image tag"),
    (with_(ROLLING, {f"{API}.tag": "-v1"}), "carepath:services.chat-api.tag: '-v1' is not a valid image tag"),
    (with_(ROLLING, {f"{API}.rollout.canary.tag": "latest"}), "carepath:services.chat-api.rollout.canary.tag: 'latest' is a moving tag"),
    (with_(ROLLING, {f"{API}.rollout.blueGreen.green.tag": "x" * 129}), "carepath:services.chat-api.rollout.blueGreen.green.tag: '" + "x" * 129 + "' is not a valid image tag"),
    (with_(ROLLING, {f"{API}.rollout.blueGreen.active": "red"}), "carepath:services.chat-api.rollout.blueGreen.active: 'red' is not one of blue, green"),
    (one_service({"rollout": {"strategy": "rolling"}}), "carepath:services.chat-api.tag is required: the rolling strategy deploys it as the stable version"),
    (one_service({"rollout": {"strategy": "canary"}}), "carepath:services.chat-api.tag is required: the canary strategy deploys it as the stable version"),
    (with_(ROLLING, {**BLUE_GREEN, **TEST_CIDRS, f"{API}.rollout.blueGreen.green.tag": None}),
     "carepath:services.chat-api.rollout.blueGreen.green.tag is required: the blue-green strategy runs both colours"),
    (with_(ROLLING, {f"{API}.rollout.blueGreen.idleReplicas": -1}), "carepath:services.chat-api.rollout.blueGreen.idleReplicas: -1 is not in 0..1000"),
    (with_(ROLLING, {f"{API}.rollout.blueGreen.idleReplicas": 3}), "carepath:services.chat-api.rollout.blueGreen.idleReplicas: 3 is above carepath:services.chat-api.replicas (2)"),
    (with_(ROLLING, {f"{API}.rollout.blueGreen.idleReplicas": 1, f"{API}.autoscaling.enabled": True}),
     "carepath:services.chat-api.rollout.blueGreen.idleReplicas: 1 cannot apply while carepath:services.chat-api.autoscaling is enabled"),
    (with_(ROLLING, {f"{API}.rollout.blueGreen.greenWeight": 101}), "carepath:services.chat-api.rollout.blueGreen.greenWeight: 101 is not in 0..100"),
    (with_(ROLLING, {f"{API}.rollout.blueGreen.greenWeight": 10, f"{API}.rollout.blueGreen.idleReplicas": 0}),
     "carepath:services.chat-api.rollout.blueGreen.greenWeight: 10 splits production traffic over both colours"),
    (with_(ROLLING, {f"{API}.rollout.blueGreen.isolation": "vpc"}), "carepath:services.chat-api.rollout.blueGreen.isolation: 'vpc' is not one of shared, namespace"),
    (with_(ROLLING, BLUE_GREEN), "carepath:edge.testCidrs is required for blue-green (carepath:services.chat-api.rollout.strategy)"),
    (with_(ROLLING, {"edge.testPort": 80}), "carepath:edge.testPort: 80 is taken by the production listener"),
    (with_(ROLLING, {f"{API}.rollout.canary.header.name": "x version"}), "carepath:services.chat-api.rollout.canary.header.name: 'x version' is not a lowercase HTTP header name"),
    (with_(ROLLING, {f"{API}.rollout.canary.replicas": 0}), "carepath:services.chat-api.rollout.canary.replicas: 0 is not in 1..1000"),
    (with_(ROLLING, {f"{API}.hosts": ["Chat.Example.org"]}), "carepath:services.chat-api.hosts[0]: 'Chat.Example.org' is not a DNS host name"),
    (with_(ROLLING, {f"{API}.pathPrefix": "/triage/"}), "carepath:services.chat-api.pathPrefix: '/triage/' is not a path prefix such as /triage"),
    (with_(ROLLING, {f"{API}.pathPrefix": "/triage/*"}), "carepath:services.chat-api.pathPrefix: '/triage/*' is not a path prefix such as /triage"),
    (with_(ROLLING, {f"{API}.rollout.strategy": "canary", "mesh.enabled": False}),
     "carepath:mesh.enabled: false, but carepath:services.chat-api.router defaults to 'istio' for the canary strategy, which routes in the Istio mesh"),
    (with_(ROLLING, {f"{API}.rollout.canary.weight": 10}), "carepath:services.chat-api.rollout.canary.weight: 10 needs carepath:services.chat-api.rollout.canary.tag"),
    (with_(ROLLING, {f"{API}.rollout.strategy": "canary", f"{API}.rollout.canary.tag": "v1.4.0"}),
     "carepath:services.chat-api.rollout.canary.tag: 'v1.4.0' is already the stable carepath:services.chat-api.tag"),
    (with_(ROLLING, {f"{API}.replica": 3}), "carepath:services.chat-api.replica: unknown key; did you mean 'replicas'?"),
    (with_(ROLLING, {f"{API}.rollout.canary.header.nmae": "x"}), "carepath:services.chat-api.rollout.canary.header.nmae: unknown key; did you mean 'name'? (allowed: name, value)"),
    ({**ROLLING, "service": {}}, "carepath:service: unknown key; did you mean 'carepath:services'?"),
    ({**ROLLING, "chatApi": {"tag": "v1"}}, "carepath:chatApi: unknown key (allowed: cluster, services, edge, mesh, monitoring, secrets)"),
    ({**ROLLING, "rollout": {"strategy": "rolling"}}, "carepath:rollout: unknown key (allowed: cluster, services, edge, mesh, monitoring, secrets)"),
    (with_(ROLLING, {"edge.hostnames": ["chat.example.org"]}), "carepath:edge.hostnames: unknown key"),
    (with_(ROLLING, {"cluster.kubernetesVersion": 1.3}), "carepath:cluster.kubernetesVersion: 1.3 is not a string"),
    (with_(ROLLING, {"cluster.kubernetesVersion": "1.3"}), "carepath:cluster.kubernetesVersion: '1.3' is not a Kubernetes minor version"),
    (with_(ROLLING, {"cluster.instanceType": "large"}), "carepath:cluster.instanceType: 'large' is not an EC2 instance type"),
    (with_(ROLLING, {"cluster.vpcCidr": "10.0.0.0/24"}), "carepath:cluster.vpcCidr: '10.0.0.0/24' must be a /16 to /20 block"),
    (with_(ROLLING, {"cluster.vpcId": "vpc-0123456789abcdef0"}), "carepath:cluster.publicSubnetIds: [] must list at least 2 subnets"),
    (with_(ROLLING, {"cluster.privateSubnetIds": ["subnet-01234567", "subnet-89abcdef"]}), "carepath:cluster.vpcId is required when subnet ids are given"),
    (with_(ROLLING, {"cluster.publicAccessCidrs": ["0.0.0.0/33"]}), "carepath:cluster.publicAccessCidrs[0]: '0.0.0.0/33' is not a CIDR block"),
    (with_(ROLLING, {"cluster.adminRoleArns": ["admin"]}), "carepath:cluster.adminRoleArns[0]: 'admin' is not an IAM role ARN"),
    (with_(ROLLING, {f"{API}.port": 80}), "carepath:services.chat-api.port: 80 is not in 1024..65535"),
    (with_(ROLLING, {f"{API}.healthPath": "healthz"}), "carepath:services.chat-api.healthPath: 'healthz' is not an absolute HTTP path"),
    (with_(ROLLING, {f"{API}.repository": "Carepath"}), "carepath:services.chat-api.repository: 'Carepath' is not an ECR repository name"),
    (with_(ROLLING, {f"{API}.rollout.rolling.maxSurge": 0}), "carepath:services.chat-api.rollout.rolling: maxSurge and maxUnavailable are both 0"),
    (with_(ROLLING, {f"{API}.rollout.rolling.maxSurge": "150%"}), "carepath:services.chat-api.rollout.rolling.maxSurge: '150%' is not a count >= 0 or a percentage"),
    (with_(ROLLING, {f"{API}.rollout.canary.header.name": "X-Version"}), "carepath:services.chat-api.rollout.canary.header.name: 'X-Version' is not a lowercase HTTP header name"),
    (with_(ROLLING, {"edge.certificateArn": "arn:aws:iam::123456789012:role/x"}), "carepath:edge.certificateArn: 'arn:aws:iam::123456789012:role/x' is not an ACM certificate ARN"),
    (with_(ROLLING, {"edge.testPort": 70000}), "carepath:edge.testPort: 70000 is not in 1..65535"),
    (with_(ROLLING, {"mesh.istioVersion": "1.21.0"}), "carepath:mesh.istioVersion: '1.21.0' is older than 1.22"),
    (with_(ROLLING, {"mesh.istioVersion": "latest"}), "carepath:mesh.istioVersion: 'latest' is not an Istio release"),
    (with_(ROLLING, {"monitoring.enabled": "yes"}), "carepath:monitoring.enabled: 'yes' is not true or false"),
    ({**ROLLING, "monitoring": True}, "carepath:monitoring: true is not a mapping"),
    (with_(ROLLING, {f"{API}.resources.limits.memory": "256Mi"}), "carepath:services.chat-api.resources.limits.memory: '256Mi' is below the request '512Mi'"),
    (with_(ROLLING, {f"{API}.resources.requests.cpu": "lots"}), "carepath:services.chat-api.resources.requests.cpu: 'lots' is not a Kubernetes quantity"),
    (with_(ROLLING, {f"{API}.resources.requests.cpu": "0"}), "carepath:services.chat-api.resources.requests.cpu: '0' must be more than 0"),
    (with_(ROLLING, {f"{API}.autoscaling.minReplicas": 5, f"{API}.autoscaling.maxReplicas": 3}), "carepath:services.chat-api.autoscaling: minReplicas 5 is above maxReplicas 3"),
    (with_(ROLLING, {f"{API}.startupSeconds": 5}), "carepath:services.chat-api.startupSeconds: 5 is not in 10..3600"),
    (with_(ROLLING, {"edge.testPort": 443}), "carepath:edge.testPort: 443 is taken by the production listener"),
    (with_(ROLLING, {"edge.deregistrationDelaySeconds": 300}), "carepath:edge.deregistrationDelaySeconds: 300 is not in 0..120"),
    (with_(ROLLING, {"edge.allowedCidrs": ["everyone"]}), "carepath:edge.allowedCidrs[0]: 'everyone' is not a CIDR block"),
    (with_(ROLLING, {f"{API}.rollout.rolling.minReadySeconds": -1}), "carepath:services.chat-api.rollout.rolling.minReadySeconds: -1 is not in 0..600"),
    (with_(ROLLING, {f"{API}.metricsPort": 8080}), "carepath:services.chat-api.metricsPort: 8080 is carepath:services.chat-api.port"),
    (with_(ROLLING, {f"{API}.rollout.canary.mirror": {"percent": 120, "paths": ["/v1/models"]}}), "carepath:services.chat-api.rollout.canary.mirror.percent: 120 is not in 0..100"),
    (with_(ROLLING, {f"{API}.rollout.canary.mirror": {"percent": 10, "paths": []}}), "carepath:services.chat-api.rollout.canary.mirror.paths: [] is empty"),
    (with_(ROLLING, {f"{API}.rollout.canary.mirror": {"percent": 10}}), "carepath:services.chat-api.rollout.canary.mirror.paths is required"),
    (with_(ROLLING, {f"{API}.rollout.canary.mirror": {"percent": 10, "paths": ["/*"]}}),
     "carepath:services.chat-api.rollout.canary.mirror.paths[0]: '/*' matches every path, write endpoints included"),
    (with_(ROLLING, {f"{API}.rollout.canary.mirror": {"percent": 10, "paths": ["/v1/.*"]}}),
     "carepath:services.chat-api.rollout.canary.mirror.paths[0]: '/v1/.*' is not a path such as /v1/models"),
    (with_(ROLLING, {f"{API}.rollout.canary.stickiness": "yes"}), "carepath:services.chat-api.rollout.canary.stickiness: 'yes' is not true or false"),
    (with_(ROLLING, {"monitoring.thresholds.errorRatio": 2}), "carepath:monitoring.thresholds.errorRatio: 2 is not a fraction between 0 and 1"),
    (with_(ROLLING, {"monitoring.thresholds.latencyP95Seconds": 0}), "carepath:monitoring.thresholds.latencyP95Seconds: 0 must be more than 0"),
    (with_(ROLLING, {"monitoring.retention": "forever"}), "carepath:monitoring.retention: 'forever' is not a duration such as 15d"),
    (with_(ROLLING, {"monitoring.receivers": [{"name": "oncall", "kind": "email", "secret": "x"}]}),
     "carepath:monitoring.receivers[0].kind: 'email' is not one of slack, webhook, pagerduty"),
    (with_(ROLLING, {"monitoring.receivers": [{"name": "oncall", "kind": "slack", "secret": "slackUrl"}]}), "carepath:monitoring.receivers[0].secret: 'slackUrl' is not set"),
    ({**ROLLING, "secrets": {"slackUrl": "https://hooks.example/abc"}}, "carepath:secrets.slackUrl: set in plain text; use `pulumi config set --secret --path secrets.slackUrl <value>`"),
    ({**ROLLING, "secrets": {"slackUrl": 42}}, "carepath:secrets.slackUrl: '[secret]' is not a string"),
]


@pytest.mark.parametrize("raw, expected", BAD_INPUTS, ids=[e[9:70] for _, e in BAD_INPUTS])
def test_bad_input_names_key_value_and_what_is_allowed(raw, expected):
    found = problems(raw)
    assert any(expected in p for p in found), found


def test_every_problem_is_reported_at_once():
    raw = with_(
        ROLLING,
        {
            f"{API}.rollout.strategy": "canry",
            f"{API}.rollout.canary.weight": 120,
            f"{API}.replica": 3,
            f"{API}.tag": "latest",
            "cluster.minNodes": 5,
            "edge.testPort": "8443",
        },
    )
    found = problems(raw)
    assert len(found) == 6, found
    keys = [p.split(":")[1].split(" ")[0] for p in found]
    assert {f"{API}.rollout.strategy", f"{API}.rollout.canary.weight", f"{API}.replica", f"{API}.tag", "cluster", "edge.testPort"} <= set(keys)
    message = str(SettingsError(found))
    assert message.startswith("invalid stack config (6 problems):") and all(p in message for p in found)


def test_a_section_error_does_not_hide_another_sections_rules():
    # chat-api is broken, yet the cluster's cross-field rule is still checked.
    found = problems(with_(ROLLING, {f"{API}.replicas": 0, "cluster.minNodes": 3, "cluster.desiredNodes": 2}))
    assert any(f"{API}.replicas" in p for p in found) and any("minNodes <= desiredNodes" in p for p in found)


def test_a_mirror_is_a_standing_setting_that_waits_for_a_canary():
    raw = with_(ROLLING, {f"{API}.rollout.strategy": "canary", f"{API}.rollout.canary.mirror": {"percent": 10, "paths": ["/v1/models"]}})
    mirror = settings_from(raw, "staging").service("chat-api").rollout.canary.mirror
    assert mirror is not None and mirror.paths == ("/v1/models",)


def test_secrets_set_with_secret_are_accepted_and_never_printed():
    raw = {**ROLLING, "secrets": {"slackUrl": "https://hooks.example/abc"}, "monitoring": {"receivers": [{"name": "team", "kind": "slack", "secret": "slackUrl"}]}}
    settings = settings_from(raw, "demo", frozenset({"secrets"}))
    assert settings.secrets == {"slackUrl": "https://hooks.example/abc"}
    assert "hooks.example" not in repr(settings)


def test_an_existing_vpc_is_accepted():
    settings = settings_from(
        with_(
            ROLLING,
            {
                "cluster.vpcId": "vpc-0123456789abcdef0",
                "cluster.publicSubnetIds": ["subnet-0aaaaaaa", "subnet-0bbbbbbb"],
                "cluster.privateSubnetIds": ["subnet-0ccccccc", "subnet-0ddddddd"],
            },
        ),
        "demo",
    )
    assert settings.cluster.private_subnet_ids == ("subnet-0ccccccc", "subnet-0ddddddd")


# --- the stack files -----------------------------------------------------------------------


def stack_config(stack: str) -> dict[str, Any]:
    return {key.split(":", 1)[1]: value for key, value in load_stack_config(stack).items() if key.startswith("carepath:")}


def as_config(settings: Settings) -> dict[str, Any]:
    """The settings back as `carepath:` sections (camelCase, JSON values)."""
    return {section: TypeAdapter(hint).dump_python(getattr(settings, section), mode="json", by_alias=True) for section, hint in SECTIONS.items()}


def holds(dumped: Any, raw: Any) -> bool:
    """Whether every key `raw` sets is in `dumped`, with its value."""
    if isinstance(raw, dict):
        return isinstance(dumped, dict) and all(key in dumped and holds(dumped[key], value) for key, value in raw.items())
    if isinstance(raw, list):  # items one by one: a list of sections (signals, freeze windows) dumps every key of each
        return isinstance(dumped, list) and len(dumped) == len(raw) and all(holds(d, r) for d, r in zip(dumped, raw, strict=True))
    return dumped == raw


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_round_trip(stack):
    raw = stack_config(stack)
    settings = settings_from(raw, stack)
    config = as_config(settings)
    assert settings_from(config, stack) == settings
    assert holds(config, raw), "every key the stack file sets survives with its value"


def test_stack_files_pick_the_designed_strategies_and_routers():
    chosen = {}
    for stack in STACKS:
        settings = settings_from(stack_config(stack), stack)
        chosen[stack] = (settings.service("chat-api").rollout.strategy, settings.routers["chat-api"].name, settings.mesh_enabled)
    assert chosen == {"demo": ("rolling", "alb", False), "staging": ("canary", "istio", True), "production": ("blue-green", "alb", False)}


# --- properties -----------------------------------------------------------------


@given(st.integers(min_value=-1000, max_value=1000))
def test_weight_is_accepted_exactly_in_0_to_100(weight):
    raw = with_(ROLLING, {f"{API}.rollout.strategy": "canary", f"{API}.rollout.canary.tag": "v2.0.0", f"{API}.rollout.canary.weight": weight})
    if 0 <= weight <= 100:
        assert settings_from(raw, "staging").service("chat-api").rollout.canary.weight == weight
    else:
        assert any(p.startswith(f"carepath:services.chat-api.rollout.canary.weight: {weight} is not in 0..100") for p in problems(raw))


@given(st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=8))
def test_steps_are_accepted_exactly_when_strictly_increasing_to_100(steps):
    raw = with_(ROLLING, {f"{API}.rollout.canary.steps": steps})
    valid = steps[-1] == 100 and all(b > a for a, b in itertools.pairwise(steps))
    if valid:
        assert settings_from(raw, "demo").service("chat-api").rollout.canary.steps == tuple(steps)
    else:
        assert any(p.startswith("carepath:services.chat-api.rollout.canary.steps:") for p in problems(raw))


@given(st.integers(1, 20), st.integers(1, 20), st.integers(1, 20))
def test_node_sizes_are_accepted_exactly_when_ordered(low, desired, high):
    raw = with_(ROLLING, {"cluster.minNodes": low, "cluster.desiredNodes": desired, "cluster.maxNodes": high})
    if low <= desired <= high:
        assert settings_from(raw, "demo").cluster.desired_nodes == desired
    else:
        assert any("minNodes <= desiredNodes <= maxNodes" in p for p in problems(raw))


@given(st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True).filter(lambda t: t.lower() != "latest"))
def test_every_valid_image_tag_is_accepted(tag):
    assert settings_from(with_(ROLLING, {f"{API}.tag": tag}), "demo").service("chat-api").tag == tag


@given(st.dictionaries(st.sampled_from(["replicas", "port", "tag", "healthPath", "hosts", "pathPrefix", "router"]), st.one_of(st.text(max_size=5), st.integers(), st.booleans(), st.none())))
def test_parse_never_raises_anything_but_a_settings_error(keys):
    raw = copy.deepcopy(ROLLING)
    raw["services"]["chat-api"].update(keys)
    try:
        settings_from(raw, "demo")
    except SettingsError as error:
        assert all(p.startswith("carepath:") for p in error.problems)


# --- service names ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Chat-api", "chat_api", "-chat", "chat-", "1chat", "chat api", "a" * 41])
def test_a_service_name_that_is_not_a_short_dns_label_is_refused(name):
    found = problems(one_service(service(), name=name))
    assert f"carepath:services.{name}: {name!r} is not a service name (lowercase letters, digits, '-'; at most 40; a DNS label)" in found, found


def test_a_service_name_read_from_yaml_as_a_number_is_refused_with_the_others_checked():
    found = problems({"services": {1: service(), "chat-api": service(), "triage-api": service()}})
    assert found == [
        "carepath:services.1: '1' is not a service name (lowercase letters, digits, '-'; at most 40; a DNS label)",
        "carepath:services.triage-api: names neither hosts nor pathPrefix, nor does chat-api; only one service can take the requests no other service's hosts "
        "or path prefix match: give the others hosts or a pathPrefix",
    ]


@given(st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), st.sampled_from([service(), service(hosts=["a.example.org"]), {}, None, 3]), max_size=4))
def test_parse_never_raises_anything_but_a_settings_error_whatever_the_services(entries):
    try:
        settings_from({"services": entries})
    except SettingsError as error:
        assert all(p.startswith("carepath:") for p in error.problems)


@given(st.from_regex(r"[a-z]([a-z0-9-]{0,38}[a-z0-9])?", fullmatch=True))
def test_every_dns_label_of_at_most_40_is_a_service_name(name):
    assert list(settings_from(one_service(service(), name=name)).services) == [name]


def test_a_stack_needs_a_service():
    assert problems({}) == ["carepath:services is required: at least one service (`services.chat-api.rollout.strategy: rolling`)"]
    assert problems({"services": {}}) == ["carepath:services is empty: name at least one service (`services.chat-api.rollout.strategy: rolling`)"]
    assert problems({"services": ["chat-api"]}) == ['carepath:services: ["chat-api"] is not a mapping']


def test_a_service_named_like_another_services_objects_is_refused():
    found = problems(services(chat_api=service(), chat_api_canary=service(hosts=["canary.example.org"])))
    assert found == [
        "carepath:services.chat-api-canary: begins with 'chat-api-', as the names of chat-api's own objects do (chat-api-canary, chat-api-blue, "
        "chat-api-mesh): the two services' objects could take one name; rename one of them"
    ]
    settings_from(services(chat=service(), chatter=service(hosts=["chatter.example.org"])))  # a longer name without the '-' is another name


# --- several services ------------------------------------------------------------------------


def test_every_error_of_several_services_is_reported_at_once_with_its_key():
    raw = services(
        chat_api=service("canary", rollout={"canary": {"weight": 120}}),
        triage_api=service(hosts=["triage.example.org"], tag="latest"),
        db_api=service(pathPrefix="/db", replicas=0),
    )
    assert sorted(problems(raw)) == [
        "carepath:services.chat-api.rollout.canary.weight: 120 is not in 0..100",
        "carepath:services.db-api.replicas: 0 is not in 1..1000",
        "carepath:services.triage-api.tag: 'latest' is a moving tag: pin a released image tag such as v1.4.0",
    ]


def test_one_services_parse_error_leaves_the_rules_of_the_others_to_run():
    raw = services(
        chat_api=service(replicas=0),  # does not parse
        triage_api=service(rollout={"canary": {"weight": 10}}),  # parses, breaks a rule of its own
        db_api=service(),  # with triage-api, a second default service
    )
    assert problems(raw) == [
        "carepath:services.chat-api.replicas: 0 is not in 1..1000",
        "carepath:services.triage-api.rollout.canary.weight: 10 needs carepath:services.triage-api.rollout.canary.tag (no canary in flight means no tag and weight 0)",
        "carepath:services.triage-api: names neither hosts nor pathPrefix, nor does db-api; only one service can take the requests no other service's hosts "
        "or path prefix match: give the others hosts or a pathPrefix",
    ]


PER_STRATEGY_RULES = [
    (service(tag=None), "carepath:services.triage-api.tag is required: the rolling strategy deploys it as the stable version"),
    (service("canary", tag=None), "carepath:services.triage-api.tag is required: the canary strategy deploys it as the stable version"),
    (service("blue-green", rollout={"blueGreen": {"blue": {"tag": "v1"}}}), "carepath:services.triage-api.rollout.blueGreen.green.tag is required: the blue-green strategy runs both colours"),
    (service("blue-green", rollout={"blueGreen": {"green": {"tag": "v2"}}}), "carepath:services.triage-api.rollout.blueGreen.blue.tag is required: the blue-green strategy runs both colours"),
    (service(rollout={"inFlight": {"id": "a1b2c3", "tag": "v2.0.0"}}),
     "carepath:services.triage-api.rollout.inFlight.tag: 'v2.0.0' is not deployed by the rolling strategy's config (v1.4.0)"),
    (service("canary", rollout={"canary": {"tag": "v1.4.0"}}), "carepath:services.triage-api.rollout.canary.tag: 'v1.4.0' is already the stable carepath:services.triage-api.tag"),
]


@pytest.mark.parametrize("triage_api, expected", PER_STRATEGY_RULES, ids=[e[36:90] for _, e in PER_STRATEGY_RULES])
def test_the_strategy_rules_hold_per_service(triage_api, expected):
    raw = services(chat_api=service("canary", rollout={"canary": {"tag": "v2.0.0", "weight": 10}}), triage_api={**triage_api, "hosts": ["triage.example.org"]})
    found = problems(raw)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_signal_overrides_are_checked_against_their_own_services_catalogue(monkeypatch):
    monkeypatch.setitem(signals.CATALOGUES, "triage-api", tuple(s for s in signals.CHAT_API if s.name in ("errors", "latency-p95")))
    drop_refusals = {"analysis": {"signals": [{"name": "refusals", "enabled": False}]}}
    raw = services(chat_api=service(rollout=drop_refusals), triage_api=service(hosts=["triage.example.org"], rollout=drop_refusals))
    assert problems(raw) == [
        "carepath:services.triage-api.rollout.analysis.signals[0].enabled: false, but 'refusals' is not a default signal (defaults: errors, latency-p95)"
    ]


# --- the shared edge: hosts and path prefixes --------------------------------------------------


def test_two_services_without_hosts_or_a_path_prefix_are_refused():
    found = problems(services(chat_api=service(), triage_api=service(), db_api=service(hosts=["db.example.org"])))
    assert found == [
        "carepath:services.triage-api: names neither hosts nor pathPrefix, nor does chat-api; only one service can take the requests no other service's hosts "
        "or path prefix match: give the others hosts or a pathPrefix"
    ]


OVERLAPS = [
    ({"hosts": ["chat.example.org"]}, {"hosts": ["triage.example.org", "chat.example.org"]}, "(/) overlap chat-api's (/) on chat.example.org"),
    ({"hosts": ["chat.example.org"], "pathPrefix": "/v1"}, {"hosts": ["chat.example.org"], "pathPrefix": "/v1/triage"}, "(/v1/triage) overlap chat-api's (/v1) on chat.example.org"),
    ({"hosts": ["a.example.org", "b.example.org"], "pathPrefix": "/x"}, {"hosts": ["b.example.org", "a.example.org"], "pathPrefix": "/x"},
     "(/x) overlap chat-api's (/x) on a.example.org, b.example.org"),
    ({"pathPrefix": "/triage"}, {"pathPrefix": "/triage"}, "(/triage) overlap chat-api's (/triage) on (any host)"),
    ({"pathPrefix": "/v1"}, {"pathPrefix": "/v1/triage"}, "(/v1/triage) overlap chat-api's (/v1) on (any host)"),
]


@pytest.mark.parametrize("chat_api, triage_api, expected", OVERLAPS)
def test_two_services_of_one_kind_that_match_the_same_requests_are_refused(chat_api, triage_api, expected):
    found = problems(services(chat_api=service(router="alb", **chat_api), triage_api=service(router="alb", **triage_api)))
    assert found == [f"carepath:services.triage-api: its hosts and pathPrefix {expected}: a request must belong to one service"]


APART = [
    ({"hosts": ["chat.example.org"]}, {"hosts": ["triage.example.org"]}),
    ({"pathPrefix": "/tri"}, {"pathPrefix": "/triage"}),
    ({"hosts": ["chat.example.org"], "pathPrefix": "/v1"}, {"hosts": ["triage.example.org"], "pathPrefix": "/v1"}),
    # of different kinds: the more specific takes its part (the edge tries it first)
    ({"hosts": ["chat.example.org"]}, {"hosts": ["chat.example.org"], "pathPrefix": "/triage"}),
    ({"hosts": ["chat.example.org"]}, {"pathPrefix": "/triage"}),
    ({}, {"pathPrefix": "/triage"}),
]


@pytest.mark.parametrize("chat_api, triage_api", APART)
def test_services_that_the_edge_tells_apart_are_accepted(chat_api, triage_api):
    settings = settings_from(services(chat_api=service(router="alb", **chat_api), triage_api=service(router="alb", **triage_api)))
    assert (settings.service("triage-api").hosts, settings.service("triage-api").path_prefix) == (tuple(triage_api.get("hosts", ())), triage_api.get("pathPrefix"))


@pytest.mark.parametrize("router", ["istio", "gateway-api"])
def test_a_path_prefix_without_hosts_is_refused_on_a_router_that_tells_services_apart_by_host(router):
    found = problems(services(chat_api=service(), triage_api=service(router=router, pathPrefix="/triage")))
    assert found == [
        f"carepath:services.triage-api.pathPrefix: '/triage' on the edge's default host, but the {router} router tells services apart by host only: "
        "give the service hosts of its own, or another router"
    ]
    settings_from(services(chat_api=service(), triage_api=service(router="alb", pathPrefix="/triage")))  # the ALB routes by path


@pytest.mark.parametrize("router", ["istio", "gateway-api"])
def test_two_services_on_a_host_routing_router_cannot_share_a_host(router):
    raw = services(
        chat_api=service(router=router, hosts=["chat.example.org"]),
        triage_api=service(router=router, hosts=["triage.example.org", "chat.example.org"], pathPrefix="/triage"),
    )
    assert problems(raw) == [
        f"carepath:services.triage-api.hosts: 'chat.example.org' is also chat-api's, and the {router} router tells services apart by host only: "
        "give each its own hosts, or route one with another router"
    ]
    raw["services"]["chat-api"]["router"] = "alb"  # on different routers, the ALB's rules tell them apart
    assert settings_from(raw).routers["triage-api"].name == router


def test_an_overlap_on_a_host_routing_router_is_reported_once():
    found = problems(services(chat_api=service(router="istio", hosts=["chat.example.org"]), triage_api=service(router="istio", hosts=["chat.example.org"])))
    assert found == ["carepath:services.triage-api: its hosts and pathPrefix (/) overlap chat-api's (/) on chat.example.org: a request must belong to one service"]


def test_more_than_3_hosts_are_refused():
    hosts = [f"h{n}.example.org" for n in range(4)]
    assert problems(one_service(service(hosts=hosts))) == [
        "carepath:services.chat-api.hosts: 4 host names; an ALB rule matches at most 3 besides the path (list 3 or fewer)"
    ]
    assert settings_from(one_service(service(hosts=hosts[:3]))).service("chat-api").hosts == tuple(hosts[:3])


def test_a_host_listed_twice_is_refused():
    assert problems(one_service(service(hosts=["chat.example.org", "chat.example.org"]))) == [
        'carepath:services.chat-api.hosts: ["chat.example.org", "chat.example.org"] lists a host name twice'
    ]


def test_two_services_cannot_create_one_repository():
    raw = services(chat_api=service(), triage_api=service(hosts=["triage.example.org"], repository="carepath-chat-api"))
    expected = (
        "carepath:services.triage-api.repository: 'carepath-chat-api' is chat-api's repository too, and the stack creates it: "
        "give each service its own (services share only an existing repository, createRepository: false on both)"
    )
    assert problems(raw) == [expected]
    raw["services"]["triage-api"]["createRepository"] = False  # chat-api still creates it
    assert problems(raw) == [expected]
    raw["services"]["chat-api"]["createRepository"] = False
    settings = settings_from(raw)
    assert settings.repository("chat-api") == settings.repository("triage-api") == "carepath-chat-api"


# --- routers ------------------------------------------------------------------------------


def test_a_router_that_does_not_exist_is_refused():
    assert problems(one_service(service(router="nginx"))) == ["carepath:services.chat-api.router: 'nginx' is not one of istio, alb, gateway-api"]
    assert "carepath:services.chat-api.router: 'Istio' is not a router name such as istio, alb or gateway-api" in problems(one_service(service(router="Istio")))


@pytest.mark.parametrize(
    "strategy, router, expected",
    [
        ("canary", "alb", "'alb' does not carry out the canary strategy (alb: rolling, blue-green; canary: istio, gateway-api)"),
        ("blue-green", "istio", "'istio' does not carry out the blue-green strategy (istio: rolling, canary; blue-green: alb)"),
        ("blue-green", "gateway-api", "'gateway-api' does not carry out the blue-green strategy (gateway-api: rolling, canary; blue-green: alb)"),
    ],
)
def test_a_router_that_does_not_carry_out_the_strategy_is_refused_with_those_that_do(strategy, router, expected):
    assert problems(services(chat_api=service(strategy, router=router))) == [f"carepath:services.chat-api.router: {expected}"]


@pytest.mark.parametrize("router", ["istio", "gateway-api"])
def test_a_router_in_the_mesh_needs_the_mesh(router):
    assert problems({**one_service(service(router=router)), "mesh": {"enabled": False}}) == [
        f"carepath:mesh.enabled: false, but carepath:services.chat-api.router is {router!r}, which routes in the Istio mesh"
    ]


@pytest.mark.parametrize(
    "strategy, mesh, router",
    [
        ("rolling", None, "alb"),
        ("rolling", False, "alb"),
        ("rolling", True, "istio"),
        ("canary", None, "istio"),
        ("canary", True, "istio"),
        ("blue-green", None, "alb"),
        ("blue-green", False, "alb"),
        ("blue-green", True, "alb"),
    ],
)
def test_a_service_without_a_router_gets_its_strategys(strategy, mesh, router):
    raw = {**services(chat_api=service(strategy)), **({"mesh": {"enabled": mesh}} if mesh is not None else {})}
    settings = settings_from(raw)
    assert settings.routers["chat-api"].name == router == default_router(strategy, mesh)
    assert settings.mesh_enabled is (mesh if mesh is not None else router == "istio")


@pytest.mark.parametrize(
    "routers, mesh, expected",
    [
        (("alb",), None, (False, False)),
        (("alb", "alb"), None, (False, False)),
        (("alb",), True, (True, False)),
        (("istio",), None, (True, False)),
        (("alb", "istio"), None, (True, False)),
        (("gateway-api",), None, (True, True)),
        (("alb", "gateway-api"), None, (True, True)),
        (("istio", "gateway-api"), True, (True, True)),
    ],
)
def test_the_mesh_and_the_gateway_api_are_on_when_a_services_router_needs_them(routers, mesh, expected):
    entries = {f"s{index}": service(router=router, hosts=[f"s{index}.example.org"]) for index, router in enumerate(routers)}
    settings = settings_from({**services(**entries), **({"mesh": {"enabled": mesh}} if mesh is not None else {})})
    assert [traits.name for traits in settings.routers.values()] == list(routers)
    assert (settings.mesh_enabled, settings.gateway_api) == expected


# --- the release record, rollout.inFlight ------------------------------------------------

RECORD = {"id": "a1b2c3d4e5f6", "tag": "v2.0.0", "previous": "v1.4.0", "started": "2026-11-28T10:02:11Z"}
IN_FLIGHT = {
    "rolling": with_(ROLLING, {f"{API}.tag": "v2.0.0"}),
    "canary": with_(ROLLING, {f"{API}.rollout.strategy": "canary", f"{API}.rollout.canary.tag": "v2.0.0", f"{API}.rollout.canary.weight": 5}),
    "blue-green": with_(ROLLING, {**BLUE_GREEN, **TEST_CIDRS, f"{API}.rollout.blueGreen.blue.tag": "v1.4.0", f"{API}.rollout.blueGreen.green.tag": "v2.0.0"}),
}


def in_flight_of(raw: Mapping[str, Any], stack: str = "demo"):
    in_flight = settings_from(raw, stack).service("chat-api").rollout.in_flight
    assert in_flight is not None
    return in_flight


@pytest.mark.parametrize("strategy", IN_FLIGHT)
def test_a_release_record_parses(strategy):
    in_flight = in_flight_of(with_(IN_FLIGHT[strategy], {f"{API}.rollout.inFlight": RECORD}), "staging")
    assert (in_flight.id, in_flight.tag, in_flight.previous, in_flight.started) == ("a1b2c3d4e5f6", "v2.0.0", "v1.4.0", "2026-11-28T10:02:11Z")


def test_a_release_record_needs_only_an_id_and_a_tag():
    in_flight = in_flight_of(with_(IN_FLIGHT["rolling"], {f"{API}.rollout.inFlight": {"id": "a1b2c3", "tag": "v2.0.0"}}))
    assert (in_flight.previous, in_flight.started) == (None, "1970-01-01T00:00:00Z")


@pytest.mark.parametrize("strategy, deployed", [("rolling", "v2.0.0"), ("canary", "v2.0.0"), ("blue-green", "v1.4.0, v2.0.0")])
def test_a_record_of_a_tag_the_strategy_does_not_deploy_is_an_error(strategy, deployed):
    found = problems(with_(IN_FLIGHT[strategy], {f"{API}.rollout.inFlight": {**RECORD, "tag": "v3.0.0"}}))
    assert f"carepath:services.chat-api.rollout.inFlight.tag: 'v3.0.0' is not deployed by the {strategy} strategy's config ({deployed})" in found[0], found
    assert len(found) == 1


def test_a_canary_record_without_a_canary_is_an_error():
    found = problems(with_(ROLLING, {f"{API}.rollout.strategy": "canary", f"{API}.rollout.inFlight": RECORD}))
    expected = "carepath:services.chat-api.rollout.inFlight.tag: 'v2.0.0' is not deployed by the canary strategy's config (no candidate)"
    assert any(p.startswith(expected) for p in found), found


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("id", "XYZ123", "inFlight.id: 'XYZ123' is not a release id (hex)"),
        ("id", "abc12", "inFlight.id: 'abc12' is not a release id (hex)"),
        ("id", "A1B2C3D4", "inFlight.id: 'A1B2C3D4' is not a release id (hex)"),
        ("id", 123456, "inFlight.id: 123456 is not a string"),
        ("started", "2026-11-28 10:02:11", "inFlight.started: '2026-11-28 10:02:11' is not a UTC time such as 2026-11-28T10:02:11Z"),
        ("started", "2026-11-28T10:02:11+01:00", "inFlight.started: '2026-11-28T10:02:11+01:00' is not a UTC time"),
        ("tag", "latest", "inFlight.tag: 'latest' is a moving tag"),
        ("previous", "", "inFlight.previous: '' is empty"),
    ],
)
def test_a_bad_release_record_names_its_key(key, value, expected):
    found = problems(with_(IN_FLIGHT["rolling"], {f"{API}.rollout.inFlight": {**RECORD, key: value}}))
    assert any(f"carepath:services.chat-api.rollout.{expected}" in p for p in found), found


def test_an_unknown_key_in_the_release_record_lists_the_allowed_ones():
    record = {key: value for key, value in RECORD.items() if key != "started"}
    found = problems(with_(IN_FLIGHT["rolling"], {f"{API}.rollout.inFlight": {**record, "stared": RECORD["started"]}}))
    assert found == ["carepath:services.chat-api.rollout.inFlight.stared: unknown key; did you mean 'started'? (allowed: id, tag, previous, started)"]


@pytest.mark.parametrize("missing", ["id", "tag"])
def test_a_release_record_without_an_id_or_tag_is_an_error(missing):
    record = {key: value for key, value in RECORD.items() if key != missing}
    assert f"carepath:services.chat-api.rollout.inFlight.{missing} is required" in problems(with_(IN_FLIGHT["rolling"], {f"{API}.rollout.inFlight": record}))


@given(st.text(alphabet="0123456789abcdefgABC-", max_size=40))
def test_a_release_id_is_accepted_exactly_when_6_to_32_lowercase_hex_digits(release_id):
    raw = with_(IN_FLIGHT["rolling"], {f"{API}.rollout.inFlight": {**RECORD, "id": release_id}})
    if 6 <= len(release_id) <= 32 and all(c in "0123456789abcdef" for c in release_id):
        assert in_flight_of(raw).id == release_id
    else:
        assert any(p.startswith("carepath:services.chat-api.rollout.inFlight.id:") for p in problems(raw))


# --- what a reviewer would refuse ---------------------------------------------


def _float_keys(hint: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every decimal field under `hint` (a section's type), through nested
    sections, the values of `services` (as chat-api) and the first item of a list."""
    hint = next((a for a in typing.get_args(hint) if a is not type(None)), hint) if typing.get_origin(hint) is typing.Union else hint
    origin = typing.get_origin(hint)
    if hint is float:
        return [path]
    if origin is dict:
        return _float_keys(typing.get_args(hint)[1], (*path, "chat-api"))
    if origin is tuple:
        return _float_keys(typing.get_args(hint)[0], (*path, 0))
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        return [key for f in dataclasses.fields(hint) for key in _float_keys(hints[f.name], (*path, to_camel(f.name)))]
    return []


FLOAT_KEYS = [(section, path) for section, hint in SECTIONS.items() for path in _float_keys(hint)]


def _set_at(raw: dict[str, Any], section: str, path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """`raw` with `value` at `section`.`path`; a list index makes a one-item list."""
    result = copy.deepcopy(raw)
    node: Any = result.setdefault(section, {})
    for part, following in itertools.pairwise((*path, None)):
        if following is None:
            node[part] = value
        else:
            empty: Any = [{}] if isinstance(following, int) else {}
            node = node.setdefault(part, empty) if isinstance(node, dict) else node[part]
    return result


def test_every_decimal_setting_is_found():
    keys = {".".join(str(p) for p in (section, *path)) for section, path in FLOAT_KEYS}
    signal = "services.chat-api.rollout.analysis.signals.0"
    assert keys == {
        *(f"monitoring.thresholds.{k}" for k in ("errorRatio", "latencyP95Seconds", "canaryErrorMargin", "minRequestsPerSecond")),
        *(f"services.chat-api.rollout.analysis.{k}" for k in ("alpha", "beta")),
        *(f"{signal}.{k}" for k in ("quantile", "good", "bad", "bound", "weight", "minEvents")),
    }


@given(st.sampled_from(FLOAT_KEYS), st.sampled_from([math.inf, -math.inf, math.nan]))
def test_no_decimal_setting_accepts_nan_or_infinity(key, value):
    section, path = key
    found = problems(_set_at(ROLLING, section, path, value))
    where = key_of(section, path)
    assert f"{where}: {json.dumps(value)} is not a finite number" in found, found


def test_infinity_is_refused_with_its_key():
    raw = with_(ROLLING, {f"{API}.rollout.analysis.signals": [{"name": "errors", "bad": math.inf}]})
    assert problems(raw) == ["carepath:services.chat-api.rollout.analysis.signals[0].bad: Infinity is not a finite number"]


WORLD_IN_HALVES = ["0.0.0.0/1", "128.0.0.0/1"]
ENDPOINT_OPEN = "carepath:cluster.publicAccessCidrs: {} {} every IPv4 address; on production the public API endpoint is open only"
TEST_OPEN = "carepath:edge.testCidrs: {} {} every IPv4 address; on production the test listener is open only"


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"cluster.publicAccessCidrs": []}, "carepath:cluster.publicAccessCidrs: [] is empty, which EKS reads as 0.0.0.0/0"),
        ({"edge.allowedCidrs": []}, "carepath:edge.allowedCidrs: [] is empty: the public listeners would admit no one"),
        ({"edge.testCidrs": ["::/0"]}, "carepath:edge.testCidrs[0]: '::/0' is an IPv6 block; list IPv4 blocks only"),
        ({"edge.allowedCidrs": ["2001:db8::/32"]}, "carepath:edge.allowedCidrs[0]: '2001:db8::/32' is an IPv6 block"),
        ({"cluster.publicAccessCidrs": ["203.0.113.0/24", "::/0"]}, "carepath:cluster.publicAccessCidrs[1]: '::/0' is an IPv6 block"),
    ],
)
def test_cidr_lists_that_limit_nothing_are_refused_on_every_stack(overrides, expected):
    assert any(p.startswith(expected) for p in problems(with_(ROLLING, overrides))), expected


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"cluster.publicAccessCidrs": WORLD_IN_HALVES}, ENDPOINT_OPEN.format(json.dumps(WORLD_IN_HALVES), "together cover")),
        ({"cluster.publicAccessCidrs": ["0.0.0.0/0"]}, ENDPOINT_OPEN.format('["0.0.0.0/0"]', "covers")),
        ({"cluster.publicAccessCidrs": ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/1"]}, ENDPOINT_OPEN.format('["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/1"]', "together cover")),
        ({"edge.testCidrs": WORLD_IN_HALVES}, TEST_OPEN.format(json.dumps(WORLD_IN_HALVES), "together cover")),
        ({"edge.testCidrs": ["0.0.0.0/0"]}, TEST_OPEN.format('["0.0.0.0/0"]', "covers")),
    ],
)
def test_production_refuses_its_endpoint_and_test_listener_open_to_every_address(overrides, expected):
    config = apply_overrides(load_stack_config("production"), {f"carepath:{k}": v for k, v in overrides.items()})
    found = problems(carepath_sections(config), "production")
    assert any(p.startswith(expected) for p in found), found


def test_production_may_open_what_it_closes_elsewhere():
    # Close to the whole space is not the whole space; a private endpoint needs no list; other stacks may be open.
    config = load_stack_config("production")
    almost = apply_overrides(config, {"carepath:cluster.publicAccessCidrs": ["0.0.0.0/1", "128.0.0.0/2"], "carepath:edge.testCidrs": ["198.51.100.0/24"]})
    assert settings_from(carepath_sections(almost), "production").cluster.public_access_cidrs == ("0.0.0.0/1", "128.0.0.0/2")
    private = apply_overrides(config, {"carepath:cluster.endpointPublicAccess": False, "carepath:cluster.publicAccessCidrs": ["0.0.0.0/0"]})
    assert settings_from(carepath_sections(private), "production").cluster.endpoint_public_access is False
    assert settings_from(with_(ROLLING, {"edge.testCidrs": WORLD_IN_HALVES, "cluster.publicAccessCidrs": WORLD_IN_HALVES}), "demo")


RECEIVERS = {"receivers": [{"name": "team", "kind": "slack", "secret": "slackUrl"}, {"name": "pager", "kind": "pagerduty", "secret": "pagerKey"}]}
TWO_SECRETS = {**ROLLING, "monitoring": RECEIVERS, "secrets": {"slackUrl": "https://hooks.example/abc", "pagerKey": "k-123"}}


def test_each_secret_is_checked_on_its_own():
    # One encrypted value does not vouch for the other once the caller names the values.
    with pytest.raises(SettingsError) as caught:
        settings_from(TWO_SECRETS, "demo", frozenset({"secrets", "secrets.slackUrl"}))
    assert caught.value.problems == ["carepath:secrets.pagerKey: set in plain text; use `pulumi config set --secret --path secrets.pagerKey <value>`"]
    assert settings_from(TWO_SECRETS, "demo", frozenset({"secrets", "secrets.slackUrl", "secrets.pagerKey"})).secrets["pagerKey"] == "k-123"
    # Nothing says either is encrypted: each is named.
    assert [p.split(":")[1] for p in problems(TWO_SECRETS)] == ["secrets.slackUrl", "secrets.pagerKey"]


def test_the_encrypted_values_are_read_from_the_stack_file():
    config = {
        "aws:region": "us-east-1",
        "carepath:secrets": {"slackUrl": {"secure": "AAAB"}, "pagerKey": "k-123"},
        "carepath:monitoring": {"receivers": [{"name": "x", "kind": "webhook", "secret": {"secure": "AAAC"}}]},
    }
    raw = {**TWO_SECRETS, "secrets": {"slackUrl": "[secret]", "pagerKey": "k-123"}}
    with pytest.raises(SettingsError) as caught:
        settings_from(raw, "demo", secret_paths(config) | {"secrets"})
    assert [p.split(":")[1] for p in caught.value.problems] == ["secrets.pagerKey"]


SECRET = "s3cr3t-Zq9"  # distinctive: found in a message only if a value was echoed


@given(st.text(alphabet="abcdefXYZ0123456789-_/:.", min_size=4, max_size=30))
def test_no_error_message_echoes_a_secret_value(tail):
    value = SECRET + tail
    malformed: list[Any] = [
        value,  # the section as a string
        [value],  # as a list
        {"slackUrl": [value]},  # a value that is not a string
        {"slackUrl": {"nested": value}},
        {"slackUrl": 42, "pagerKey": value},
        {"slackUrl": value, "pagerKey": value},  # set in plain text
    ]
    for secrets in malformed:
        for keys in (frozenset(), frozenset({"secrets.other"})):
            with pytest.raises(SettingsError) as caught:
                settings_from({**ROLLING, "monitoring": RECEIVERS, "secrets": secrets}, "demo", keys)
            assert SECRET not in str(caught.value), str(caught.value)
            assert caught.value.problems and all(p.startswith("carepath:") for p in caught.value.problems)


@pytest.mark.parametrize("key", ["port", "metricsPort"])
@pytest.mark.parametrize("port", [15000, 15001, 15004, 15006, 15008, 15009, 15020, 15021, 15053, 15090])
def test_a_port_istio_takes_is_refused_naming_the_key(key, port):
    found = problems(with_(ROLLING, {f"{API}.{key}": port}))
    ports = "15000, 15001, 15004, 15006, 15008, 15009, 15020, 15021, 15053, 15090"
    assert f"carepath:services.chat-api.{key}: {port} is one of the ports Istio's sidecar and gateway take ({ports}); choose another" in found


@pytest.mark.parametrize("port", [14999, 15002, 15010, 15091])
def test_ports_next_to_istios_are_accepted(port):
    assert settings_from(with_(ROLLING, {f"{API}.metricsPort": port}), "demo").service("chat-api").metrics_port == port


def production(overrides: Optional[Mapping[str, Any]] = None, unset: tuple[str, ...] = ()) -> dict[str, Any]:
    """Production's stack file with `--path`-style overrides and keys removed, as the settings take it."""
    config = apply_overrides(load_stack_config("production"), {f"carepath:{k}": v for k, v in (overrides or {}).items()}, unset=tuple(f"carepath:{k}" for k in unset))
    return carepath_sections(config)


@pytest.mark.parametrize(
    "overrides, unset, expected",
    [
        ({f"{API}.replicas": 1}, (), "carepath:services.chat-api.replicas: 1 on production; at least 2"),
        ({f"{API}.autoscaling": {"enabled": True, "minReplicas": 1}}, (), "carepath:services.chat-api.autoscaling.minReplicas: 1 on production; at least 2"),
        ({f"{API}.rollout.rolling.maxUnavailable": 1}, (), "carepath:services.chat-api.rollout.rolling.maxUnavailable: 1 on production must be 0"),
        ({f"{API}.rollout.rolling.maxUnavailable": "25%"}, (), 'carepath:services.chat-api.rollout.rolling.maxUnavailable: "25%" on production must be 0'),
        ({}, ("edge.certificateArn",), "carepath:edge.certificateArn is required on production: it serves HTTPS only"),
    ],
)
def test_production_refuses_what_the_policy_pack_would(overrides, unset, expected):
    found = problems(production(overrides, unset), "production")
    assert [p for p in found if p.startswith(expected)] == found, found
    # The same config is another stack's to choose (but for the promotion, whose stage after staging staging cannot be).
    assert settings_from(production(overrides, (*unset, f"{API}.promotion")), "staging")


def test_the_stack_files_still_parse():
    for stack in STACKS:
        assert settings_from(carepath_sections(load_stack_config(stack)), stack).stack == stack


def plain_http_problems(edge: Mapping[str, Any], stack: str) -> list[str]:
    """The problems of ROLLING with this edge, parsed as given (no test certificate added)."""
    with pytest.raises(SettingsError) as caught:
        parse({**ROLLING, "edge": dict(edge)}, stack, routers=TRAITS)
    return [p for p in caught.value.problems if "edge." in p]


def test_a_public_listener_without_a_certificate_needs_the_named_opt_in():
    assert plain_http_problems({}, "demo") == [
        "carepath:edge.certificateArn is required: the public listener would serve plain HTTP; set an ACM certificate ARN, "
        "or on this demo stack opt in to plain HTTP with edge.allowPlainHttp: true"
    ]
    assert settings_from({**ROLLING, "edge": {"allowPlainHttp": True}}, "demo").edge.certificate_arn is None


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_patient_facing_stacks_refuse_plain_http(stack):
    assert (

        f"carepath:edge.allowPlainHttp: true is refused on {stack}, which serves patients (staging, production serve HTTPS only): "
        "remove it and set edge.certificateArn to an ACM certificate ARN"
    ) in plain_http_problems({"allowPlainHttp": True}, stack)
    # Without the opt-in, the certificate is required and no opt-in is offered.
    assert [p for p in plain_http_problems({}, stack) if "allowPlainHttp" in p] == []
    assert any(p.startswith("carepath:edge.certificateArn is required") for p in plain_http_problems({}, stack))


def test_the_stack_files_choose_a_certificate_or_the_opt_in():
    for stack in STACKS:
        edge = settings_from(carepath_sections(load_stack_config(stack)), stack).edge
        assert (edge.certificate_arn is None) == edge.allow_plain_http == (stack == "demo"), stack


# --- what a service's pods may reach (core.network_policy) ---------------------


def test_calls_and_egress_default_to_nothing_and_parse_when_valid():
    assert (settings_from(ROLLING, "demo").service("chat-api").calls, settings_from(ROLLING, "demo").service("chat-api").egress) == ((), ())
    raw = services(
        chat_api=service(calls=["triage-api"], egress=[{"cidrs": ["198.51.100.0/24"], "ports": [443]}]),
        triage_api=service(hosts=["triage.example.org"]),
    )
    chat = settings_from(raw).service("chat-api")
    assert chat.calls == ("triage-api",)
    assert (chat.egress[0].cidrs, chat.egress[0].ports) == (("198.51.100.0/24",), (443,))


CALL_PROBLEMS = [
    (["chat-api"], "carepath:services.chat-api.calls[0]: 'chat-api' is the service itself; list the other services it calls"),
    (["triage-apu"], "carepath:services.chat-api.calls[0]: 'triage-apu' is not a service of this stack (its others: triage-api); did you mean 'triage-api'?"),
    (["triage-api", "triage-api"], "carepath:services.chat-api.calls[1]: 'triage-api' is listed twice"),
    (["Triage"], "carepath:services.chat-api.calls[0]: 'Triage' is not a service name"),
]


@pytest.mark.parametrize("calls, expected", CALL_PROBLEMS, ids=[e[28:60] for _, e in CALL_PROBLEMS])
def test_calls_name_other_services_of_the_stack(calls, expected):
    raw = services(chat_api=service(calls=calls), triage_api=service(hosts=["triage.example.org"]))
    found = problems(raw, "staging")
    assert any(expected in p for p in found), found


EGRESS_PROBLEMS = [
    ({"cidrs": ["203.0.113.7/24"], "ports": [443]}, "carepath:services.chat-api.egress[0].cidrs[0]: '203.0.113.7/24' is not a CIDR block such as 10.0.0.0/16"),
    ({"cidrs": ["::/0"], "ports": [443]}, "carepath:services.chat-api.egress[0].cidrs[0]: '::/0' is an IPv6 block"),
    ({"cidrs": [], "ports": [443]}, "carepath:services.chat-api.egress[0].cidrs: [] is empty: list at least one"),
    ({"cidrs": ["203.0.113.0/24"], "ports": []}, "carepath:services.chat-api.egress[0].ports: [] is empty: list at least one"),
    ({"cidrs": ["203.0.113.0/24"], "ports": [0]}, "carepath:services.chat-api.egress[0].ports[0]: 0 is not in 1..65535"),
    ({"cidrs": ["203.0.113.0/24"]}, "carepath:services.chat-api.egress[0].ports is required"),
]


@pytest.mark.parametrize("entry, expected", EGRESS_PROBLEMS, ids=[e[27:70] for _, e in EGRESS_PROBLEMS])
def test_egress_lists_ipv4_blocks_and_ports(entry, expected):
    found = problems(one_service({"tag": "v1.4.0", "rollout": {"strategy": "rolling"}, "egress": [entry]}))
    assert any(expected in p for p in found), found


# --- keys of another strategy's section: warned of, not refused ------------------------------

UNUSED_SECTIONS = [
    (
        service("rolling", {"canary": {"steps": [10, 100], "stickiness": False}}),
        "carepath:services.chat-api.rollout.canary (steps, stickiness): no effect on the rolling strategy, which reads none of it; "
        "it applies with carepath:services.chat-api.rollout.strategy: canary",
    ),
    (
        service("canary", {"blueGreen": {"isolation": "namespace"}}),
        "carepath:services.chat-api.rollout.blueGreen (isolation): no effect on the canary strategy, which reads none of it; "
        "it applies with carepath:services.chat-api.rollout.strategy: blue-green",
    ),
    (
        service("blue-green", {"canary": {"weight": 0}}),
        "carepath:services.chat-api.rollout.canary (weight): no effect on the blue-green strategy, which reads none of it; "
        "it applies with carepath:services.chat-api.rollout.strategy: canary",
    ),
]


@pytest.mark.parametrize("entry, expected", UNUSED_SECTIONS, ids=["canary on rolling", "blueGreen on canary", "canary on blue-green"])
def test_another_strategys_section_is_a_warning_naming_its_keys(entry, expected):
    settings = settings_from(services(chat_api=entry), "staging")
    assert settings.warnings == (expected,)


@pytest.mark.parametrize("strategy", ["rolling", "canary", "blue-green"])
def test_the_rolling_section_and_empty_sections_warn_of_nothing(strategy):
    # Every strategy's Deployments update by `rolling`; an empty section sets nothing.
    entry = service(strategy, {"rolling": {"maxSurge": 2}, "canary": {}})
    assert settings_from(services(chat_api=entry), "staging").warnings == ()


def test_the_stack_files_warn_of_nothing():
    for stack in STACKS:
        assert settings_from(carepath_sections(load_stack_config(stack)), stack).warnings == ()


# --- the edge's hardening: access logs, deletion protection, AWS WAF ------------


def stack_file_problems(stack: str, overrides: Mapping[str, Any]) -> list[str]:
    """The problems of a stack file with `--path`-style overrides under `carepath:`."""
    config = apply_overrides(load_stack_config(stack), {f"carepath:{key}": value for key, value in overrides.items()})
    with pytest.raises(SettingsError) as caught:
        settings_from(carepath_sections(config), stack)
    return caught.value.problems


def test_the_edge_is_hardened_by_default():
    edge = settings_from({**ROLLING, "edge": {"allowPlainHttp": True}}, "demo").edge
    assert (edge.access_logs.retention_days, edge.deletion_protection, edge.waf.enabled, edge.waf.log_retention_days) == (90, True, True, 90)


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"edge.accessLogs.retentionDays": 0}, "carepath:edge.accessLogs.retentionDays: 0 is not in 1..3650"),
        ({"edge.accessLogs.retentionDays": "90"}, "carepath:edge.accessLogs.retentionDays: '90' is not"),
        ({"edge.waf.logRetentionDays": 100}, "carepath:edge.waf.logRetentionDays: 100 is not a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120,"),
        ({"edge.waf.enabled": "no"}, "carepath:edge.waf.enabled: 'no' is not"),
        ({"edge.deletionProtection": "false"}, "carepath:edge.deletionProtection: 'false' is not"),
        ({"edge.waf.rules": []}, "carepath:edge.waf.rules: unknown key"),
    ],
)
def test_bad_edge_hardening_values_name_the_key_and_the_value(overrides, expected):
    assert any(p.startswith(expected) for p in stack_file_problems("demo", overrides)), stack_file_problems("demo", overrides)


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_patient_facing_stacks_refuse_the_waf_off(stack):
    assert stack_file_problems(stack, {"edge.waf.enabled": False}) == [
        f"carepath:edge.waf.enabled: false is refused on {stack}, which serves patients (staging, production keep AWS WAF on the ALB): remove the key"
    ]


def test_demo_may_turn_the_waf_and_deletion_protection_off():
    config = apply_overrides(load_stack_config("demo"), {"carepath:edge.deletionProtection": False})
    edge = settings_from(carepath_sections(config), "demo").edge
    assert edge.waf.enabled is False and edge.deletion_protection is False  # the stack file turns the WAF off


@pytest.mark.parametrize("key", ["port", "metricsPort"])
def test_the_tls_proxys_port_is_refused_naming_the_key(key):
    assert problems(with_(ROLLING, {f"{API}.{key}": 8443})) == [
        f"carepath:services.chat-api.{key}: 8443 is the port of the pods' TLS proxy for the ALB; choose another"
    ]


def test_the_image_scan_threshold_is_critical_unless_set_and_only_a_severity():
    assert settings_from(ROLLING, "demo").service("chat-api").image_scan.block_at == "CRITICAL"
    assert settings_from(with_(ROLLING, {f"{API}.imageScan.blockAt": "HIGH"}), "demo").service("chat-api").image_scan.block_at == "HIGH"
    assert problems(with_(ROLLING, {f"{API}.imageScan.blockAt": "critical"})) == [
        "carepath:services.chat-api.imageScan.blockAt: 'critical' is not one of INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL"
    ]

"""Settings: defaults, every rule's error (full key, value, what is allowed), all at once."""

from __future__ import annotations

import copy
import dataclasses
import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.settings import SettingsError, parse
from offline.harness import STACKS, apply_overrides, load_stack_config

ROLLING = {"rollout": {"strategy": "rolling"}, "chatApi": {"tag": "v1.4.0"}}


def with_(base: dict, **paths: Any) -> dict:
    """`base` with `section__key__sub=value` overrides (double underscore separates levels)."""
    namespaced = {f"carepath:{k}": v for k, v in base.items()}
    result = apply_overrides(namespaced, {k.replace("__", "."): v for k, v in paths.items()})
    return {k.removeprefix("carepath:"): v for k, v in result.items()}


def problems(raw: dict, stack: str = "demo") -> list[str]:
    with pytest.raises(SettingsError) as caught:
        parse(raw, stack)
    return caught.value.problems


def test_defaults_are_the_documented_ones():
    settings = parse(ROLLING, "demo")
    assert settings.cluster_name == "carepath-demo"
    assert settings.namespace == "carepath-demo"
    assert settings.cluster.kubernetes_version == "1.34"
    assert (settings.cluster.min_nodes, settings.cluster.desired_nodes, settings.cluster.max_nodes) == (2, 2, 4)
    assert settings.cluster.nat_gateways == "single"
    assert settings.chat_api.repository == "carepath-chat-api"
    assert (settings.chat_api.replicas, settings.chat_api.port, settings.chat_api.health_path) == (2, 8080, "/healthz")
    assert (settings.rollout.rolling.max_surge, settings.rollout.rolling.max_unavailable) == (1, 0)
    assert settings.rollout.canary.steps == (1, 5, 10, 25, 50, 75, 100)
    assert settings.rollout.canary.weight == 0 and settings.rollout.canary.tag is None
    assert (settings.rollout.canary.header.name, settings.rollout.canary.header.value) == ("x-version", "canary")
    assert settings.rollout.blue_green.active == "blue"
    assert settings.edge.certificate_arn is None and settings.edge.test_port == 8443
    assert settings.mesh.istio_version == "1.30.5"
    assert settings.monitoring.enabled is True


def test_settings_are_frozen():
    settings = parse(ROLLING, "demo")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.chat_api.replicas = 5  # type: ignore[misc]


@pytest.mark.parametrize("strategy, expected", [("rolling", False), ("canary", True), ("blue-green", False)])
def test_mesh_defaults_on_for_canary_only(strategy, expected):
    raw = with_(ROLLING, rollout__strategy=strategy, rollout__blueGreen__blue__tag="v1", rollout__blueGreen__green__tag="v2", edge__testCidrs=["203.0.113.0/24"])
    assert parse(raw, "demo").mesh_enabled is expected
    if strategy != "blue-green":
        assert parse(with_(raw, mesh__enabled=True), "demo").mesh_enabled is True


BAD_INPUTS = [
    (with_(ROLLING, rollout__strategy="canry"), "carepath:rollout.strategy: 'canry' is not one of rolling, canary, blue-green"),
    ({"chatApi": {"tag": "v1"}}, "carepath:rollout.strategy is required: one of rolling, canary, blue-green"),
    (with_(ROLLING, rollout__canary__weight=120), "carepath:rollout.canary.weight: 120 is not in 0..100"),
    (with_(ROLLING, rollout__canary__weight=-5), "carepath:rollout.canary.weight: -5 is not in 0..100"),
    (with_(ROLLING, rollout__canary__weight=12.5), "carepath:rollout.canary.weight: 12.5 is not an integer"),
    (with_(ROLLING, rollout__canary__weight="10"), "carepath:rollout.canary.weight: '10' is not an integer"),
    (with_(ROLLING, rollout__canary__steps=[5, 50, 25, 100]), "carepath:rollout.canary.steps: [5, 50, 25, 100] is not strictly increasing"),
    (with_(ROLLING, rollout__canary__steps=[5, 5, 100]), "carepath:rollout.canary.steps: [5, 5, 100] is not strictly increasing"),
    (with_(ROLLING, rollout__canary__steps=[5, 10, 50]), "carepath:rollout.canary.steps: [5, 10, 50] does not end at 100"),
    (with_(ROLLING, rollout__canary__steps=[]), "carepath:rollout.canary.steps: [] is empty"),
    (with_(ROLLING, rollout__canary__steps=[5, 150]), "carepath:rollout.canary.steps[1]: 150 is not in 0..100"),
    (with_(ROLLING, chatApi__replicas=0), "carepath:chatApi.replicas: 0 is not in 1..1000"),
    (with_(ROLLING, chatApi__replicas="two"), "carepath:chatApi.replicas: 'two' is not an integer"),
    (with_(ROLLING, chatApi__replicas=True), "carepath:chatApi.replicas: true is not an integer"),
    (with_(ROLLING, cluster__minNodes=3, cluster__desiredNodes=2), "carepath:cluster: node sizes must satisfy minNodes <= desiredNodes <= maxNodes, got minNodes=3, desiredNodes=2, maxNodes=4"),
    (with_(ROLLING, cluster__desiredNodes=5, cluster__maxNodes=4), "carepath:cluster: node sizes must satisfy minNodes <= desiredNodes <= maxNodes, got minNodes=2, desiredNodes=5, maxNodes=4"),
    (with_(ROLLING, chatApi__tag=""), "carepath:chatApi.tag: '' is empty"),
    (with_(ROLLING, chatApi__tag="latest"), "carepath:chatApi.tag: 'latest' is a moving tag"),
    (with_(ROLLING, chatApi__tag="LATEST"), "carepath:chatApi.tag: 'LATEST' is a moving tag"),
    (with_(ROLLING, chatApi__tag="v1.4.0:bad"), "carepath:chatApi.tag: 'v1.4.0:bad' is not a valid image tag"),
    (with_(ROLLING, chatApi__tag="-v1"), "carepath:chatApi.tag: '-v1' is not a valid image tag"),
    (with_(ROLLING, rollout__canary__tag="latest"), "carepath:rollout.canary.tag: 'latest' is a moving tag"),
    (with_(ROLLING, rollout__blueGreen__green__tag="x" * 129), "carepath:rollout.blueGreen.green.tag: '" + "x" * 129 + "' is not a valid image tag"),
    (with_(ROLLING, rollout__blueGreen__active="red"), "carepath:rollout.blueGreen.active: 'red' is not one of blue, green"),
    ({"rollout": {"strategy": "rolling"}}, "carepath:chatApi.tag is required: the rolling strategy deploys it"),
    ({"rollout": {"strategy": "canary"}}, "carepath:chatApi.tag is required: the canary strategy deploys it"),
    (with_(ROLLING, rollout__strategy="blue-green", rollout__blueGreen__blue__tag="v1"), "carepath:rollout.blueGreen.green.tag is required: the blue-green strategy runs both colours"),
    (with_(ROLLING, rollout__blueGreen__active="purple"), "carepath:rollout.blueGreen.active: 'purple' is not one of blue, green"),
    (with_(ROLLING, rollout__blueGreen__idleReplicas=-1), "carepath:rollout.blueGreen.idleReplicas: -1 is not in 0..1000"),
    (with_(ROLLING, rollout__blueGreen__idleReplicas=3), "carepath:rollout.blueGreen.idleReplicas: 3 is above chatApi.replicas (2)"),
    (with_(ROLLING, rollout__blueGreen__idleReplicas=1, chatApi__autoscaling__enabled=True), "carepath:rollout.blueGreen.idleReplicas: 1 cannot apply while chatApi.autoscaling is enabled"),
    (with_(ROLLING, rollout__blueGreen__greenWeight=101), "carepath:rollout.blueGreen.greenWeight: 101 is not in 0..100"),
    (with_(ROLLING, rollout__blueGreen__greenWeight=10, rollout__blueGreen__idleReplicas=0), "carepath:rollout.blueGreen.greenWeight: 10 splits production traffic over both colours"),
    (with_(ROLLING, rollout__blueGreen__isolation="vpc"), "carepath:rollout.blueGreen.isolation: 'vpc' is not one of shared, namespace"),
    (with_(ROLLING, rollout__strategy="blue-green", rollout__blueGreen__blue__tag="v1", rollout__blueGreen__green__tag="v2"), "carepath:edge.testCidrs is required for blue-green"),
    (with_(ROLLING, edge__testPort=80), "carepath:edge.testPort: 80 is taken by the production listener"),
    (with_(ROLLING, rollout__strategy="blue-green", rollout__blueGreen__blue__tag="v1", rollout__blueGreen__green__tag="v2", edge__testCidrs=["203.0.113.0/24"], mesh__enabled=True),
     "carepath:mesh.enabled: true is not supported with rollout.strategy 'blue-green'"),
    (with_(ROLLING, rollout__canary__header__name="x version"), "carepath:rollout.canary.header.name: 'x version' is not a lowercase HTTP header name"),
    (with_(ROLLING, rollout__canary__replicas=0), "carepath:rollout.canary.replicas: 0 is not in 1..1000"),
    (with_(ROLLING, edge__hostnames=["Chat.Example.org"]), "carepath:edge.hostnames[0]: 'Chat.Example.org' is not a DNS host name"),
    (with_(ROLLING, rollout__strategy="canary", mesh__enabled=False), "carepath:mesh.enabled: false is not allowed with rollout.strategy 'canary'"),
    (with_(ROLLING, rollout__canary__weight=10), "carepath:rollout.canary.weight: 10 needs rollout.canary.tag"),
    (with_(ROLLING, rollout__strategy="canary", rollout__canary__tag="v1.4.0"), "carepath:rollout.canary.tag: 'v1.4.0' is already the stable chatApi.tag"),
    (with_(ROLLING, chatApi__replica=3), "carepath:chatApi.replica: unknown key; did you mean 'replicas'?"),
    (with_(ROLLING, rollout__canary__header__nmae="x"), "carepath:rollout.canary.header.nmae: unknown key; did you mean 'name'?"),
    ({**ROLLING, "chatapi": {}}, "carepath:chatapi: unknown key; did you mean 'carepath:chatApi'?"),
    (with_(ROLLING, cluster__kubernetesVersion=1.3), "carepath:cluster.kubernetesVersion: 1.3 is not a string"),
    (with_(ROLLING, cluster__kubernetesVersion="1.3"), "carepath:cluster.kubernetesVersion: '1.3' is not a Kubernetes minor version"),
    (with_(ROLLING, cluster__instanceType="large"), "carepath:cluster.instanceType: 'large' is not an EC2 instance type"),
    (with_(ROLLING, cluster__vpcCidr="10.0.0.0/24"), "carepath:cluster.vpcCidr: '10.0.0.0/24' must be a /16 to /20 block"),
    (with_(ROLLING, cluster__vpcId="vpc-0123456789abcdef0"), "carepath:cluster.publicSubnetIds: [] must list at least 2 subnets"),
    (with_(ROLLING, cluster__privateSubnetIds=["subnet-01234567", "subnet-89abcdef"]), "carepath:cluster.vpcId is required when subnet ids are given"),
    (with_(ROLLING, cluster__publicAccessCidrs=["0.0.0.0/33"]), "carepath:cluster.publicAccessCidrs[0]: '0.0.0.0/33' is not a CIDR block"),
    (with_(ROLLING, cluster__adminRoleArns=["admin"]), "carepath:cluster.adminRoleArns[0]: 'admin' is not an IAM role ARN"),
    (with_(ROLLING, chatApi__port=80), "carepath:chatApi.port: 80 is not in 1024..65535"),
    (with_(ROLLING, chatApi__healthPath="healthz"), "carepath:chatApi.healthPath: 'healthz' is not an absolute HTTP path"),
    (with_(ROLLING, chatApi__repository="Carepath"), "carepath:chatApi.repository: 'Carepath' is not an ECR repository name"),
    (with_(ROLLING, rollout__rolling__maxSurge=0), "carepath:rollout.rolling: maxSurge and maxUnavailable are both 0"),
    (with_(ROLLING, rollout__rolling__maxSurge="150%"), "carepath:rollout.rolling.maxSurge: '150%' is not a count >= 0 or a percentage"),
    (with_(ROLLING, rollout__canary__header__name="X-Version"), "carepath:rollout.canary.header.name: 'X-Version' is not a lowercase HTTP header name"),
    (with_(ROLLING, edge__certificateArn="arn:aws:iam::123456789012:role/x"), "carepath:edge.certificateArn: 'arn:aws:iam::123456789012:role/x' is not an ACM certificate ARN"),
    (with_(ROLLING, edge__testPort=70000), "carepath:edge.testPort: 70000 is not in 1..65535"),
    (with_(ROLLING, mesh__istioVersion="1.21.0"), "carepath:mesh.istioVersion: '1.21.0' is older than 1.22"),
    (with_(ROLLING, mesh__istioVersion="latest"), "carepath:mesh.istioVersion: 'latest' is not an Istio release"),
    (with_(ROLLING, monitoring__enabled="yes"), "carepath:monitoring.enabled: 'yes' is not true or false"),
    ({**ROLLING, "monitoring": True}, "carepath:monitoring: true is not a mapping"),
    (with_(ROLLING, chatApi__resources__limits__memory="256Mi"), "carepath:chatApi.resources.limits.memory: '256Mi' is below the request '512Mi'"),
    (with_(ROLLING, chatApi__resources__requests__cpu="lots"), "carepath:chatApi.resources.requests.cpu: 'lots' is not a Kubernetes quantity"),
    (with_(ROLLING, chatApi__resources__requests__cpu="0"), "carepath:chatApi.resources.requests.cpu: '0' must be more than 0"),
    (with_(ROLLING, chatApi__autoscaling__minReplicas=5, chatApi__autoscaling__maxReplicas=3), "carepath:chatApi.autoscaling: minReplicas 5 is above maxReplicas 3"),
    (with_(ROLLING, chatApi__startupSeconds=5), "carepath:chatApi.startupSeconds: 5 is not in 10..3600"),
    (with_(ROLLING, edge__testPort=443), "carepath:edge.testPort: 443 is taken by the production listener"),
    (with_(ROLLING, edge__deregistrationDelaySeconds=300), "carepath:edge.deregistrationDelaySeconds: 300 is not in 0..120"),
    (with_(ROLLING, edge__allowedCidrs=["everyone"]), "carepath:edge.allowedCidrs[0]: 'everyone' is not a CIDR block"),
    (with_(ROLLING, rollout__rolling__minReadySeconds=-1), "carepath:rollout.rolling.minReadySeconds: -1 is not in 0..600"),
    (with_(ROLLING, chatApi__metricsPort=8080), "carepath:chatApi.metricsPort: 8080 is chatApi.port"),
    (with_(ROLLING, rollout__canary__mirror={"percent": 120, "paths": ["/v1/models"]}), "carepath:rollout.canary.mirror.percent: 120 is not in 0..100"),
    (with_(ROLLING, rollout__canary__mirror={"percent": 10, "paths": []}), "carepath:rollout.canary.mirror.paths: [] is empty"),
    (with_(ROLLING, rollout__canary__mirror={"percent": 10}), "carepath:rollout.canary.mirror.paths is required"),
    (with_(ROLLING, rollout__canary__mirror={"percent": 10, "paths": ["/*"]}), "carepath:rollout.canary.mirror.paths[0]: '/*' matches every path, write endpoints included"),
    (with_(ROLLING, rollout__canary__mirror={"percent": 10, "paths": ["/v1/.*"]}), "carepath:rollout.canary.mirror.paths[0]: '/v1/.*' is not a path such as /v1/models"),
    (with_(ROLLING, rollout__canary__stickiness="yes"), "carepath:rollout.canary.stickiness: 'yes' is not true or false"),
    (with_(ROLLING, monitoring__thresholds__errorRatio=2), "carepath:monitoring.thresholds.errorRatio: 2 is not a fraction between 0 and 1"),
    (with_(ROLLING, monitoring__thresholds__latencyP95Seconds=0), "carepath:monitoring.thresholds.latencyP95Seconds: 0 must be more than 0"),
    (with_(ROLLING, monitoring__retention="forever"), "carepath:monitoring.retention: 'forever' is not a duration such as 15d"),
    (with_(ROLLING, monitoring__receivers=[{"name": "oncall", "kind": "email", "secret": "x"}]), "carepath:monitoring.receivers[0].kind: 'email' is not one of slack, webhook, pagerduty"),
    (with_(ROLLING, monitoring__receivers=[{"name": "oncall", "kind": "slack", "secret": "slackUrl"}]), "carepath:monitoring.receivers[0].secret: 'slackUrl' is not set"),
    ({**ROLLING, "secrets": {"slackUrl": "https://hooks.example/abc"}}, "carepath:secrets: set in plain text; use `pulumi config set --secret"),
    ({**ROLLING, "secrets": {"slackUrl": 42}}, "carepath:secrets.slackUrl: '[secret]' is not a string"),
]


@pytest.mark.parametrize("raw, expected", BAD_INPUTS, ids=[e[9:60] for _, e in BAD_INPUTS])
def test_bad_input_names_key_value_and_what_is_allowed(raw, expected):
    found = problems(raw)
    assert any(expected in p for p in found), found


def test_every_problem_is_reported_at_once():
    raw = with_(
        ROLLING,
        rollout__strategy="canry",
        rollout__canary__weight=120,
        chatApi__replica=3,
        chatApi__tag="latest",
        cluster__minNodes=5,
        edge__testPort="8443",
    )
    found = problems(raw)
    assert len(found) == 6, found
    keys = [p.split(":")[1].split(" ")[0] for p in found]
    assert {"rollout.strategy", "rollout.canary.weight", "chatApi.replica", "chatApi.tag", "cluster", "edge.testPort"} <= set(keys)
    message = str(SettingsError(found))
    assert message.startswith("invalid stack config (6 problems):") and all(p in message for p in found)


def test_a_section_error_does_not_hide_another_sections_rules():
    # chatApi is broken, yet the cluster's cross-field rule is still checked.
    found = problems(with_(ROLLING, chatApi__replicas=0, cluster__minNodes=3, cluster__desiredNodes=2))
    assert any("chatApi.replicas" in p for p in found) and any("minNodes <= desiredNodes" in p for p in found)


def test_a_mirror_is_a_standing_setting_that_waits_for_a_canary():
    raw = with_(ROLLING, rollout__strategy="canary", rollout__canary__mirror={"percent": 10, "paths": ["/v1/models"]})
    assert parse(raw, "staging").rollout.canary.mirror.paths == ("/v1/models",)


def test_secrets_set_with_secret_are_accepted_and_never_printed():
    raw = {**ROLLING, "secrets": {"slackUrl": "https://hooks.example/abc"}, "monitoring": {"receivers": [{"name": "team", "kind": "slack", "secret": "slackUrl"}]}}
    settings = parse(raw, "demo", frozenset({"secrets"}))
    assert settings.secrets == {"slackUrl": "https://hooks.example/abc"}
    assert "hooks.example" not in repr(settings)


def test_an_existing_vpc_is_accepted():
    settings = parse(
        with_(
            ROLLING,
            cluster__vpcId="vpc-0123456789abcdef0",
            cluster__publicSubnetIds=["subnet-0aaaaaaa", "subnet-0bbbbbbb"],
            cluster__privateSubnetIds=["subnet-0ccccccc", "subnet-0ddddddd"],
        ),
        "demo",
    )
    assert settings.cluster.private_subnet_ids == ("subnet-0ccccccc", "subnet-0ddddddd")


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_round_trip(stack):
    raw = {key.split(":", 1)[1]: value for key, value in load_stack_config(stack).items() if key.startswith("carepath:")}
    settings = parse(raw, stack)
    again = parse(settings.to_config(), stack)
    assert again == settings
    # every key the stack file sets survives with its value
    config = settings.to_config()
    for section, values in raw.items():
        for key, value in values.items():
            dumped = config[section][key]
            assert dumped == value or (isinstance(value, dict) and value.items() <= dumped.items()), (section, key)


def test_stack_files_pick_the_designed_strategies():
    strategies = {}
    for stack in STACKS:
        raw = {k.split(":", 1)[1]: v for k, v in load_stack_config(stack).items() if k.startswith("carepath:")}
        strategies[stack] = parse(raw, stack).rollout.strategy
    assert strategies == {"demo": "rolling", "staging": "canary", "production": "blue-green"}


# --- properties -----------------------------------------------------------------


@given(st.integers(min_value=-1000, max_value=1000))
def test_weight_is_accepted_exactly_in_0_to_100(weight):
    raw = with_(ROLLING, rollout__strategy="canary", rollout__canary__tag="v2.0.0", rollout__canary__weight=weight)
    if 0 <= weight <= 100:
        assert parse(raw, "staging").rollout.canary.weight == weight
    else:
        assert any(p.startswith(f"carepath:rollout.canary.weight: {weight} is not in 0..100") for p in problems(raw))


@given(st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=8))
def test_steps_are_accepted_exactly_when_strictly_increasing_to_100(steps):
    raw = with_(ROLLING, rollout__canary__steps=steps)
    valid = steps[-1] == 100 and all(b > a for a, b in itertools.pairwise(steps))
    if valid:
        assert parse(raw, "demo").rollout.canary.steps == tuple(steps)
    else:
        assert any(p.startswith("carepath:rollout.canary.steps:") for p in problems(raw))


@given(st.integers(1, 20), st.integers(1, 20), st.integers(1, 20))
def test_node_sizes_are_accepted_exactly_when_ordered(low, desired, high):
    raw = with_(ROLLING, cluster__minNodes=low, cluster__desiredNodes=desired, cluster__maxNodes=high)
    if low <= desired <= high:
        assert parse(raw, "demo").cluster.desired_nodes == desired
    else:
        assert any("minNodes <= desiredNodes <= maxNodes" in p for p in problems(raw))


@given(st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True).filter(lambda t: t.lower() != "latest"))
def test_every_valid_image_tag_is_accepted(tag):
    assert parse(with_(ROLLING, chatApi__tag=tag), "demo").chat_api.tag == tag


@given(st.dictionaries(st.sampled_from(["replicas", "port", "tag", "healthPath"]), st.one_of(st.text(max_size=5), st.integers(), st.booleans(), st.none())))
def test_parse_never_raises_anything_but_a_settings_error(section):
    raw = copy.deepcopy(ROLLING)
    raw["chatApi"] = {**raw["chatApi"], **section}
    try:
        parse(raw, "demo")
    except SettingsError as error:
        assert all(p.startswith("carepath:") for p in error.problems)


# --- the release record, rollout.inFlight ------------------------------------------------

RECORD = {"id": "a1b2c3d4e5f6", "tag": "v2.0.0", "previous": "v1.4.0", "started": "2026-11-28T10:02:11Z"}
IN_FLIGHT = {
    "rolling": with_(ROLLING, chatApi__tag="v2.0.0"),
    "canary": with_(ROLLING, rollout__strategy="canary", rollout__canary__tag="v2.0.0", rollout__canary__weight=5),
    "blue-green": with_(
        ROLLING, rollout__strategy="blue-green", rollout__blueGreen__blue__tag="v1.4.0", rollout__blueGreen__green__tag="v2.0.0", edge__testCidrs=["203.0.113.0/24"]
    ),
}


@pytest.mark.parametrize("strategy", IN_FLIGHT)
def test_a_release_record_parses(strategy):
    in_flight = parse(with_(IN_FLIGHT[strategy], rollout__inFlight=RECORD), "staging").rollout.in_flight
    assert (in_flight.id, in_flight.tag, in_flight.previous, in_flight.started) == ("a1b2c3d4e5f6", "v2.0.0", "v1.4.0", "2026-11-28T10:02:11Z")


def test_a_release_record_needs_only_an_id_and_a_tag():
    in_flight = parse(with_(IN_FLIGHT["rolling"], rollout__inFlight={"id": "a1b2c3", "tag": "v2.0.0"}), "demo").rollout.in_flight
    assert (in_flight.previous, in_flight.started) == (None, "1970-01-01T00:00:00Z")


@pytest.mark.parametrize("strategy, deployed", [("rolling", "v2.0.0"), ("canary", "v2.0.0"), ("blue-green", "v1.4.0, v2.0.0")])
def test_a_record_of_a_tag_the_strategy_does_not_deploy_is_an_error(strategy, deployed):
    found = problems(with_(IN_FLIGHT[strategy], rollout__inFlight={**RECORD, "tag": "v3.0.0"}))
    assert f"carepath:rollout.inFlight.tag: 'v3.0.0' is not deployed by the {strategy} strategy's config ({deployed})" in found[0], found
    assert len(found) == 1


def test_a_canary_record_without_a_canary_is_an_error():
    found = problems(with_(ROLLING, rollout__strategy="canary", rollout__inFlight=RECORD))
    assert any(p.startswith("carepath:rollout.inFlight.tag: 'v2.0.0' is not deployed by the canary strategy's config (no candidate)") for p in found), found


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("id", "XYZ123", "carepath:rollout.inFlight.id: 'XYZ123' is not a release id (hex)"),
        ("id", "abc12", "carepath:rollout.inFlight.id: 'abc12' is not a release id (hex)"),
        ("id", "A1B2C3D4", "carepath:rollout.inFlight.id: 'A1B2C3D4' is not a release id (hex)"),
        ("id", 123456, "carepath:rollout.inFlight.id: 123456 is not a string"),
        ("started", "2026-11-28 10:02:11", "carepath:rollout.inFlight.started: '2026-11-28 10:02:11' is not a UTC time such as 2026-11-28T10:02:11Z"),
        ("started", "2026-11-28T10:02:11+01:00", "carepath:rollout.inFlight.started: '2026-11-28T10:02:11+01:00' is not a UTC time"),
        ("tag", "latest", "carepath:rollout.inFlight.tag: 'latest' is a moving tag"),
        ("previous", "", "carepath:rollout.inFlight.previous: '' is empty"),
    ],
)
def test_a_bad_release_record_names_its_key(key, value, expected):
    found = problems(with_(IN_FLIGHT["rolling"], rollout__inFlight={**RECORD, key: value}))
    assert any(expected in p for p in found), found


def test_an_unknown_key_in_the_release_record_lists_the_allowed_ones():
    record = {key: value for key, value in RECORD.items() if key != "started"}
    found = problems(with_(IN_FLIGHT["rolling"], rollout__inFlight={**record, "stared": RECORD["started"]}))
    assert found == ["carepath:rollout.inFlight.stared: unknown key; did you mean 'started'? (allowed: id, tag, previous, started)"]


@pytest.mark.parametrize("missing", ["id", "tag"])
def test_a_release_record_without_an_id_or_tag_is_an_error(missing):
    record = {key: value for key, value in RECORD.items() if key != missing}
    assert f"carepath:rollout.inFlight.{missing} is required" in problems(with_(IN_FLIGHT["rolling"], rollout__inFlight=record))


@given(st.text(alphabet="0123456789abcdefgABC-", max_size=40))
def test_a_release_id_is_accepted_exactly_when_6_to_32_lowercase_hex_digits(release_id):
    raw = with_(IN_FLIGHT["rolling"], rollout__inFlight={**RECORD, "id": release_id})
    if 6 <= len(release_id) <= 32 and all(c in "0123456789abcdef" for c in release_id):
        assert parse(raw, "demo").rollout.in_flight.id == release_id
    else:
        assert any(p.startswith("carepath:rollout.inFlight.id:") for p in problems(raw))

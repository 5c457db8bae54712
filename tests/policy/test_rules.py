"""Every guardrail with a passing and a violating resource; the three stacks pass the pack; unsafe
changes are caught."""

from __future__ import annotations

import copy

import pytest

from offline.harness import STACKS, Plan
from policy.rules import (
    RULES,
    Resource,
    autoscaler_present,
    ecr_immutable_and_scanned,
    eks_cluster_hardening,
    evaluate,
    https_listeners_in_production,
    pinned_ecr_images,
    probes_and_resources,
    production_deployment_safety,
    restricted_security_context,
    topology_spread,
    virtual_service_routes,
)

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/carepath-chat-api:v1.4.0"


def resources(plan: Plan) -> list[Resource]:
    return [Resource(r.type, r.name, copy.deepcopy(dict(r.inputs))) for r in plan.managed]


def one(found: list[Resource], kind: str, name: str | None = None) -> Resource:
    return next(r for r in found if r.type == kind and (name is None or r.name == name))


@pytest.fixture(scope="module")
def deployment(run_stack) -> Resource:
    return one(resources(run_stack("production")), "kubernetes:apps/v1:Deployment", "chat-api-blue")


def with_container(deployment: Resource, **changes) -> dict:
    props = copy.deepcopy(dict(deployment.props))
    props["spec"]["template"]["spec"]["containers"][0].update(changes)
    return props


def test_every_rule_explains_itself():
    for rule in RULES:
        assert rule.description and rule.remediation and rule.enforcement in ("mandatory", "advisory")
        assert (rule.resource is None) != (rule.stack is None)
    assert {r.name for r in RULES if r.enforcement == "advisory"} == {"autoscaler-present", "topology-spread"}


@pytest.mark.parametrize(
    "image, violation",
    [
        (IMAGE, None),
        (IMAGE + "@sha256:" + "a" * 64, None),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/carepath-chat-api:latest", "moving tag latest"),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/carepath-chat-api", "neither a tag nor a digest"),
        ("docker.io/library/nginx:1.27", "not from an ECR repository"),
    ],
)
def test_pinned_ecr_images(deployment, image, violation):
    found = pinned_ecr_images(deployment.type, with_container(deployment, image=image), "demo")
    assert (found == []) if violation is None else (violation in found[0])


def test_probes_and_resources(deployment):
    assert probes_and_resources(deployment.type, deployment.props, "demo") == []
    props = with_container(deployment, readinessProbe=None, resources={"requests": {"cpu": "1"}})
    del props["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probes_and_resources(deployment.type, props, "demo") == [
        "container chat-api: no readinessProbe",
        "container chat-api: no requests for memory",
        "container chat-api: no limits for cpu, memory",
    ]


def test_restricted_security_context(deployment):
    assert restricted_security_context(deployment.type, deployment.props, "demo") == []
    props = with_container(deployment, securityContext={"allowPrivilegeEscalation": True, "capabilities": {"add": ["NET_ADMIN"]}})
    props["spec"]["template"]["spec"]["securityContext"] = {}
    found = restricted_security_context(deployment.type, props, "demo")
    assert len(found) == 5 and any("allowPrivilegeEscalation" in f for f in found)


def test_ecr_immutable_and_scanned(run_stack):
    repository = one(resources(run_stack("demo")), "aws:ecr/repository:Repository")
    assert ecr_immutable_and_scanned(repository.type, repository.props, "demo") == []
    props = {**repository.props, "imageTagMutability": "MUTABLE", "imageScanningConfiguration": {"scanOnPush": False}}
    assert len(ecr_immutable_and_scanned(repository.type, props, "demo")) == 2


def test_eks_cluster_hardening(run_stack):
    cluster = one(resources(run_stack("production")), "eks:index:Cluster")
    assert eks_cluster_hardening(cluster.type, cluster.props, "production") == []
    open_props = {**cluster.props, "publicAccessCidrs": ["0.0.0.0/0"], "enabledClusterLogTypes": [], "encryptionConfigKeyArn": None}
    assert len(eks_cluster_hardening(cluster.type, open_props, "production")) == 3
    assert len(eks_cluster_hardening(cluster.type, open_props, "demo")) == 2, "an open endpoint is allowed outside production"


def test_https_listeners_in_production(run_stack):
    listeners = [r for r in resources(run_stack("production")) if r.type == "aws:lb/listener:Listener"]
    assert all(https_listeners_in_production(r.type, r.props, "production") == [] for r in listeners)
    plain = one(resources(run_stack("demo")), "aws:lb/listener:Listener")
    assert https_listeners_in_production(plain.type, plain.props, "production") == ["listener on port 80 serves HTTP in production"]
    assert https_listeners_in_production(plain.type, plain.props, "demo") == []


def test_production_deployment_safety(run_stack):
    found = resources(run_stack("production"))
    assert production_deployment_safety(found, "production") == []
    unsafe = resources(run_stack("production", {"rollout.rolling.maxUnavailable": 1, "chatApi.replicas": 1}))
    problems = production_deployment_safety(unsafe, "production")
    assert any("maxUnavailable must be 0" in p for p in problems) and any("1 replica" in p for p in problems)
    no_budgets = [r for r in found if r.type != "kubernetes:policy/v1:PodDisruptionBudget"]
    assert any("no PodDisruptionBudget" in p for p in production_deployment_safety(no_budgets, "production"))


def test_virtual_service_routes(run_stack):
    found = resources(run_stack("staging", {"rollout.canary.tag": "v2.0.0", "rollout.canary.weight": 10}))
    assert virtual_service_routes(found, "staging") == []
    service = one(found, "kubernetes:networking.istio.io/v1:VirtualService")
    service.props["spec"]["http"][-1]["route"][0]["weight"] = 80
    service.props["spec"]["http"][0]["route"][0]["destination"]["subset"] = "experimental"
    problems = virtual_service_routes(found, "staging")
    assert any("weights sum to 90, not 100" in p for p in problems)
    assert any("subset experimental is in no DestinationRule" in p for p in problems)


def test_advisories(deployment):
    assert autoscaler_present([deployment], "demo") == ["Deployment chat-api-blue has no HorizontalPodAutoscaler"]
    hpa = Resource("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "chat-api-blue", {"spec": {"scaleTargetRef": {"name": "chat-api-blue"}}})
    assert autoscaler_present([deployment, hpa], "demo") == []
    assert topology_spread(deployment.type, deployment.props, "demo") == []
    props = copy.deepcopy(dict(deployment.props))
    del props["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert topology_spread(deployment.type, props, "demo") == ["pods are not spread over zones"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_passes_every_mandatory_rule(run_stack, stack):
    assert evaluate(resources(run_stack(stack)), stack, "mandatory") == []
    assert evaluate(resources(run_stack(stack, {"chatApi.autoscaling.enabled": True})), stack, "advisory") == []


@pytest.mark.parametrize(
    "overrides, unset, rule",
    [
        ({"rollout.rolling.maxUnavailable": 1}, (), "production-deployment-safety"),
        ({"chatApi.replicas": 1}, (), "production-deployment-safety"),
        ({"cluster.publicAccessCidrs": ["0.0.0.0/0"]}, (), "eks-cluster-hardening"),
        ({}, ("edge.certificateArn",), "https-listeners-in-production"),
    ],
    ids=["maxUnavailable 1", "one replica", "open API endpoint", "plain HTTP"],
)
def test_unsafe_production_config_is_caught(run_stack, overrides, unset, rule):
    violations = evaluate(resources(run_stack("production", overrides, unset)), "production", "mandatory")
    assert {v[0] for v in violations} == {rule}


def test_what_the_settings_refuse_the_pack_catches_too(run_stack):
    # A `latest` tag or an off weight cannot come through config; a hand edit still meets the pack.
    found = resources(run_stack("staging", {"rollout.canary.tag": "v2.0.0", "rollout.canary.weight": 10}))
    deployment = one(found, "kubernetes:apps/v1:Deployment", "chat-api-canary")
    deployment.props["spec"]["template"]["spec"]["containers"][0]["image"] = IMAGE.replace("v1.4.0", "latest")
    one(found, "kubernetes:networking.istio.io/v1:VirtualService").props["spec"]["http"][-1]["route"][1]["weight"] = 50
    assert {v[0] for v in evaluate(found, "staging", "mandatory")} == {"pinned-ecr-images", "virtual-service-routes"}

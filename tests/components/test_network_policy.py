"""ServiceNetworkPolicy: one service's NetworkPolicies as the cluster gets them; and on a whole
stack, every app pod under a default deny with the allows it needs."""

from __future__ import annotations

import pytest

from components.network_policy import ServiceNetworkPolicy, ServiceNetworkPolicyArgs
from components.routers.factory import ROUTERS
from core.network_policy import MERGED_METRICS_PORT, edge_ports, service_policies
from core.release import plan_release
from tests.conftest import settings_from, validate_kubernetes

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
ALB = ("10.0.32.0/20", "10.0.96.0/20", "10.0.160.0/20")
NAMESPACE = "carepath-staging"

SERVICES = {
    "chat-api": {"tag": "v1", "rollout": {"strategy": "canary"}, "router": "istio", "hosts": ["chat.example.org"], "calls": ["triage-api", "audit-api"]},
    "triage-api": {"tag": "v1", "rollout": {"strategy": "canary"}, "router": "gateway-api", "hosts": ["triage.example.org"], "port": 8088},
    "audit-api": {
        "tag": "v1",
        "rollout": {"strategy": "rolling"},
        "router": "alb",
        "pathPrefix": "/audit",
        "port": 8090,
        "egress": [{"cidrs": ["198.51.100.0/24", "203.0.113.0/24"], "ports": [443]}],
    },
}


def in_namespace(*namespaces: str) -> dict:
    return {"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": list(namespaces)}]}}


def pods_of(service: str) -> dict:
    return {**in_namespace(NAMESPACE), "podSelector": {"matchLabels": {"app.kubernetes.io/name": service}}}


def tcp(*ports: int) -> list[dict]:
    return [{"port": port, "protocol": "TCP"} for port in ports]


SETTINGS = settings_from({"services": SERVICES})
PLANS = {name: plan_release(SETTINGS, name) for name in SETTINGS.services}
BACKENDS = {name: ROUTERS[traits.name].backends(PLANS[name], SETTINGS.services[name]) for name, traits in SETTINGS.routers.items()}


@pytest.fixture(scope="module")
def plan(run_component):
    policies = service_policies(SETTINGS, PLANS, BACKENDS, ALB)

    def build():
        for name, policy in policies.items():
            ServiceNetworkPolicy(name, ServiceNetworkPolicyArgs(policy=policy, namespaces={NAMESPACE: NAMESPACE}))

    return run_component(build)


def spec_of(plan, service: str) -> dict:
    policy = plan.one(NETWORK_POLICY, f"{service}-{NAMESPACE}")
    assert policy.inputs["metadata"] == {"name": service, "namespace": NAMESPACE}
    spec = policy.inputs["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": service}}  # every track's pods
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    return spec


def test_each_policy_is_a_valid_child_of_its_component(plan, reference_schema):
    for component in plan.of_type("carepath:network:ServiceNetworkPolicy"):
        children = plan.children(component)
        assert [(r.type, r.name) for r in children] == [(NETWORK_POLICY, f"{component.name}-{NAMESPACE}")]
    assert len(plan.of_type(NETWORK_POLICY)) == 3
    for policy in plan.of_type(NETWORK_POLICY):
        validate_kubernetes(policy, reference_schema)


def test_an_alb_service_admits_the_albs_subnets_and_prometheus_and_reaches_its_egress_blocks(plan):
    spec = spec_of(plan, "audit-api")
    assert spec["ingress"] == [
        {"from": [{"ipBlock": {"cidr": cidr}} for cidr in ALB], "ports": tcp(*edge_ports(BACKENDS["audit-api"]))},
        {"from": [in_namespace("monitoring")], "ports": tcp(9090)},
        {"from": [pods_of("chat-api")], "ports": tcp(8090)},
    ]
    assert spec["egress"] == [{"to": [{"ipBlock": {"cidr": "198.51.100.0/24"}}, {"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": tcp(443)}]


def test_an_istio_service_admits_the_ingress_gateway_and_the_merged_metrics_and_calls_what_it_declares(plan):
    spec = spec_of(plan, "chat-api")
    assert spec["ingress"] == [
        {"from": [in_namespace("istio-ingress")], "ports": tcp(8080)},
        {"from": [in_namespace("monitoring")], "ports": tcp(9090, MERGED_METRICS_PORT)},
    ]
    assert spec["egress"] == [
        {"to": [{**in_namespace("istio-system"), "podSelector": {"matchLabels": {"app": "istiod"}}}], "ports": tcp(15012)},
        {"to": [pods_of("triage-api")], "ports": tcp(8088)},
        {"to": [pods_of("audit-api")], "ports": tcp(8090)},
    ]


def test_a_gateway_api_service_admits_its_gateway_and_its_declared_caller(plan):
    spec = spec_of(plan, "triage-api")
    assert spec["ingress"] == [
        {"from": [in_namespace("istio-ingress")], "ports": tcp(8088)},
        {"from": [in_namespace("monitoring")], "ports": tcp(9090, MERGED_METRICS_PORT)},
        {"from": [pods_of("chat-api")], "ports": tcp(8088)},
    ]
    assert spec["egress"] == [{"to": [{**in_namespace("istio-system"), "podSelector": {"matchLabels": {"app": "istiod"}}}], "ports": tcp(15012)}]


@pytest.mark.parametrize("stack", ["demo", "staging", "production"])
def test_every_app_pod_is_under_a_default_deny_and_selected_by_its_services_allows(run_stack, stack, reference_schema):
    plan = run_stack(stack)
    policies = plan.of_type(NETWORK_POLICY)
    namespaces = {r.inputs["metadata"]["name"] for r in plan.of_type("kubernetes:core/v1:Namespace") if r.inputs["metadata"].get("labels", {}).get("carepath.io/app-namespace")}
    assert namespaces
    by_namespace: dict[str, dict[str, dict]] = {}
    for policy in policies:
        validate_kubernetes(policy, reference_schema)
        by_namespace.setdefault(policy.inputs["metadata"]["namespace"], {})[policy.inputs["metadata"]["name"]] = policy.inputs["spec"]
    for namespace in namespaces:
        found = by_namespace[namespace]
        assert found["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []}
        assert found["allow-dns"]["egress"][0]["ports"] == [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    app_deployments = [d for d in plan.of_type("kubernetes:apps/v1:Deployment") if d.inputs["metadata"]["namespace"] in namespaces]
    assert app_deployments
    for deployment in app_deployments:
        metadata = deployment.inputs["metadata"]
        labels = deployment.inputs["spec"]["template"]["metadata"]["labels"]
        allows = [
            spec
            for spec in by_namespace[metadata["namespace"]].values()
            if spec["podSelector"] and spec["podSelector"]["matchLabels"].items() <= labels.items() and spec["ingress"]
        ]
        assert allows, f"{metadata['name']} in {metadata['namespace']}: no policy admits anything to its pods"

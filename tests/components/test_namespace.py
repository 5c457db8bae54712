from components.mesh import APP_NAMESPACE_LABEL
from components.namespace import AppNamespace, AppNamespaceArgs
from tests.conftest import validate_builtin, validate_kubernetes


def test_namespace_enforces_restricted_and_injects_alb_readiness_gates(run_component):
    plan = run_component(lambda: AppNamespace("namespace", AppNamespaceArgs(name="carepath-demo", kubernetes_version="1.34")))
    namespace = plan.one("kubernetes:core/v1:Namespace")
    labels = namespace.inputs["metadata"]["labels"]
    assert namespace.inputs["metadata"]["name"] == "carepath-demo"
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == "v1.34"
    assert labels["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"
    # Routes of the Gateway API attach from the stack's app namespaces only.
    assert labels[APP_NAMESPACE_LABEL] == "true"
    # Sidecars are each service's choice (its pods' label), not the namespace's.
    assert "istio-injection" not in labels
    validate_builtin(namespace)


def test_namespace_denies_every_pods_traffic_but_dns(run_component, reference_schema):
    plan = run_component(lambda: AppNamespace("namespace", AppNamespaceArgs(name="carepath-demo", kubernetes_version="1.34")))
    component = plan.one("carepath:namespace:AppNamespace")
    policies = {r.inputs["metadata"]["name"]: r for r in plan.children(component) if r.type == "kubernetes:networking.k8s.io/v1:NetworkPolicy"}
    assert set(policies) == {"default-deny", "allow-dns"}
    for policy in policies.values():
        assert policy.inputs["metadata"]["namespace"] == "carepath-demo"
        validate_kubernetes(policy, reference_schema)
    # Every pod, both directions, nothing allowed.
    assert policies["default-deny"].inputs["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []}
    assert policies["allow-dns"].inputs["spec"] == {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [
                    {
                        "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["kube-system"]}]},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    }
                ],
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
            }
        ],
    }

from components.mesh import APP_NAMESPACE_LABEL
from components.namespace import AppNamespace, AppNamespaceArgs
from tests.conftest import validate_builtin


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

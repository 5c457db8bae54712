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
    validate_builtin(namespace)


def test_with_the_mesh_pods_get_sidecars_and_only_mutual_tls(run_component, reference_schema):
    import pulumi

    from tests.conftest import validate_kubernetes

    def build():
        istiod = pulumi.CustomResource("carepath:test:Istiod", "istiod", {})
        AppNamespace("namespace", AppNamespaceArgs(name="carepath-staging", kubernetes_version="1.34", mesh=istiod))

    plan = run_component(build)
    assert plan.one("kubernetes:core/v1:Namespace").inputs["metadata"]["labels"]["istio-injection"] == "enabled"
    policy = plan.one("kubernetes:security.istio.io/v1:PeerAuthentication")
    assert policy.inputs["spec"] == {"mtls": {"mode": "STRICT"}}
    assert policy.inputs["metadata"] == {"name": "default", "namespace": "carepath-staging"}
    assert plan.one("carepath:test:Istiod").urn in policy.options["dependsOn"]
    validate_kubernetes(policy, reference_schema)

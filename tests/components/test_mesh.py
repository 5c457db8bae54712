import pulumi
import pytest

from components.mesh import CHART_REPOSITORY, IstioMesh, IstioMeshArgs
from tests.conftest import validate_kubernetes

GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/edge-gateway/0123456789abcdef"


@pytest.fixture(scope="module")
def plan(run_component):
    def build():
        controller = pulumi.CustomResource("carepath:test:Controller", "controller", {})
        IstioMesh("mesh", IstioMeshArgs(version="1.30.5", gateway_target_group_arn=GROUP, controller=controller))

    return run_component(build)


def test_the_four_charts_at_the_pinned_version_from_the_current_repository(plan):
    charts = {r.name: r.inputs for r in plan.of_type("kubernetes:helm.sh/v4:Chart")}
    assert {name: c["chart"] for name, c in charts.items()} == {
        "istio-base": "base",
        "istio-cni": "cni",
        "istiod": "istiod",
        "istio-ingressgateway": "gateway",
    }
    for chart in charts.values():
        assert chart["version"] == "1.30.5"
        assert chart["repositoryOpts"] == {"repo": CHART_REPOSITORY} and "blob.istio.io" in CHART_REPOSITORY
    assert {name: c["namespace"] for name, c in charts.items()} == {
        "istio-base": "istio-system",
        "istio-cni": "istio-system",
        "istiod": "istio-system",
        "istio-ingressgateway": "istio-ingress",
    }


def test_charts_install_in_order(plan):
    charts = {r.name: r for r in plan.of_type("kubernetes:helm.sh/v4:Chart")}
    binding = plan.one("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding")
    assert charts["istio-base"].urn in charts["istio-cni"].options["dependsOn"]
    assert charts["istio-cni"].urn in charts["istiod"].options["dependsOn"]
    gateway_after = charts["istio-ingressgateway"].options["dependsOn"]
    assert charts["istiod"].urn in gateway_after and binding.urn in gateway_after


def test_webhook_does_not_flip_flop_and_sidecars_use_cni(plan):
    charts = {r.name: r.inputs["values"] for r in plan.of_type("kubernetes:helm.sh/v4:Chart")}
    assert charts["istio-base"]["base"]["validationFailurePolicy"] == "Fail"
    assert charts["istiod"]["base"]["validationFailurePolicy"] == "Fail"
    assert charts["istiod"]["pilot"]["cni"]["enabled"] is True


def test_the_gateway_is_the_albs_target(plan, reference_schema):
    gateway = next(r for r in plan.of_type("kubernetes:helm.sh/v4:Chart") if r.name == "istio-ingressgateway")
    assert gateway.inputs["values"]["service"]["type"] == "ClusterIP"
    binding = plan.one("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding")
    assert binding.inputs["spec"] == {"serviceRef": {"name": "istio-ingressgateway", "port": 80}, "targetGroupARN": GROUP, "targetType": "ip"}
    assert plan.one("carepath:test:Controller").urn in binding.options["dependsOn"]
    namespaces = {r.inputs["metadata"]["name"]: r.inputs["metadata"]["labels"] for r in plan.of_type("kubernetes:core/v1:Namespace")}
    assert namespaces["istio-ingress"]["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"
    assert namespaces["istio-system"]["pod-security.kubernetes.io/enforce"] == "privileged"
    for resource in plan.managed:
        if resource.type.startswith("kubernetes:"):
            validate_kubernetes(resource, reference_schema)

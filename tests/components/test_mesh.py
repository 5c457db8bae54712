"""IstioMesh: the charts in order, and what serves each backend the routers ask the edge for."""

import pulumi
import pytest
import yaml

from components.mesh import APP_NAMESPACE_LABEL, CHART_REPOSITORY, GATEWAY_API_VERSION, IstioMesh, IstioMeshArgs
from tests.conftest import validate_kubernetes

GATEWAY_GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/edge-gateway/0123456789abcdef"
GATEWAY_API_GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/edge-gateway-api/fedcba9876543210"
BINDING = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"
ISTIO_GATEWAY = "kubernetes:networking.istio.io/v1:Gateway"
GATEWAY_API_GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"


def gateway_certificate(plan, secret: str, service: str):
    """The gateway's certificate: from the CA issuer, in istio-ingress, before the gateway."""
    [found] = [r for r in plan.of_type(CERTIFICATE) if r.inputs["metadata"]["name"] == secret]
    assert found.inputs["metadata"]["namespace"] == "istio-ingress"
    spec = found.inputs["spec"]
    assert spec["secretName"] == secret and spec["dnsNames"] == [f"{service}.istio-ingress.svc", f"{service}.istio-ingress.svc.cluster.local"]
    assert spec["issuerRef"] == {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "carepath-ca"}
    assert spec["privateKey"] == {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}
    assert plan.one("carepath:test:ClusterIssuer").urn in found.options["dependsOn"]
    return found


def build_mesh(run_component, target_group_arns):
    def build():
        controller = pulumi.CustomResource("carepath:test:Controller", "controller", {})
        issuer = pulumi.CustomResource("carepath:test:ClusterIssuer", "issuer", {})
        IstioMesh("mesh", IstioMeshArgs(version="1.30.5", controller=controller, target_group_arns=target_group_arns, issuer=issuer))

    return run_component(build)


@pytest.fixture(scope="module")
def plan(run_component):
    return build_mesh(run_component, {"gateway": GATEWAY_GROUP})


@pytest.fixture(scope="module")
def gateway_api(run_component):
    return build_mesh(run_component, {"gateway-api": GATEWAY_API_GROUP})


def _charts(plan):
    return {r.name: r for r in plan.of_type("kubernetes:helm.sh/v4:Chart")}


def test_the_four_charts_at_the_pinned_version_from_the_current_repository(plan):
    charts = {name: chart.inputs for name, chart in _charts(plan).items()}
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
    charts = _charts(plan)
    binding = plan.one(BINDING)
    assert charts["istio-base"].urn in charts["istio-cni"].options["dependsOn"]
    assert charts["istio-cni"].urn in charts["istiod"].options["dependsOn"]
    gateway_after = charts["istio-ingressgateway"].options["dependsOn"]
    assert charts["istiod"].urn in gateway_after and binding.urn in gateway_after


def test_webhook_does_not_flip_flop_and_sidecars_use_cni(plan):
    charts = {name: chart.inputs["values"] for name, chart in _charts(plan).items()}
    assert charts["istio-base"]["base"]["validationFailurePolicy"] == "Fail"
    assert charts["istiod"]["base"]["validationFailurePolicy"] == "Fail"
    assert charts["istiod"]["pilot"]["cni"]["enabled"] is True


def test_the_ingress_gateway_is_the_albs_target_and_serves_the_shared_istio_gateway(plan, reference_schema):
    gateway = _charts(plan)["istio-ingressgateway"]
    assert gateway.inputs["values"]["service"] == {"type": "ClusterIP", "ports": [{"name": "https", "port": 443, "targetPort": 443, "protocol": "TCP"}]}
    binding = plan.one(BINDING)
    assert binding.inputs["spec"] == {"serviceRef": {"name": "istio-ingressgateway", "port": 443}, "targetGroupARN": GATEWAY_GROUP, "targetType": "ip"}
    assert plan.one("carepath:test:Controller").urn in binding.options["dependsOn"]
    edge = plan.one(ISTIO_GATEWAY)
    assert edge.inputs["metadata"] == {"name": "edge", "namespace": "istio-ingress"}
    # The ALB's TLS ends at the gateway, with the in-cluster CA's certificate.
    assert edge.inputs["spec"] == {
        "selector": {"istio": "ingressgateway"},
        "servers": [
            {
                "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                "hosts": ["*/*"],
                "tls": {
                    "mode": "SIMPLE",
                    "credentialName": "istio-ingressgateway-tls",
                    "minProtocolVersion": "TLSV1_2",
                    "cipherSuites": ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"],
                },
            }
        ],
    }
    assert {_charts(plan)["istiod"].urn, gateway_certificate(plan, "istio-ingressgateway-tls", "istio-ingressgateway").urn} <= set(edge.options["dependsOn"])
    validate_kubernetes(edge, reference_schema)
    namespaces = {r.inputs["metadata"]["name"]: r.inputs["metadata"]["labels"] for r in plan.of_type("kubernetes:core/v1:Namespace")}
    assert namespaces["istio-ingress"]["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"
    assert namespaces["istio-system"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert plan.of_type(GATEWAY_API_GATEWAY) == [] and plan.of_type("kubernetes:yaml/v2:ConfigFile") == [] and plan.of_type(CONFIG_MAP) == []


def test_the_gateway_api_crds_come_before_istiod_and_its_gateway_is_the_albs_target(gateway_api):
    charts = _charts(gateway_api)
    assert set(charts) == {"istio-base", "istio-cni", "istiod"}
    crds = gateway_api.one("kubernetes:yaml/v2:ConfigFile")
    assert crds.inputs["file"].endswith(f"/{GATEWAY_API_VERSION}/standard-install.yaml")
    # Istio serves the Gateway API only if its CRDs exist when istiod starts.
    assert crds.urn in charts["istio-base"].options["dependsOn"]
    gateway = gateway_api.one(GATEWAY_API_GATEWAY)
    assert gateway.inputs["metadata"] == {"name": "carepath", "namespace": "istio-ingress", "annotations": {"networking.istio.io/service-type": "ClusterIP"}}
    [listener] = gateway.inputs["spec"]["listeners"]
    assert gateway.inputs["spec"]["gatewayClassName"] == "istio"
    assert (listener["name"], listener["port"], listener["protocol"]) == ("https", 443, "HTTPS")
    assert listener["tls"] == {"mode": "Terminate", "certificateRefs": [{"group": "", "kind": "Secret", "name": "carepath-gateway-tls"}]}
    assert listener["allowedRoutes"] == {"namespaces": {"from": "Selector", "selector": {"matchLabels": {APP_NAMESPACE_LABEL: "true"}}}}
    binding = gateway_api.one(BINDING)
    # Istio names the Service it deploys for a Gateway `<gateway>-<class>`.
    assert binding.inputs["spec"] == {"serviceRef": {"name": "carepath-istio", "port": 443}, "targetGroupARN": GATEWAY_API_GROUP, "targetType": "ip"}
    assert {charts["istiod"].urn, binding.urn, gateway_certificate(gateway_api, "carepath-gateway-tls", "carepath-istio").urn} <= set(gateway.options["dependsOn"])
    assert gateway_api.of_type(ISTIO_GATEWAY) == []


def test_without_a_backend_to_serve_only_the_control_plane(run_component):
    plan = build_mesh(run_component, {})
    assert set(_charts(plan)) == {"istio-base", "istio-cni", "istiod"}
    assert plan.of_type(BINDING) == [] and plan.of_type(ISTIO_GATEWAY) == [] and plan.of_type(GATEWAY_API_GATEWAY) == []
    assert plan.of_type(CONFIG_MAP) == [] and plan.of_type(CERTIFICATE) == []


def assert_drains_proceed(budget, replicas):
    """A node drain may evict a pod (the budget never blocks all evictions) while one keeps serving."""
    assert replicas >= 2
    [(kind, count)] = budget.items()
    evictable = count if kind == "maxUnavailable" else replicas - count
    assert 1 <= evictable < replicas, (budget, replicas)


def test_istiod_runs_two_replicas_under_its_charts_disruption_budget(plan):
    values = _charts(plan)["istiod"].inputs["values"]
    # The chart renders its PDB only with this on and more than one replica (autoscaleMin, autoscaling on by default).
    assert values["global"]["defaultPodDisruptionBudget"] == {"enabled": True}
    assert "autoscaleEnabled" not in values["pilot"] and "replicaCount" not in values["pilot"]
    assert_drains_proceed(values["pilot"]["pdb"], values["pilot"]["autoscaleMin"])


def test_the_ingress_gateway_runs_two_replicas_under_its_charts_disruption_budget(plan):
    values = _charts(plan)["istio-ingressgateway"].inputs["values"]
    assert values["autoscaling"] == {"minReplicas": 2}  # autoscaling stays on: the chart's PDB condition reads minReplicas
    assert_drains_proceed(values["podDisruptionBudget"], values["autoscaling"]["minReplicas"])


def test_the_gateway_api_gateway_gets_its_replicas_and_budget_from_istios_overlays(gateway_api):
    gateway = gateway_api.one(GATEWAY_API_GATEWAY)
    options = gateway_api.one(CONFIG_MAP)
    assert options.inputs["metadata"]["namespace"] == gateway.inputs["metadata"]["namespace"]  # parametersRef is local
    assert gateway.inputs["spec"]["infrastructure"] == {"parametersRef": {"group": "", "kind": "ConfigMap", "name": options.inputs["metadata"]["name"]}}
    # Istio fails the Gateway if its ConfigMap is missing, and renders no HPA or PDB without these keys.
    assert options.urn in gateway.options["dependsOn"]
    overlays = {key: yaml.safe_load(value) for key, value in options.inputs["data"].items()}
    assert set(overlays) == {"horizontalPodAutoscaler", "podDisruptionBudget"}
    autoscaler = overlays["horizontalPodAutoscaler"]["spec"]
    assert autoscaler["minReplicas"] <= autoscaler["maxReplicas"]
    assert_drains_proceed(overlays["podDisruptionBudget"]["spec"], autoscaler["minReplicas"])


def test_every_mesh_object_validates(plan, gateway_api, reference_schema):
    for mesh in (plan, gateway_api):
        for resource in mesh.managed:
            if resource.type.startswith("kubernetes:"):
                validate_kubernetes(resource, reference_schema)

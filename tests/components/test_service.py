"""Service: one service's registry, router, tracks and signals, named after it."""

import pulumi
import pytest

from components.routers.factory import ROUTERS
from components.service import Service, ServiceArgs, SignalsArgs
from core.drain import drain_timings
from core.network_policy import service_policies
from core.release import plan_release
from tests.components.conftest import stand_in_edge, stand_in_platform
from tests.conftest import one_service, settings_from, validate_kubernetes

CANARY = {"tag": "v0.3.0", "hosts": ["triage.example.org"], "rollout": {"strategy": "canary", "canary": {"tag": "v0.4.0", "weight": 10}}}
BLUE_GREEN = {"rollout": {"strategy": "blue-green", "blueGreen": {"active": "blue", "blue": {"tag": "v1"}, "green": {"tag": "v2"}}}}
EDGE = {"testCidrs": ["198.51.100.0/24"]}  # blue-green needs who may reach the test listener
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
PEER_AUTHENTICATION = "kubernetes:security.istio.io/v1:PeerAuthentication"


def build_service(run_component, service, name="triage-api", stack="staging", signals=True, **sections):
    settings = settings_from(one_service(service, name, **sections), stack)
    plan = plan_release(settings, name)
    router = ROUTERS[settings.routers[name].name]
    backends = router.backends(plan, settings.service(name))
    network_policy = service_policies(settings, {name: plan}, {name: backends}, ("10.0.32.0/20",))[name]

    def build():
        monitoring = pulumi.CustomResource("carepath:test:Monitoring", "monitoring", {})
        Service(
            name,
            ServiceArgs(
                settings=settings.service(name),
                repository=settings.repository(name),
                plan=plan,
                router=router,
                namespaces={namespace: namespace for namespace in plan.namespaces},
                edge=stand_in_edge(settings, name, backends),
                platform=stand_in_platform(),
                drain=drain_timings(30, 15),
                network_policy=network_policy,
                signals=SignalsArgs(monitoring=monitoring, thresholds=settings.monitoring.thresholds) if signals else None,
            ),
        )

    return run_component(build)


@pytest.fixture(scope="module")
def canary(run_component):
    return build_service(run_component, CANARY)


@pytest.fixture(scope="module")
def blue_green(run_component):
    return build_service(run_component, BLUE_GREEN, stack="bluegreen", edge=EDGE)


def test_a_service_is_a_component_named_after_it_owning_its_parts(canary):
    component = canary.one("carepath:services:Service")
    assert component.name == "triage-api"
    children = {(r.type, r.name) for r in canary.children(component)}
    assert children == {
        ("carepath:registry:Registry", "triage-api"),
        ("carepath:router:IstioRouter", "triage-api"),
        ("carepath:track:Track", "triage-api"),
        ("carepath:track:Track", "triage-api-canary"),
        ("carepath:monitoring:ReleaseSignals", "triage-api"),
        ("aws:lb/listenerRule:ListenerRule", "triage-api-production"),
        (PEER_AUTHENTICATION, "triage-api-mtls"),
        ("carepath:network:ServiceNetworkPolicy", "triage-api"),
    }


def test_its_repository_and_images_are_its_own(canary):
    assert canary.one("aws:ecr/repository:Repository").inputs["name"] == "carepath-triage-api"
    images = {r.name: r.inputs["spec"]["template"]["spec"]["containers"][0]["image"] for r in canary.of_type(DEPLOYMENT)}
    assert images == {
        "triage-api": "123456789012.dkr.ecr.us-east-1.amazonaws.com/carepath-triage-api:v0.3.0",
        "triage-api-canary": "123456789012.dkr.ecr.us-east-1.amazonaws.com/carepath-triage-api:v0.4.0",
    }


def test_its_signals_are_named_after_it(canary):
    monitor = canary.one("kubernetes:monitoring.coreos.com/v1:ServiceMonitor")
    assert monitor.inputs["metadata"]["name"] == "triage-api"
    assert monitor.inputs["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == "triage-api"
    assert canary.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule").inputs["metadata"]["name"] == "triage-api"
    assert canary.one("kubernetes:core/v1:ConfigMap").inputs["metadata"]["name"] == "triage-api-dashboard"
    for resource in canary.of_type("kubernetes:monitoring.coreos.com/v1:ServiceMonitor") + canary.of_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule"):
        assert canary.one("carepath:test:Monitoring").urn in resource.options["dependsOn"]


def test_without_monitoring_no_signals(run_component):
    plan = build_service(run_component, CANARY, signals=False)
    assert plan.of_type("carepath:monitoring:ReleaseSignals") == []


def test_in_the_mesh_its_pods_get_sidecars_and_only_mutual_tls(canary, reference_schema):
    policy = canary.one(PEER_AUTHENTICATION)
    assert policy.inputs["metadata"] == {"name": "triage-api", "namespace": "carepath-staging"}
    assert policy.inputs["spec"] == {"selector": {"matchLabels": {"app.kubernetes.io/name": "triage-api"}}, "mtls": {"mode": "STRICT"}}
    assert canary.one("carepath:test:Istiod").urn in policy.options["dependsOn"]
    validate_kubernetes(policy, reference_schema)
    for deployment in canary.of_type(DEPLOYMENT):
        assert deployment.inputs["spec"]["template"]["metadata"]["labels"]["sidecar.istio.io/inject"] == "true"


def test_on_the_alb_its_pods_have_no_sidecar_and_no_mutual_tls(blue_green):
    assert blue_green.of_type(PEER_AUTHENTICATION) == []
    for deployment in blue_green.of_type(DEPLOYMENT):
        assert "sidecar.istio.io/inject" not in deployment.inputs["spec"]["template"]["metadata"]["labels"]


def test_no_pod_starts_before_its_network_policy(blue_green):
    # Under the namespace's default deny, a pod without its allow would fail the ALB's health check.
    policies = {r.urn for r in blue_green.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    assert policies
    for deployment in blue_green.of_type(DEPLOYMENT):
        assert policies <= set(deployment.options["dependsOn"]), deployment.name


def test_one_up_is_safe_production_tracks_then_the_route_then_the_rest_then_the_test_route(blue_green):
    deployments = {r.name: r for r in blue_green.of_type(DEPLOYMENT)}
    rules = {r.name: r for r in blue_green.of_type("aws:lb/listenerRule:ListenerRule")}
    bindings = {r.inputs["metadata"]["name"]: r.urn for r in blue_green.of_type("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding")}
    production, test = rules["triage-api-production"], rules["triage-api-test"]
    assert deployments["triage-api-blue"].urn in production.options["dependsOn"]
    assert production.urn in deployments["triage-api-green"].options["dependsOn"]
    assert deployments["triage-api-green"].urn in test.options["dependsOn"]
    for name, deployment in deployments.items():
        assert bindings[name] in deployment.options["dependsOn"]


def test_a_canary_is_up_before_its_header_route_even_at_weight_zero(run_component):
    plan = build_service(run_component, {**CANARY, "rollout": {"strategy": "canary", "canary": {"tag": "v0.4.0", "weight": 0}}})
    service = plan.one("kubernetes:networking.istio.io/v1:VirtualService")
    for deployment in plan.of_type(DEPLOYMENT):
        assert deployment.urn in service.options["dependsOn"]


@pytest.mark.parametrize("service", [CANARY, {**CANARY, "rollout": {"strategy": "rolling"}}], ids=["canary", "rolling"])
def test_changing_router_keeps_the_tracks_and_the_listener_rule_in_place(run_component, service):
    # The same URNs: a change of router neither replaces a track's objects nor re-creates the rule
    # (a second rule could not take the priority the first holds on the listener).
    routers = ["istio", "gateway-api"] + (["alb"] if service["rollout"]["strategy"] == "rolling" else [])
    plans = {router: build_service(run_component, {**service, "router": router}) for router in routers}

    def kept(plan):
        tracks = {r.urn for r in plan.of_type("carepath:track:Track")}
        return {r.urn: r for r in plan.managed if r.urn in tracks or r.parent in tracks or r.type == "aws:lb/listenerRule:ListenerRule"}

    istio = kept(plans["istio"])
    tracks = {"triage-api", "triage-api-canary"} if service is CANARY else {"triage-api"}
    assert {r.name for r in istio.values() if r.type == DEPLOYMENT} == tracks
    for router, plan in plans.items():
        assert set(kept(plan)) == set(istio), router
        for urn, resource in kept(plan).items():
            if resource.type == DEPLOYMENT:
                assert resource.inputs["spec"]["selector"] == istio[urn].inputs["spec"]["selector"]
    # Both Istio routers put the pods in the mesh: their tracks are the same, input for input.
    gateway_api = kept(plans["gateway-api"])
    assert {urn: r.inputs for urn, r in gateway_api.items() if r.type != "aws:lb/listenerRule:ListenerRule"} == {
        urn: r.inputs for urn, r in istio.items() if r.type != "aws:lb/listenerRule:ListenerRule"
    }


def test_on_the_alb_each_namespace_gets_the_proxys_certificate_and_config_before_any_pod(run_component, reference_schema):
    rollout = {**BLUE_GREEN["rollout"], "blueGreen": {**BLUE_GREEN["rollout"]["blueGreen"], "isolation": "namespace"}}
    plan = build_service(run_component, {**BLUE_GREEN, "rollout": rollout}, stack="bluegreen", edge=EDGE)
    namespaces = {"carepath-bluegreen-blue", "carepath-bluegreen-green"}
    certificates = plan.of_type("kubernetes:cert-manager.io/v1:Certificate")
    config_maps = [r for r in plan.of_type("kubernetes:core/v1:ConfigMap") if r.inputs["metadata"]["name"] == "triage-api-tls-proxy"]
    assert {r.inputs["metadata"]["namespace"] for r in certificates} == {r.inputs["metadata"]["namespace"] for r in config_maps} == namespaces
    for certificate in certificates:
        spec, namespace = certificate.inputs["spec"], certificate.inputs["metadata"]["namespace"]
        assert certificate.inputs["metadata"]["name"] == spec["secretName"] == "triage-api-tls"
        assert spec["dnsNames"] == [f"triage-api.{namespace}.svc", f"triage-api.{namespace}.svc.cluster.local"]
        assert spec["issuerRef"] == {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "carepath-ca"}
        assert (spec["duration"], spec["renewBefore"]) == ("2160h", "720h")
        assert spec["privateKey"] == {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}
        assert plan.one("carepath:test:ClusterIssuer").urn in certificate.options["dependsOn"]
    waited_for = {r.urn for r in [*certificates, *config_maps, plan.one("carepath:test:PullThroughCacheRule")]}
    for deployment in plan.of_type(DEPLOYMENT):
        assert waited_for <= set(deployment.options["dependsOn"]), deployment.name
        [proxy] = deployment.inputs["spec"]["template"]["spec"]["initContainers"]
        # The registry of the service's repository, through its pull-through cache of ECR Public.
        assert proxy["image"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/ecr-public/docker/library/nginx:1.28.0-alpine"
        validate_kubernetes(deployment, reference_schema)


def test_in_the_mesh_no_proxy_certificate_or_config(canary):
    assert canary.of_type("kubernetes:cert-manager.io/v1:Certificate") == []
    for deployment in canary.of_type(DEPLOYMENT):
        assert "initContainers" not in deployment.inputs["spec"]["template"]["spec"]

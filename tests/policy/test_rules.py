"""Every guardrail with a passing and a violating resource; the three stacks pass the pack; unsafe
changes are caught; with two services, a violation names the offending service's resources only."""

from __future__ import annotations

import copy
import re
from typing import Any, cast

import pytest

from core.settings import SettingsError
from core.settings import rules as settings_rules
from core.stack_config import carepath_sections
from offline.harness import STACKS, Plan, apply_overrides, load_stack_config
from policy import rules as policy_rules
from policy.rules import (
    DEPLOYMENT,
    HTTP_ROUTE,
    INGRESS_RULE,
    ISTIO_PORTS,
    PRODUCTION_STACKS,
    PROMETHEUS_RULE,
    RULES,
    VIRTUAL_SERVICE,
    Resource,
    autoscaler_present,
    ecr_immutable_and_scanned,
    eks_cluster_hardening,
    evaluate,
    finite_alert_thresholds,
    https_listeners_in_production,
    mesh_ports_free,
    no_open_test_ports_in_production,
    no_plain_http_for_patients,
    pinned_ecr_images,
    probes_and_resources,
    production_deployment_safety,
    restricted_security_context,
    topology_spread,
    web_firewall_on_patient_facing_albs,
    weighted_routes,
)
from tests.conftest import settings_from

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/carepath-chat-api:v1.4.0"
IN_FLIGHT = {"services.chat-api.rollout.canary.tag": "v2.0.0", "services.chat-api.rollout.canary.weight": 10}


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


def test_remediations_name_per_service_keys_under_services():
    per_service = {"chatApi", "rollout", "autoscaling", "replicas", "tag", "pinDigest", "healthPath", "resources"}
    for rule in RULES:
        paths = re.findall(r"[\w<>-]+(?:\.[\w<>-]+)+", rule.remediation)
        assert [path for path in paths if path.split(".")[0] in per_service] == [], rule.name
    assert any("services.<name>.rollout.canary.weight" in rule.remediation for rule in RULES)


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


def test_no_plain_http_for_patients(run_stack):
    listeners = [r for r in resources(run_stack("staging")) if r.type == "aws:lb/listener:Listener"]
    assert {r.props["protocol"] for r in listeners} == {"HTTP", "HTTPS"}, "HTTPS, and HTTP redirecting to it"
    assert all(no_plain_http_for_patients(r.type, r.props, "staging") == [] for r in listeners)
    plain = one(resources(run_stack("demo")), "aws:lb/listener:Listener")
    assert no_plain_http_for_patients(plain.type, plain.props, "staging") == ["listener on port 80 serves HTTP on staging, which serves patients"]
    assert no_plain_http_for_patients(plain.type, plain.props, "demo") == [], "demo opts in by name"
    assert no_plain_http_for_patients(plain.type, plain.props, "production") == [], "production's listeners are https-listeners-in-production's"
    assert https_listeners_in_production(plain.type, plain.props, "production") != []


def test_production_deployment_safety(run_stack):
    found = resources(run_stack("production"))
    assert production_deployment_safety(found, "production") == []
    unsafe = resources(run_stack("production"))  # the settings refuse this config on production: edit by hand
    _deployment(unsafe, "chat-api-blue").update(replicas=1, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}})
    problems = production_deployment_safety(unsafe, "production")
    assert any("maxUnavailable must be 0" in p for p in problems) and any("1 replica" in p for p in problems)
    no_budgets = [r for r in found if r.type != "kubernetes:policy/v1:PodDisruptionBudget"]
    assert any("no PodDisruptionBudget" in p for p in production_deployment_safety(no_budgets, "production"))


def test_virtual_service_routes(run_stack):
    found = resources(run_stack("staging", IN_FLIGHT))
    assert weighted_routes(found, "staging") == []
    service = one(found, VIRTUAL_SERVICE)
    service.props["spec"]["http"][-1]["route"][0]["weight"] = 80
    service.props["spec"]["http"][0]["route"][0]["destination"]["subset"] = "experimental"
    problems = weighted_routes(found, "staging")
    assert any("weights sum to 90, not 100" in p for p in problems)
    assert any("subset experimental is in no DestinationRule" in p for p in problems)


def test_a_weighted_track_without_pods_is_caught(run_stack):
    found = resources(run_stack("staging", IN_FLIGHT))
    one(found, "kubernetes:apps/v1:Deployment", "chat-api-canary").props["spec"]["replicas"] = 0
    assert weighted_routes(found, "staging") == [
        f"VirtualService chat-api route {route}: chat-api-mesh takes weight {weight} but no Deployment with a replica or more runs its pods (subset canary)"
        for route, weight in (("testers", 100), ("pinned-canary", 100), ("split", 10))
    ]


def test_http_routes(run_stack):
    found = resources(run_stack("staging", {**IN_FLIGHT, "services.chat-api.router": "gateway-api"}))
    assert weighted_routes(found, "staging") == []
    route = one(found, HTTP_ROUTE)
    rules = {rule["name"]: rule for rule in route.props["spec"]["rules"]}
    rules["split"]["backendRefs"][0]["weight"] = 80
    rules["split"]["filters"] = [{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "chat-api-shadow", "port": 80}}}]
    rules["pinned-stable"]["backendRefs"][0].update(group="gateway.networking.k8s.io", kind="Gateway")
    assert weighted_routes(found, "staging") == [
        "HTTPRoute chat-api rule pinned-stable: backend Gateway chat-api is not a Service",
        "HTTPRoute chat-api rule split: weights sum to 90, not 100",
        "HTTPRoute chat-api rule split: chat-api-shadow is no Service of the stack",
    ]


def test_an_http_route_to_a_track_without_pods_or_service_is_caught(run_stack):
    found = resources(run_stack("staging", {**IN_FLIGHT, "services.chat-api.router": "gateway-api"}))
    one(found, "kubernetes:apps/v1:Deployment", "chat-api-canary").props["spec"]["replicas"] = 0
    assert weighted_routes(found, "staging") == [
        f"HTTPRoute chat-api rule {rule}: chat-api-canary takes weight {weight} but no Deployment with a replica or more runs its pods"
        for rule, weight in (("testers", 100), ("pinned-canary", 100), ("split", 10))
    ]
    without_service = [r for r in found if (r.type, r.name) != ("kubernetes:core/v1:Service", "chat-api-canary")]
    assert {p.partition(": ")[2] for p in weighted_routes(without_service, "staging")} == {"chat-api-canary is no Service of the stack"}


def test_advisories(deployment):
    assert autoscaler_present([deployment], "demo") == ["Deployment chat-api-blue has no HorizontalPodAutoscaler"]

    def hpa(namespace: str) -> Resource:
        props = {"metadata": {"name": "chat-api-blue", "namespace": namespace}, "spec": {"scaleTargetRef": {"name": "chat-api-blue"}}}
        return Resource("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "chat-api-blue", props)

    assert autoscaler_present([deployment, hpa("carepath-production")], "demo") == []
    assert autoscaler_present([deployment, hpa("elsewhere")], "demo") != [], "an autoscaler scales its own namespace's Deployments"
    assert topology_spread(deployment.type, deployment.props, "demo") == []
    props = copy.deepcopy(dict(deployment.props))
    del props["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert topology_spread(deployment.type, props, "demo") == ["pods are not spread over zones"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_passes_every_mandatory_rule(run_stack, stack):
    assert evaluate(resources(run_stack(stack)), stack, "mandatory") == []
    assert evaluate(resources(run_stack(stack, {"services.chat-api.autoscaling.enabled": True})), stack, "advisory") == []


def _props(found: list[Resource], kind: str, name: str | None = None) -> dict[str, Any]:
    """A resource's inputs, to edit by hand (`resources` hands out copies)."""
    return cast(dict[str, Any], one(found, kind, name).props)


def _deployment(found: list[Resource], name: str) -> dict[str, Any]:
    return _props(found, DEPLOYMENT, name)["spec"]


UNSAFE_PRODUCTION = {
    "maxUnavailable 1": (
        {"services.chat-api.rollout.rolling.maxUnavailable": 1}, (),
        lambda found: _deployment(found, "chat-api-blue")["strategy"]["rollingUpdate"].update(maxUnavailable=1), "production-deployment-safety",
    ),
    "one replica": ({"services.chat-api.replicas": 1}, (), lambda found: _deployment(found, "chat-api-blue").update(replicas=1), "production-deployment-safety"),
    "open API endpoint": (
        {"cluster.publicAccessCidrs": ["0.0.0.0/0"]}, (),
        lambda found: _props(found, "eks:index:Cluster").update(publicAccessCidrs=["0.0.0.0/0"]), "eks-cluster-hardening",
    ),
    "plain HTTP": (
        {}, ("edge.certificateArn",),
        lambda found: _props(found, "aws:lb/listener:Listener").update(protocol="HTTP", defaultActions=[{"type": "forward"}]), "https-listeners-in-production",
    ),
}


@pytest.mark.parametrize("case", UNSAFE_PRODUCTION)
def test_unsafe_production_config_is_refused_by_the_settings_and_caught_by_the_pack(run_stack, case):
    overrides, unset, edit, rule = UNSAFE_PRODUCTION[case]
    config = apply_overrides(load_stack_config("production"), {f"carepath:{k}": v for k, v in overrides.items()}, unset=[f"carepath:{k}" for k in unset])
    with pytest.raises(SettingsError):
        settings_from(carepath_sections(config), "production")
    # The second line: the same thing reaching a resource another way (a hand edit).
    found = resources(run_stack("production"))
    edit(found)
    assert {v[0] for v in evaluate(found, "production", "mandatory")} == {rule}


def test_what_the_settings_refuse_the_pack_catches_too(run_stack):
    # A `latest` tag or an off weight cannot come through config; a hand edit still meets the pack.
    found = resources(run_stack("staging", IN_FLIGHT))
    deployment = one(found, "kubernetes:apps/v1:Deployment", "chat-api-canary")
    deployment.props["spec"]["template"]["spec"]["containers"][0]["image"] = IMAGE.replace("v1.4.0", "latest")
    one(found, VIRTUAL_SERVICE).props["spec"]["http"][-1]["route"][1]["weight"] = 50
    assert {v[0] for v in evaluate(found, "staging", "mandatory")} == {"pinned-ecr-images", "weighted-routes"}


# --- two services: a violation names the offending service's resources only ---------

TRIAGE = {"tag": "v0.3.0", "pathPrefix": "/triage", "rollout": {"strategy": "rolling"}}
TRIAGE_CANARY = {"tag": "v0.3.0", "hosts": ["triage.example.org"], "rollout": {"strategy": "canary", "canary": {"tag": "v0.4.0", "weight": 10}}}


def two_canaries(router: str) -> dict:
    """Staging with chat-api and triage-api both mid-canary on `router`."""
    return {**IN_FLIGHT, "services.chat-api.router": router, "services.triage-api": {**TRIAGE_CANARY, "router": router}}


def named(problems: list[str]) -> set[str]:
    """The resources the messages name: `Deployment triage-api: ...` -> `triage-api`."""
    return {problem.split(" ")[1].rstrip(":") for problem in problems}


@pytest.mark.parametrize(
    "edits, offending",
    [
        ({"triage-api": {"replicas": 1}}, {"triage-api"}),
        ({"triage-api": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}}}, {"triage-api"}),
        ({"chat-api-blue": {"replicas": 1}, "chat-api-green": {"replicas": 1}}, {"chat-api-blue", "chat-api-green"}),
    ],
    ids=["triage-api on one replica", "triage-api with maxUnavailable 1", "chat-api on one replica"],
)
def test_production_deployment_safety_per_service(run_stack, edits, offending):
    # The settings refuse these on production; the pack names the Deployment they reach.
    found = resources(run_stack("production", {"services.triage-api": TRIAGE}))
    for name, spec in edits.items():
        _deployment(found, name).update(spec)
    problems = production_deployment_safety(found, "production")
    assert problems and named(problems) == offending


def test_every_service_needs_its_own_disruption_budget(run_stack):
    found = resources(run_stack("production", {"services.triage-api": TRIAGE}))
    assert production_deployment_safety(found, "production") == []
    without = [r for r in found if (r.type, r.name) != ("kubernetes:policy/v1:PodDisruptionBudget", "triage-api")]
    assert production_deployment_safety(without, "production") == ["Deployment triage-api: no PodDisruptionBudget selects its pods"]


@pytest.mark.parametrize("router, kind", [("istio", "VirtualService"), ("gateway-api", "HTTPRoute")])
def test_weighted_routes_per_service(run_stack, router, kind):
    found = resources(run_stack("staging", two_canaries(router)))
    assert weighted_routes(found, "staging") == []
    one(found, "kubernetes:apps/v1:Deployment", "triage-api-canary").props["spec"]["replicas"] = 0
    route = one(found, VIRTUAL_SERVICE if router == "istio" else HTTP_ROUTE, "triage-api")
    split = (route.props["spec"]["http"] if router == "istio" else route.props["spec"]["rules"])[-1]
    (split["route"] if router == "istio" else split["backendRefs"])[0]["weight"] = 80
    problems = weighted_routes(found, "staging")
    assert {p.split(" ")[0] for p in problems} == {kind} and named(problems) == {"triage-api"}
    assert any("weights sum to 90, not 100" in p for p in problems)
    assert any("no Deployment with a replica or more runs its pods" in p for p in problems)


def test_virtual_service_subsets_per_service(run_stack):
    found = resources(run_stack("staging", two_canaries("istio")))
    one(found, VIRTUAL_SERVICE, "chat-api").props["spec"]["http"][0]["route"][0]["destination"]["subset"] = "experimental"
    assert weighted_routes(found, "staging") == [
        "VirtualService chat-api route testers: subset experimental is in no DestinationRule for chat-api-mesh.carepath-staging.svc.cluster.local"
    ]


def test_pinned_images_and_probes_per_service(run_stack):
    found = resources(run_stack("staging", two_canaries("istio")))
    container = one(found, "kubernetes:apps/v1:Deployment", "triage-api-canary").props["spec"]["template"]["spec"]["containers"][0]
    container["image"] = container["image"].replace(":v0.4.0", ":latest")
    del container["readinessProbe"]
    violations = evaluate(found, "staging", "mandatory")
    assert {(rule, resource) for rule, resource, _ in violations} == {
        ("pinned-ecr-images", "triage-api-canary"),
        ("probes-and-resources", "triage-api-canary"),
    }


def test_autoscaler_advisory_per_service(run_stack):
    found = resources(run_stack("production", {"services.triage-api": TRIAGE, "services.chat-api.autoscaling.enabled": True}))
    assert evaluate(found, "production", "advisory") == [
        ("autoscaler-present", "production", "Deployment triage-api has no HorizontalPodAutoscaler")
    ]


# --- the settings' new refusals, as a second line ---------------------------------


@pytest.mark.parametrize("cidrs", [["0.0.0.0/0"], ["0.0.0.0/1", "128.0.0.0/1"], ["::/0"], []])
def test_eks_endpoint_open_to_every_address_in_production(run_stack, cidrs):
    cluster = one(resources(run_stack("production")), "eks:index:Cluster")
    props = {**cluster.props, "publicAccessCidrs": cidrs}
    assert eks_cluster_hardening(cluster.type, props, "production") == ["the public API endpoint is open to the internet in production"]
    narrow = {**cluster.props, "publicAccessCidrs": ["0.0.0.0/1", "128.0.0.0/2"]}
    assert eks_cluster_hardening(cluster.type, narrow, "production") == []


@pytest.mark.parametrize("cidrs", [["0.0.0.0/0"], ["0.0.0.0/1", "128.0.0.0/1"]])
def test_no_open_test_ports_in_production(run_stack, cidrs):
    group = one(resources(run_stack("production")), "aws:ec2/securityGroup:SecurityGroup", "edge")
    assert no_open_test_ports_in_production(group.type, group.props, "production") == []  # 80 and 443 are open: they are public
    ingress = [dict(rule, cidrBlocks=cidrs) if rule["fromPort"] == 8443 else rule for rule in group.props["ingress"]]
    assert no_open_test_ports_in_production(group.type, {**group.props, "ingress": ingress}, "production") == [
        "ingress on port 8443 is open to every address in production"
    ]
    assert no_open_test_ports_in_production(group.type, {**group.props, "ingress": ingress}, "staging") == []
    rule = {"fromPort": 8443, "toPort": 8443, "cidrIpv6": "::/0"}
    assert no_open_test_ports_in_production(INGRESS_RULE, rule, "production") == ["ingress on port 8443 is open to every address in production"]


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_web_firewall_on_patient_facing_albs(run_stack, stack):
    found = resources(run_stack(stack))
    assert web_firewall_on_patient_facing_albs(found, stack) == []
    without = [r for r in found if r.type != "aws:wafv2/webAclAssociation:WebAclAssociation"]
    assert web_firewall_on_patient_facing_albs(without, stack) == [f"LoadBalancer edge: no AWS WAF web ACL is associated on {stack}, which serves patients"]
    internal = [Resource(r.type, r.name, {**r.props, "internal": True}) if r.type == "aws:lb/loadBalancer:LoadBalancer" else r for r in without]
    assert web_firewall_on_patient_facing_albs(internal, stack) == [], "an internal ALB is not on the internet"
    # The settings refuse the WAF off here first; the pack is the second line.
    config = apply_overrides(load_stack_config(stack), {"carepath:edge.waf.enabled": False})
    with pytest.raises(SettingsError):
        settings_from(carepath_sections(config), stack)


def test_the_pack_and_the_settings_agree_on_the_stacks_that_serve_patients():
    assert policy_rules.PATIENT_FACING_STACKS == settings_rules.PATIENT_FACING_STACKS == ("staging", "production")


def test_demo_serves_no_patients_and_may_go_without_the_waf(run_stack):
    found = resources(run_stack("demo"))
    assert [r for r in found if r.type == "aws:wafv2/webAclAssociation:WebAclAssociation"] == []
    assert web_firewall_on_patient_facing_albs(found, "demo") == []
    assert web_firewall_on_patient_facing_albs(found, "staging") != [], "the same plan on a patient-facing stack"


@pytest.mark.parametrize("port", ISTIO_PORTS)
def test_mesh_ports_free(run_stack, port):
    deployment = one(resources(run_stack("staging")), DEPLOYMENT, "chat-api")
    assert mesh_ports_free(deployment.type, deployment.props, "staging") == []
    props = with_container(deployment, ports=[{"name": "http", "containerPort": port}])
    assert mesh_ports_free(deployment.type, props, "staging") == [f"container chat-api listens on {port}, a port Istio's sidecar takes"]


def test_the_pack_and_the_settings_agree_on_istios_ports():
    assert ISTIO_PORTS == settings_rules.ISTIO_PORTS and PRODUCTION_STACKS == settings_rules.PRODUCTION_STACKS


def test_finite_alert_thresholds(run_stack):
    found = resources(run_stack("demo"))
    rules = one(found, PROMETHEUS_RULE)
    assert finite_alert_thresholds(rules.type, rules.props, "demo") == []
    props = copy.deepcopy(dict(rules.props))
    props["spec"]["groups"][0]["rules"] += [
        {"alert": "Bucketed", "expr": 'histogram_quantile(0.95, sum by (le) (rate(x_bucket{le="+Inf"}[5m]))) > 2.5'},
        {"alert": "NeverFires", "expr": "carepath:errors:ratio5m > +Inf"},
        {"alert": "NotANumber", "expr": "carepath:errors:ratio5m > NaN"},
    ]
    assert finite_alert_thresholds(rules.type, props, "demo") == [
        "rule NeverFires compares with a NaN or infinite number",
        "rule NotANumber compares with a NaN or infinite number",
    ]

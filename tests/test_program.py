"""The whole program, per stack file, offline."""

import ast
from pathlib import Path

import pytest

from components.routers.factory import ROUTERS
from offline.harness import STACKS, ProgramFailed
from tests.conftest import unknown_inputs, validate_kubernetes

COMMON_TYPES = {
    "aws:ec2/launchTemplate:LaunchTemplate",
    "aws:eks/addon:Addon",
    "aws:iam/rolePolicy:RolePolicy",
    "kubernetes:storage.k8s.io/v1:StorageClass",
    "carepath:monitoring:Monitoring",
    "carepath:monitoring:ReleaseSignals",
    "random:index/randomPassword:RandomPassword",
    "kubernetes:core/v1:Secret",
    "kubernetes:core/v1:ConfigMap",
    "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
    "kubernetes:monitoring.coreos.com/v1:PrometheusRule",
    "carepath:network:Network",
    "carepath:cluster:Cluster",
    "carepath:services:Service",
    "carepath:registry:Registry",
    "awsx:ec2:Vpc",
    "eks:index:Cluster",
    "eks:index:ManagedNodeGroup",
    "eks:index:VpcCniAddon",
    "aws:kms/key:Key",
    "aws:iam/role:Role",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:ecr/repository:Repository",
    "aws:ecr/lifecyclePolicy:LifecyclePolicy",
    "pulumi:providers:kubernetes",
    "carepath:edge:Edge",
    "carepath:edge:LoadBalancerController",
    "carepath:namespace:AppNamespace",
    "carepath:track:Track",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:lb/loadBalancer:LoadBalancer",
    "aws:lb/targetGroup:TargetGroup",
    "aws:lb/listener:Listener",
    "aws:lb/listenerRule:ListenerRule",
    "aws:iam/policy:Policy",
    "kubernetes:helm.sh/v4:Chart",
    "kubernetes:core/v1:Namespace",
    "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding",
    "kubernetes:apps/v1:Deployment",
    "kubernetes:core/v1:Service",
    "kubernetes:policy/v1:PodDisruptionBudget",
    "kubernetes:networking.k8s.io/v1:NetworkPolicy",
    "carepath:network:ServiceNetworkPolicy",
    "aws:ec2/flowLog:FlowLog",
    "aws:cloudwatch/logGroup:LogGroup",
    "carepath:edge:AccessLogBucket",
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "carepath:certificates:BackendTls",
    "kubernetes:cert-manager.io/v1:Certificate",
    "kubernetes:cert-manager.io/v1:ClusterIssuer",
}
# The alb router's pods pull their TLS proxy through the stack's cache of ECR Public.
ALB_TYPES = {
    "carepath:router:AlbRouter",
    "aws:ecr/pullThroughCacheRule:PullThroughCacheRule",
    "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate",
}
WAF_TYPES = {
    "carepath:edge:WebFirewall",
    "aws:wafv2/webAcl:WebAcl",
    "aws:wafv2/webAclAssociation:WebAclAssociation",
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration",
}
STACK_TYPES = {
    "demo": ALB_TYPES,
    "production": ALB_TYPES | WAF_TYPES,
    "staging": WAF_TYPES
    | {
        "carepath:router:IstioRouter",
        "carepath:mesh:IstioMesh",
        "kubernetes:networking.istio.io/v1:Gateway",
        "kubernetes:networking.istio.io/v1:DestinationRule",
        "kubernetes:networking.istio.io/v1:VirtualService",
        "kubernetes:security.istio.io/v1:PeerAuthentication",
        "kubernetes:telemetry.istio.io/v1:Telemetry",
    },
}
IN_FLIGHT = {"services.chat-api.rollout.canary.tag": "v2.0.0", "services.chat-api.rollout.canary.weight": 25}


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_evaluates_offline(run_stack, stack):
    plan = run_stack(stack)
    assert {r.type for r in plan.managed} == COMMON_TYPES | STACK_TYPES[stack]
    assert plan.one("eks:index:Cluster").inputs["name"] == f"carepath-{stack}"
    assert plan.outputs["namespace"] == f"carepath-{stack}"
    assert plan.outputs["kubeconfig"] == "[secret]"
    assert plan.outputs["repositoryUrls"] == {"chat-api": "123456789012.dkr.ecr.us-east-1.amazonaws.com/carepath-chat-api"}
    assert set(plan.outputs["releases"]) == {"chat-api"}
    components = {r.urn for r in plan.managed if r.type.startswith("carepath:")}
    root = plan.one("pulumi:pulumi:Stack")
    for resource in plan.managed:
        assert resource.parent in components | {root.urn}, resource.urn


def test_production_runs_a_nat_gateway_per_zone_and_demo_one(run_stack):
    assert run_stack("production").one("awsx:ec2:Vpc").inputs["natGateways"] == {"strategy": "OnePerAz"}
    assert run_stack("demo").one("awsx:ec2:Vpc").inputs["natGateways"] == {"strategy": "Single"}


def test_production_restricts_the_public_api_endpoint(run_stack):
    cluster = run_stack("production").one("eks:index:Cluster").inputs
    assert "0.0.0.0/0" not in cluster["publicAccessCidrs"]
    assert cluster["deletionProtection"] is True


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"services.chat-api.rollout.strategy": "canry"}, "carepath:services.chat-api.rollout.strategy"),
        ({"services.chat-api.tag": "latest"}, "carepath:services.chat-api.tag"),
        ({"cluster.minNodes": 5}, "carepath:cluster"),
        ({"services.chat-api.replica": 3}, "carepath:services.chat-api.replica"),
        ({"services.chat-api.router": "linkerd"}, "carepath:services.chat-api.router"),
        ({"services.chat-api.rollout.canary.weight": 120, "mesh.enabled": False}, "carepath:services.chat-api.rollout.canary.weight"),
        ({"chatApi": {"tag": "v1.4.0"}}, "carepath:chatApi"),
    ],
    ids=str,
)
@pytest.mark.parametrize("stack", STACKS)
def test_bad_config_registers_nothing(run_stack, stack, overrides, key):
    with pytest.raises(ProgramFailed) as caught:
        run_stack(stack, overrides)
    assert key in str(caught.value.cause)
    assert caught.value.plan.managed == []


def test_secrets_count_only_when_stored_encrypted(run_stack):
    receivers = {"monitoring.receivers": [{"name": "oncall", "kind": "slack", "secret": "oncall"}]}
    plan = run_stack("demo", {**receivers, "secrets.oncall": {"secure": "AAAB"}})
    chart = plan.one("kubernetes:helm.sh/v4:Chart", "monitoring")
    assert chart.inputs["values"]["alertmanager"]["config"] == "[secret]"
    with pytest.raises(ProgramFailed) as caught:
        run_stack("demo", {**receivers, "secrets.oncall": "https://hooks.slack.com/services/T0/B0/x"})
    assert "carepath:secrets.oncall: set in plain text" in str(caught.value.cause)


def test_an_existing_vpc_is_used_as_is(run_stack):
    plan = run_stack(
        "demo",
        {
            "cluster.vpcId": "vpc-0123456789abcdef0",
            "cluster.publicSubnetIds": ["subnet-0aaaaaaa", "subnet-0bbbbbbb"],
            "cluster.privateSubnetIds": ["subnet-0ccccccc", "subnet-0ddddddd"],
        },
    )
    assert plan.of_type("awsx:ec2:Vpc") == []
    cluster = plan.one("eks:index:Cluster").inputs
    assert cluster["vpcId"] == "vpc-0123456789abcdef0"
    assert plan.one("eks:index:ManagedNodeGroup").inputs["subnetIds"] == ["subnet-0ccccccc", "subnet-0ddddddd"]
    assert plan.outputs["vpcId"] == "vpc-0123456789abcdef0"


def test_the_program_asks_no_router_specific_question():
    # Routers declare what they need (traits, backends); the program names none of them.
    tree = ast.parse((Path(__file__).parent.parent / "program.py").read_text())
    strings = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)} | {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert strings & set(ROUTERS) == set()
    assert names & {router.__name__ for router in ROUTERS.values()} == set()


# --- chat-api on the cluster --------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_every_kubernetes_resource_validates_and_uses_the_cluster_provider(run_stack, reference_schema, stack):
    plan = run_stack(stack)
    provider = plan.one("pulumi:providers:kubernetes").urn
    kubernetes = [r for r in plan.managed if r.type.startswith("kubernetes:")]
    assert kubernetes
    for resource in kubernetes:
        assert resource.options["provider"].startswith(provider + "::"), resource.urn
        validate_kubernetes(resource, reference_schema)


@pytest.mark.parametrize("stack", STACKS)
def test_every_aws_input_is_in_the_providers_schema(run_stack, reference_schema, stack):
    schema = reference_schema("pulumi-aws-schema-subset.json")
    checked = [r for r in run_stack(stack).managed if r.type in schema["resources"]]
    assert "aws:lb/listenerRule:ListenerRule" in {r.type for r in checked}
    for resource in checked:
        assert unknown_inputs(resource, schema) == [], resource.urn


def test_demo_runs_chat_api_rolling_from_the_services_registry(run_stack):
    plan = run_stack("demo")
    deployment = plan.one("kubernetes:apps/v1:Deployment", "chat-api").inputs
    assert deployment["metadata"] == {
        "name": "chat-api",
        "namespace": "carepath-demo",
        "labels": {"app.kubernetes.io/name": "chat-api", "track": "stable", "app.kubernetes.io/part-of": "carepath"},
    }
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == plan.outputs["repositoryUrls"]["chat-api"] + ":v1.4.0"
    assert {"readinessProbe", "livenessProbe", "startupProbe"} <= set(container)
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert plan.outputs["url"].startswith("http://") and plan.outputs["url"].endswith(".elb.amazonaws.com")
    assert plan.outputs["releases"]["chat-api"]["strategy"] == "rolling"


def test_pods_are_created_after_their_target_group_binding(run_stack):
    # The ALB readiness gate is injected only into pods created after the binding exists.
    plan = run_stack("demo")
    binding = plan.one("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding", "chat-api")
    deployment = plan.one("kubernetes:apps/v1:Deployment", "chat-api")
    assert binding.urn in deployment.options["dependsOn"]
    group = plan.one("aws:lb/targetGroup:TargetGroup", "edge-chat-api-stable")
    assert binding.inputs["spec"]["targetGroupARN"] == group.outputs["arn"]


def test_pin_digest_pins_the_image_to_what_the_tag_points_at(run_stack):
    plan = run_stack("demo", {"services.chat-api.pinDigest": True})
    [container] = plan.one("kubernetes:apps/v1:Deployment", "chat-api").inputs["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith(plan.outputs["repositoryUrls"]["chat-api"] + ":v1.4.0@sha256:")
    assert len(container["image"].rsplit(":", 1)[1]) == 64


def test_https_when_a_certificate_is_configured(run_stack):
    plan = run_stack("demo", {"edge.certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0f0e0d0c-0b0a-0908"})
    listeners = {r.inputs["port"]: r for r in plan.of_type("aws:lb/listener:Listener")}
    assert set(listeners) == {80, 443}
    assert plan.one("aws:lb/listenerRule:ListenerRule").inputs["listenerArn"] == listeners[443].outputs["arn"]
    assert plan.outputs["url"].startswith("https://")


# --- the shared edge -------------------------------------------------------------

NOT_FOUND = {"type": "fixed-response", "fixedResponse": {"contentType": "text/plain", "messageBody": "no service here", "statusCode": "404"}}


@pytest.mark.parametrize("stack", STACKS)
def test_listeners_answer_404_and_each_service_reaches_its_backends_by_its_own_rule(run_stack, stack):
    plan = run_stack(stack)
    listeners = {r.inputs["port"]: r for r in plan.of_type("aws:lb/listener:Listener")}
    production = listeners[443] if 443 in listeners else listeners[80]
    assert production.inputs["defaultActions"] == [NOT_FOUND]
    rule = plan.one("aws:lb/listenerRule:ListenerRule", "chat-api-production")
    assert rule.inputs["listenerArn"] == production.outputs["arn"]
    assert rule.parent == plan.one("carepath:services:Service", "chat-api").urn


def test_production_runs_both_colours_and_forwards_to_the_active_one(run_stack):
    plan = run_stack("production")
    assert {r.inputs["metadata"]["name"] for r in plan.of_type("kubernetes:apps/v1:Deployment")} == {"chat-api-blue", "chat-api-green"}
    groups = {r.name: r.outputs["arn"] for r in plan.of_type("aws:lb/targetGroup:TargetGroup")}
    assert set(groups) == {"edge-chat-api-blue", "edge-chat-api-green"}
    listeners = {r.inputs["port"]: r for r in plan.of_type("aws:lb/listener:Listener")}
    assert set(listeners) == {80, 443, 8443}
    assert listeners[80].inputs["defaultActions"][0]["type"] == "redirect"
    assert listeners[443].inputs["protocol"] == "HTTPS" and listeners[8443].inputs["protocol"] == "HTTPS"
    assert listeners[8443].inputs["defaultActions"] == [NOT_FOUND]
    rules = {r.name: r.inputs for r in plan.of_type("aws:lb/listenerRule:ListenerRule")}
    assert rules["chat-api-production"]["listenerArn"] == listeners[443].outputs["arn"]
    assert rules["chat-api-production"]["actions"][0]["forward"]["targetGroups"] == [{"arn": groups["edge-chat-api-blue"], "weight": 100}]
    # Blue/green's test route is a rule too, on the test listener.
    assert rules["chat-api-test"]["listenerArn"] == listeners[8443].outputs["arn"]
    assert rules["chat-api-test"]["actions"][0]["forward"]["targetGroups"] == [{"arn": groups["edge-chat-api-green"], "weight": 1}]
    bindings = {r.inputs["spec"]["serviceRef"]["name"]: r.inputs["spec"]["targetGroupARN"] for r in plan.of_type("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding")}
    assert bindings == {"chat-api-blue": groups["edge-chat-api-blue"], "chat-api-green": groups["edge-chat-api-green"]}


def test_the_test_listener_exists_while_an_idle_colour_has_pods_to_test(run_stack):
    plan = run_stack("production", {"services.chat-api.rollout.blueGreen.idleReplicas": 0})
    assert {r.inputs["port"] for r in plan.of_type("aws:lb/listener:Listener")} == {80, 443}
    assert {r.name for r in plan.of_type("aws:lb/listenerRule:ListenerRule")} == {"chat-api-production"}
    ingress = plan.one("aws:ec2/securityGroup:SecurityGroup").inputs["ingress"]
    assert 8443 not in {r["fromPort"] for r in ingress}


def test_namespace_isolation_puts_each_colour_in_its_own_namespace(run_stack):
    plan = run_stack("production", {"services.chat-api.rollout.blueGreen.isolation": "namespace"})
    namespaces = {r.inputs["metadata"]["name"] for r in plan.of_type("kubernetes:core/v1:Namespace")}
    assert {n for n in namespaces if n.startswith("carepath-")} == {"carepath-production-blue", "carepath-production-green"}
    for kind in ("kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service", "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"):
        placed = {r.inputs["metadata"]["name"]: r.inputs["metadata"]["namespace"] for r in plan.of_type(kind)}
        assert placed == {"chat-api-blue": "carepath-production-blue", "chat-api-green": "carepath-production-green"}


# --- staging: the mesh ---------------------------------------------------------


def test_staging_with_a_canary_in_flight(run_stack, reference_schema):
    plan = run_stack("staging", IN_FLIGHT)
    charts = {r.inputs["chart"] for r in plan.of_type("kubernetes:helm.sh/v4:Chart")}
    assert {"base", "cni", "istiod", "gateway", "aws-load-balancer-controller", "kube-prometheus-stack", "cert-manager"} == charts
    namespace = plan.one("kubernetes:core/v1:Namespace", "carepath-staging")
    assert "istio-injection" not in namespace.inputs["metadata"]["labels"]
    deployments = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in plan.of_type("kubernetes:apps/v1:Deployment")}
    assert set(deployments) == {"chat-api", "chat-api-canary"}
    for spec in deployments.values():
        assert spec["template"]["metadata"]["labels"]["sidecar.istio.io/inject"] == "true"
    assert deployments["chat-api-canary"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "chat-api", "track": "canary"}}
    assert deployments["chat-api-canary"]["template"]["spec"]["containers"][0]["image"].endswith(":v2.0.0")
    assert deployments["chat-api-canary"]["replicas"] == 1  # 25 % of 2, at least 1
    http = plan.one("kubernetes:networking.istio.io/v1:VirtualService").inputs["spec"]["http"]
    assert [r["name"] for r in http] == ["testers", "pinned-canary", "pinned-stable", "split"]
    assert http[0]["match"] == [{"headers": {"x-version": {"exact": "canary"}}}]
    assert [(r["destination"]["subset"], r["weight"]) for r in http[-1]["route"]] == [("stable", 75), ("canary", 25)]
    subsets = plan.one("kubernetes:networking.istio.io/v1:DestinationRule").inputs["spec"]["subsets"]
    assert [s["name"] for s in subsets] == ["stable", "canary"]
    policy = plan.one("kubernetes:security.istio.io/v1:PeerAuthentication").inputs
    assert policy["spec"]["mtls"] == {"mode": "STRICT"}
    for resource in plan.managed:
        if resource.type.startswith("kubernetes:"):
            validate_kubernetes(resource, reference_schema)


def test_the_mesh_edge_targets_the_gateway_and_checks_its_readiness(run_stack):
    plan = run_stack("staging")
    [group] = plan.of_type("aws:lb/targetGroup:TargetGroup")
    assert group.name == "edge-gateway" and (group.inputs["port"], group.inputs["protocol"]) == (443, "HTTPS")
    assert group.inputs["healthCheck"]["port"] == "15021" and group.inputs["healthCheck"]["path"] == "/healthz/ready"
    ports = sorted(r.inputs["fromPort"] for r in plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"))
    assert ports == [443, 15021]


@pytest.mark.parametrize("stack", STACKS)
def test_monitoring_watches_every_stack_and_keeps_grafanas_password_secret(run_stack, stack):
    plan = run_stack(stack)
    assert plan.outputs["grafanaAdminPassword"] == "[secret]"
    monitor = plan.one("kubernetes:monitoring.coreos.com/v1:ServiceMonitor", "chat-api")
    assert monitor.inputs["spec"]["namespaceSelector"]["matchNames"] == [f"carepath-{stack}"]
    assert run_stack(stack, {"monitoring.enabled": False}).of_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule") == []

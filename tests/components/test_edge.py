"""Edge: the one ALB every service shares, its listeners (404 by default) and a target group per backend."""

import pytest

from components.edge import Edge, EdgeArgs
from components.listeners import TLS_POLICY
from core.edge import Backend
from tests.conftest import unknown_inputs

CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0f0e0d0c-0b0a-0908-0706-050403020100"
NODE_SG = "sg-0123456789abcdef0"
STABLE = Backend("chat-api-stable", 8080, "/healthz")
GATEWAY = Backend("gateway", 80, "/healthz/ready", 15021)
WAF_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
NOT_FOUND = [{"type": "fixed-response", "fixedResponse": {"contentType": "text/plain", "messageBody": "no service here", "statusCode": "404"}}]


def build_edge(run_component, certificate=None, backends=(STABLE,), test_port=None, inspect=lambda edge: None, waf=True, deletion_protection=True):
    return run_component(
        lambda: inspect(
            Edge(
                "edge",
                EdgeArgs(
                    vpc_id="vpc-0123456789abcdef0",
                    public_subnet_ids=["subnet-0aaaaaaa", "subnet-0bbbbbbb"],
                    node_security_group_id=NODE_SG,
                    certificate_arn=certificate,
                    allowed_cidrs=["0.0.0.0/0"],
                    deregistration_delay_seconds=30,
                    idle_timeout_seconds=120,
                    backends=backends,
                    test_port=test_port,
                    test_cidrs=["198.51.100.0/24"] if test_port else [],
                    name="carepath-test",
                    access_log_retention_days=90,
                    deletion_protection=deletion_protection,
                    waf=waf,
                    waf_log_retention_days=30,
                ),
            )
        )
    )


@pytest.fixture(scope="module")
def http(run_component):
    return build_edge(run_component)


@pytest.fixture(scope="module")
def https(run_component):
    return build_edge(run_component, certificate=CERTIFICATE, backends=(Backend("chat-api-blue", 8080, "/healthz"), Backend("chat-api-green", 8080, "/healthz")), test_port=8443)


def _listeners(plan):
    return {r.inputs["port"]: r.inputs for r in plan.of_type("aws:lb/listener:Listener")}


def test_public_alb_in_the_public_subnets(http):
    alb = http.one("aws:lb/loadBalancer:LoadBalancer")
    assert alb.inputs["loadBalancerType"] == "application" and alb.inputs["internal"] is False
    assert alb.inputs["subnets"] == ["subnet-0aaaaaaa", "subnet-0bbbbbbb"]
    assert alb.inputs["securityGroups"] == [http.one("aws:ec2/securityGroup:SecurityGroup").outputs["id"]]
    assert alb.inputs["dropInvalidHeaderFields"] is True and alb.inputs["idleTimeout"] == 120


def test_a_target_group_per_backend_registers_pod_ips_with_a_short_drain(run_component):
    plan = build_edge(run_component, backends=(STABLE, GATEWAY))
    groups = {r.name: r.inputs for r in plan.of_type("aws:lb/targetGroup:TargetGroup")}
    assert set(groups) == {"edge-chat-api-stable", "edge-gateway"}
    for group in groups.values():
        # The ALB reaches every target over TLS.
        assert group["targetType"] == "ip" and group["protocol"] == "HTTPS"
        assert group["deregistrationDelay"] == 30 < 300
    stable, gateway = groups["edge-chat-api-stable"], groups["edge-gateway"]
    assert stable["port"] == 8080 and stable["healthCheck"]["path"] == "/healthz" and stable["healthCheck"]["port"] == "traffic-port"
    assert stable["healthCheck"]["protocol"] == "HTTPS", "checked over TLS on the traffic port"
    assert gateway["healthCheck"]["protocol"] == "HTTP", "a status port speaks plain HTTP and carries no request"
    # The gateway routes by Host, which health checks lack: it is checked on its own readiness port.
    assert gateway["port"] == 80 and gateway["healthCheck"]["path"] == "/healthz/ready" and gateway["healthCheck"]["port"] == "15021"


def test_the_production_listener_answers_404_until_a_service_adds_its_rule(http):
    [listener] = _listeners(http).values()
    assert (listener["port"], listener["protocol"]) == (80, "HTTP")
    assert listener["defaultActions"] == NOT_FOUND
    assert listener["loadBalancerArn"] == http.one("aws:lb/loadBalancer:LoadBalancer").outputs["arn"]


def test_https_with_a_modern_policy_http_redirecting_and_the_test_listener(https):
    listeners = _listeners(https)
    assert set(listeners) == {80, 443, 8443}
    for port in (443, 8443):
        assert listeners[port]["protocol"] == "HTTPS"
        assert listeners[port]["sslPolicy"] == TLS_POLICY
        assert listeners[port]["certificateArn"] == CERTIFICATE
        assert listeners[port]["defaultActions"] == NOT_FOUND
    assert listeners[80]["defaultActions"] == [{"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}]


def test_the_url_follows_the_scheme(run_component):
    schemes = []
    build_edge(run_component, certificate=CERTIFICATE, inspect=lambda edge: edge.url.apply(lambda url: schemes.append(url.split("://")[0])))
    build_edge(run_component, inspect=lambda edge: edge.url.apply(lambda url: schemes.append(url.split("://")[0])))
    assert schemes == ["https", "http"]


def test_no_test_listener_without_a_test_port(http):
    assert set(_listeners(http)) == {80}
    ingress = http.one("aws:ec2/securityGroup:SecurityGroup").inputs["ingress"]
    assert [(r["fromPort"], r["cidrBlocks"]) for r in ingress] == [(80, ["0.0.0.0/0"])]


def test_the_test_port_is_open_to_testers_only(https):
    ingress = {r["fromPort"]: r["cidrBlocks"] for r in https.one("aws:ec2/securityGroup:SecurityGroup").inputs["ingress"]}
    assert ingress == {80: ["0.0.0.0/0"], 443: ["0.0.0.0/0"], 8443: ["198.51.100.0/24"]}


def test_the_alb_reaches_pods_on_the_backends_ports_and_health_ports_only(run_component):
    plan = build_edge(run_component, backends=(STABLE, GATEWAY, Backend("gateway-api", 80, "/healthz/ready", 15021)))
    group = plan.one("aws:ec2/securityGroup:SecurityGroup")
    egress = group.inputs["egress"]
    assert [(r["fromPort"], r["toPort"], r["securityGroups"]) for r in egress] == [(port, port, [NODE_SG]) for port in (80, 8080, 15021)]
    assert not any("cidrBlocks" in r for r in egress)
    rules = plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert sorted((r.inputs["fromPort"], r.inputs["toPort"]) for r in rules) == [(80, 80), (8080, 8080), (15021, 15021)]
    for rule in rules:
        assert rule.inputs["securityGroupId"] == NODE_SG
        assert rule.inputs["referencedSecurityGroupId"] == group.outputs["id"]
        assert rule.inputs["ipProtocol"] == "tcp"


def test_every_aws_input_is_in_the_providers_schema(http, https, reference_schema):
    schema = reference_schema("pulumi-aws-schema-subset.json")
    for plan in (http, https):
        checked = [r for r in plan.managed if r.type in schema["resources"]]
        assert {r.type for r in checked} >= {"aws:lb/loadBalancer:LoadBalancer", "aws:lb/targetGroup:TargetGroup", "aws:lb/listener:Listener", WAF_ASSOCIATION}
        for resource in checked:
            assert unknown_inputs(resource, schema) == [], resource.urn


def test_target_groups_are_named_by_prefix_so_a_long_service_name_fits_awss_32_characters(run_stack):
    long_name = "clinical-summaries-api-with-a-long-name"  # 39 characters, a valid service name
    plan = run_stack("demo", {f"services.{long_name}": {"tag": "v1.0.0", "hosts": ["summaries.example.org"], "rollout": {"strategy": "rolling"}}})
    groups = plan.of_type("aws:lb/targetGroup:TargetGroup")
    assert {g.inputs["tags"]["carepath:backend"] for g in groups} == {"chat-api-stable", f"{long_name}-stable"}
    for group in groups:
        assert "name" not in group.inputs and len(group.inputs["namePrefix"]) <= 6


def test_access_logs_go_to_the_edges_own_bucket_once_its_policy_lets_the_alb_write(http):
    alb = http.one("aws:lb/loadBalancer:LoadBalancer")
    logs = http.one("carepath:edge:AccessLogBucket")
    assert logs.parent == http.one("carepath:edge:Edge").urn
    policy = http.one("aws:s3/bucketPolicy:BucketPolicy")
    assert alb.inputs["accessLogs"] == {"bucket": policy.inputs["bucket"], "prefix": "alb", "enabled": True}
    # Turning logging on fails unless the bucket policy already lets the ALB write.
    assert policy.urn in alb.options["dependsOn"]
    lifecycle = http.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    assert lifecycle.inputs["rules"][0]["expiration"] == {"days": 90}


def test_deletion_protection_follows_the_setting(http, run_component):
    assert http.one("aws:lb/loadBalancer:LoadBalancer").inputs["enableDeletionProtection"] is True
    unprotected = build_edge(run_component, deletion_protection=False)
    assert unprotected.one("aws:lb/loadBalancer:LoadBalancer").inputs["enableDeletionProtection"] is False


def test_the_web_firewall_guards_the_alb_unless_turned_off(http, run_component):
    firewall = http.one("carepath:edge:WebFirewall")
    assert firewall.parent == http.one("carepath:edge:Edge").urn
    association = http.one(WAF_ASSOCIATION)
    assert association.inputs["resourceArn"] == http.one("aws:lb/loadBalancer:LoadBalancer").outputs["arn"]
    assert http.one("aws:wafv2/webAcl:WebAcl").inputs["name"] == "carepath-test"
    without = build_edge(run_component, waf=False)
    assert [r for r in without.managed if r.type.startswith("aws:wafv2/") or r.type == "carepath:edge:WebFirewall"] == []


def test_staging_and_production_albs_have_the_waf_and_demo_has_none(run_stack):
    for stack in ("staging", "production"):
        plan = run_stack(stack)
        association = plan.one(WAF_ASSOCIATION)
        assert association.inputs["resourceArn"] == plan.one("aws:lb/loadBalancer:LoadBalancer").outputs["arn"], stack
        assert plan.one("aws:wafv2/webAcl:WebAcl").inputs["name"] == f"carepath-{stack}"
    assert run_stack("demo").of_type(WAF_ASSOCIATION) == []
    # demo turns it off in its stack file; on by default
    assert run_stack("demo", {"edge.waf.enabled": True}).one(WAF_ASSOCIATION)

import pytest

from components.edge import Edge, EdgeArgs
from tests.conftest import unknown_inputs

CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0f0e0d0c-0b0a-0908-0706-050403020100"
NODE_SG = "sg-0123456789abcdef0"


def build_edge(run_component, certificate=None, backends=("stable",), test_port=None, inspect=lambda edge: None):
    return run_component(
        lambda: inspect(Edge(
            "edge",
            EdgeArgs(
                vpc_id="vpc-0123456789abcdef0",
                public_subnet_ids=["subnet-0aaaaaaa", "subnet-0bbbbbbb"],
                node_security_group_id=NODE_SG,
                target_port=8080,
                health_path="/healthz",
                certificate_arn=certificate,
                allowed_cidrs=["0.0.0.0/0"],
                deregistration_delay_seconds=30,
                idle_timeout_seconds=120,
                backends=backends,
                test_port=test_port,
                test_cidrs=["198.51.100.0/24"] if test_port else [],
            ),
        ))
    )


@pytest.fixture(scope="module")
def http(run_component):
    return build_edge(run_component)


@pytest.fixture(scope="module")
def https(run_component):
    return build_edge(run_component, certificate=CERTIFICATE)


def test_public_alb_in_the_public_subnets(http, reference_schema):
    alb = http.one("aws:lb/loadBalancer:LoadBalancer")
    assert alb.inputs["loadBalancerType"] == "application" and alb.inputs["internal"] is False
    assert alb.inputs["subnets"] == ["subnet-0aaaaaaa", "subnet-0bbbbbbb"]
    assert alb.inputs["securityGroups"] == [http.one("aws:ec2/securityGroup:SecurityGroup").outputs["id"]]
    assert alb.inputs["dropInvalidHeaderFields"] is True
    assert unknown_inputs(alb, reference_schema("pulumi-aws-schema-subset.json")) == []


def test_target_group_registers_pod_ips_with_a_short_drain(http, reference_schema):
    group = http.one("aws:lb/targetGroup:TargetGroup")
    assert group.inputs["targetType"] == "ip"
    assert group.inputs["port"] == 8080 and group.inputs["protocol"] == "HTTP"
    assert group.inputs["deregistrationDelay"] == 30 < 300
    assert group.inputs["healthCheck"]["path"] == "/healthz"
    assert unknown_inputs(group, reference_schema("pulumi-aws-schema-subset.json")) == []


def test_listeners_are_the_routers_and_the_url_follows_the_scheme(run_component, http, https):
    for plan in (http, https):
        assert plan.of_type("aws:lb/listener:Listener") == []
    schemes = []
    build_edge(run_component, certificate=CERTIFICATE, inspect=lambda edge: edge.url.apply(lambda url: schemes.append(url.split("://")[0])))
    build_edge(run_component, inspect=lambda edge: edge.url.apply(lambda url: schemes.append(url.split("://")[0])))
    assert schemes == ["https", "http"]


def test_security_groups_open_only_the_listeners_and_the_target_port(http, https):
    group = http.one("aws:ec2/securityGroup:SecurityGroup")
    assert [(r["fromPort"], r["toPort"]) for r in group.inputs["ingress"]] == [(80, 80)]
    assert [(r["fromPort"], r["toPort"], r["securityGroups"]) for r in group.inputs["egress"]] == [(8080, 8080, [NODE_SG])]
    assert "cidrBlocks" not in group.inputs["egress"][0]
    tls_group = https.one("aws:ec2/securityGroup:SecurityGroup")
    assert sorted(r["fromPort"] for r in tls_group.inputs["ingress"]) == [80, 443]
    rule = http.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").inputs
    assert rule["securityGroupId"] == NODE_SG
    assert rule["referencedSecurityGroupId"] == group.outputs["id"]
    assert (rule["fromPort"], rule["toPort"], rule["ipProtocol"]) == (8080, 8080, "tcp")


def test_a_target_group_per_backend_and_the_test_port_open_to_testers_only(run_component):
    plan = build_edge(run_component, backends=("blue", "green"), test_port=8443)
    assert {r.name for r in plan.of_type("aws:lb/targetGroup:TargetGroup")} == {"edge-blue", "edge-green"}
    ingress = {r["fromPort"]: r["cidrBlocks"] for r in plan.one("aws:ec2/securityGroup:SecurityGroup").inputs["ingress"]}
    assert ingress == {80: ["0.0.0.0/0"], 8443: ["198.51.100.0/24"]}

import pytest

from components.edge import TLS_POLICY, Edge, EdgeArgs
from tests.conftest import unknown_inputs

CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0f0e0d0c-0b0a-0908-0706-050403020100"
NODE_SG = "sg-0123456789abcdef0"


def build_edge(run_component, certificate=None, backends=("stable",), weights=(("stable", 100),)):
    return run_component(
        lambda: Edge(
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
                weights=weights,
            ),
        )
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


def test_http_only_listener_forwards_to_the_target_group(http):
    [listener] = http.of_type("aws:lb/listener:Listener")
    assert (listener.inputs["port"], listener.inputs["protocol"]) == (80, "HTTP")
    group = http.one("aws:lb/targetGroup:TargetGroup")
    assert listener.inputs["defaultActions"] == [
        {"type": "forward", "forward": {"targetGroups": [{"arn": group.outputs["arn"], "weight": 100}]}}
    ]


def test_https_listener_with_modern_tls_and_http_redirecting(https, reference_schema):
    listeners = {r.inputs["port"]: r.inputs for r in https.of_type("aws:lb/listener:Listener")}
    assert set(listeners) == {80, 443}
    assert listeners[443]["protocol"] == "HTTPS"
    assert listeners[443]["sslPolicy"] == TLS_POLICY
    assert listeners[443]["certificateArn"] == CERTIFICATE
    assert listeners[443]["defaultActions"][0]["type"] == "forward"
    assert listeners[80]["defaultActions"] == [
        {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}
    ]
    for listener in https.of_type("aws:lb/listener:Listener"):
        assert unknown_inputs(listener, reference_schema("pulumi-aws-schema-subset.json")) == []


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


def test_weights_split_across_backends(run_component):
    plan = build_edge(run_component, backends=("blue", "green"), weights=(("blue", 100),))
    groups = {r.name: r.outputs["arn"] for r in plan.of_type("aws:lb/targetGroup:TargetGroup")}
    assert set(groups) == {"edge-blue", "edge-green"}
    [listener] = plan.of_type("aws:lb/listener:Listener")
    assert listener.inputs["defaultActions"][0]["forward"]["targetGroups"] == [{"arn": groups["edge-blue"], "weight": 100}]

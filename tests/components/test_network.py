import json

import pytest

from components.network import FLOW_LOG_ACTIONS, ExistingVpc, Network, NetworkArgs
from offline.mocks import ACCOUNT
from tests.conftest import unknown_inputs

FLOW_LOG = "aws:ec2/flowLog:FlowLog"
FLOW_LOG_TYPES = {FLOW_LOG, "aws:cloudwatch/logGroup:LogGroup", "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"}
GROUP_ARN = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/carepath/carepath-test/vpc-flow-logs"


@pytest.fixture(scope="module")
def new_vpc(run_component):
    return run_component(lambda: Network("network", NetworkArgs(cidr_block="10.0.0.0/16", nat_gateways="single", name="carepath-test")))


def test_new_vpc_spans_three_zones_with_tagged_public_and_private_subnets(new_vpc):
    plan = new_vpc
    component = plan.one("carepath:network:Network")
    vpc = plan.one("awsx:ec2:Vpc")
    assert vpc.parent == component.urn
    assert vpc.inputs["cidrBlock"] == "10.0.0.0/16"
    assert vpc.inputs["numberOfAvailabilityZones"] == 3
    assert vpc.inputs["natGateways"] == {"strategy": "Single"}
    specs = {spec["type"]: spec for spec in vpc.inputs["subnetSpecs"]}
    assert specs["Public"]["tags"] == {"kubernetes.io/role/elb": "1"}
    assert specs["Private"]["tags"] == {"kubernetes.io/role/internal-elb": "1"}
    # The blocks the network policy takes the ALB's range from (core.subnets), stated to awsx.
    assert specs["Public"]["cidrBlocks"] == ["10.0.32.0/20", "10.0.96.0/20", "10.0.160.0/20"]
    assert specs["Private"]["cidrBlocks"] == ["10.0.0.0/19", "10.0.64.0/19", "10.0.128.0/19"]


def test_subnets_follow_a_smaller_vpc(run_component):
    plan = run_component(lambda: Network("network", NetworkArgs(cidr_block="10.8.0.0/18", nat_gateways="onePerAz", name="carepath-test")))
    vpc = plan.one("awsx:ec2:Vpc")
    assert vpc.inputs["natGateways"] == {"strategy": "OnePerAz"}
    specs = {spec["type"]: spec for spec in vpc.inputs["subnetSpecs"]}
    assert specs["Public"]["cidrBlocks"] == ["10.8.8.0/22", "10.8.24.0/22", "10.8.40.0/22"]
    assert specs["Private"]["cidrBlocks"] == ["10.8.0.0/21", "10.8.16.0/21", "10.8.32.0/21"]


def test_existing_vpc_gets_only_a_flow_log_and_passes_its_ids_through(run_component):
    existing = ExistingVpc("vpc-0123456789abcdef0", ["subnet-0aaaaaaa", "subnet-0bbbbbbb"], ["subnet-0ccccccc", "subnet-0ddddddd"])
    outputs = {}

    def build():
        network = Network("network", NetworkArgs(cidr_block="10.0.0.0/16", nat_gateways="single", name="carepath-test", existing=existing))
        network.private_subnet_ids.apply(lambda ids: outputs.setdefault("private", ids))
        network.vpc_id.apply(lambda vpc: outputs.setdefault("vpc", vpc))

    plan = run_component(build)
    assert {r.type for r in plan.managed} == {"carepath:network:Network", *FLOW_LOG_TYPES}
    assert plan.one(FLOW_LOG).inputs["vpcId"] == "vpc-0123456789abcdef0"
    assert outputs == {"private": ["subnet-0ccccccc", "subnet-0ddddddd"], "vpc": "vpc-0123456789abcdef0"}


def test_every_flow_of_the_vpc_is_logged_to_a_group_with_a_retention(new_vpc):
    flow_log = new_vpc.one(FLOW_LOG)
    assert flow_log.inputs["vpcId"] == new_vpc.one("awsx:ec2:Vpc").outputs["vpcId"]
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["logDestinationType"] == "cloud-watch-logs" and flow_log.inputs["logDestination"] == GROUP_ARN
    group = new_vpc.one("aws:cloudwatch/logGroup:LogGroup").inputs
    assert group["name"] == "/carepath/carepath-test/vpc-flow-logs" and group["retentionInDays"] == 90


def test_the_flow_log_role_is_the_services_and_writes_to_that_group_only(new_vpc):
    role = new_vpc.one("aws:iam/role:Role")
    assert new_vpc.one(FLOW_LOG).inputs["iamRoleArn"] == role.outputs["arn"]
    [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    policy = new_vpc.one("aws:iam/rolePolicy:RolePolicy")
    assert policy.inputs["role"] == role.outputs["name"]
    [statement] = json.loads(policy.inputs["policy"])["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == list(FLOW_LOG_ACTIONS) == ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    assert statement["Resource"] == [GROUP_ARN, f"{GROUP_ARN}:*"]
    # AWS checks the role can write when the flow log is created.
    assert policy.urn in new_vpc.one(FLOW_LOG).options["dependsOn"]


def test_flow_log_inputs_are_in_the_providers_schema(new_vpc, reference_schema):
    schema = reference_schema("pulumi-aws-schema-subset.json")
    for resource in new_vpc.managed:
        if resource.type in FLOW_LOG_TYPES:
            assert resource.parent == new_vpc.one("carepath:network:Network").urn
            assert unknown_inputs(resource, schema) == [], resource.urn

"""AWS WAF on the ALB: AWS's managed rule groups, associated with the ALB, logging with patient sessions redacted."""

import pytest

from components.firewall import MANAGED_RULE_GROUPS, WebFirewall, WebFirewallArgs
from offline.mocks import ACCOUNT
from tests.conftest import unknown_inputs

ALB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/edge/0123456789abcdef"
ACL = "aws:wafv2/webAcl:WebAcl"
METRICS = {"cloudwatchMetricsEnabled": True, "sampledRequestsEnabled": True}


@pytest.fixture(scope="module")
def plan(run_component):
    return run_component(lambda: WebFirewall("edge-waf", WebFirewallArgs(name="carepath-staging", load_balancer_arn=ALB, log_retention_days=30)))


def test_a_regional_acl_allowing_by_default_with_metrics(plan):
    acl = plan.one(ACL).inputs
    assert acl["scope"] == "REGIONAL" and acl["defaultAction"] == {"allow": {}} and acl["name"] == "carepath-staging"
    assert acl["visibilityConfig"] == {**METRICS, "metricName": "carepath-staging"}


def test_the_three_aws_managed_rule_groups_block_with_their_own_actions(plan):
    rules = plan.one(ACL).inputs["rules"]
    assert [r["name"] for r in rules] == [
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    ] == list(MANAGED_RULE_GROUPS)
    assert sorted(r["priority"] for r in rules) == [0, 1, 2]
    for rule in rules:
        assert rule["overrideAction"] == {"none": {}}  # `count` would only watch
        assert rule["statement"] == {"managedRuleGroupStatement": {"name": rule["name"], "vendorName": "AWS"}}
        assert rule["visibilityConfig"] == {**METRICS, "metricName": rule["name"]}


def test_associated_with_the_alb(plan):
    association = plan.one("aws:wafv2/webAclAssociation:WebAclAssociation").inputs
    assert association["resourceArn"] == ALB
    assert association["webAclArn"] == plan.one(ACL).outputs["arn"]


def test_logs_to_an_aws_waf_logs_group_with_patient_sessions_redacted(plan):
    group = plan.one("aws:cloudwatch/logGroup:LogGroup").inputs
    assert group["name"] == "aws-waf-logs-carepath-staging" and group["retentionInDays"] == 30
    logging = plan.one("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration").inputs
    assert logging["logDestinationConfigs"] == [f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:aws-waf-logs-carepath-staging"]
    assert logging["redactedFields"] == [{"singleHeader": {"name": "authorization"}}, {"singleHeader": {"name": "cookie"}}]
    assert logging["resourceArn"] == plan.one(ACL).outputs["arn"]


def test_every_resource_is_the_components_child_and_in_the_providers_schema(plan, reference_schema):
    schema = reference_schema("pulumi-aws-schema-subset.json")
    resources = plan.children(plan.one("carepath:edge:WebFirewall"))
    assert {r.type for r in resources} == {ACL, "aws:wafv2/webAclAssociation:WebAclAssociation", "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration", "aws:cloudwatch/logGroup:LogGroup"}
    for resource in resources:
        assert unknown_inputs(resource, schema) == [], resource.urn

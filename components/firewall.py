"""Web firewall: AWS WAF (wafv2) in front of the ALB.

A regional web ACL that allows by default and runs three AWS managed rule groups, each
blocking what its rules match (`override_action: none` keeps their own actions): the core rule
set (OWASP-style request inspection), known bad inputs (exploit patterns such as Log4j lookups)
and Amazon's IP reputation list. Every rule and the ACL publish CloudWatch metrics and sampled
requests.

WAF logs every request it inspects to a CloudWatch log group (WAF requires its name to start
with `aws-waf-logs-`). Patient sessions travel in the `authorization` and `cookie` headers:
both are redacted before a log line is written. The group is encrypted at rest by CloudWatch
Logs' own keys, as the VPC's flow logs are (`components.network`).

`carepath:edge.waf.enabled` turns it off on demo only; staging and production refuse that
(`core.settings.rules`), and the policy pack fails their ALB without an association.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws

from components.network import log_group_arn

MANAGED_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet", "AWSManagedRulesAmazonIpReputationList")
REDACTED_HEADERS = ("authorization", "cookie")
LOG_GROUP_PREFIX = "aws-waf-logs-"


def _visibility(metric: str) -> aws.wafv2.WebAclVisibilityConfigArgsDict:
    return {"cloudwatch_metrics_enabled": True, "metric_name": metric, "sampled_requests_enabled": True}


def _managed_rule(group: str, priority: int) -> aws.wafv2.WebAclRuleArgsDict:
    """An AWS managed rule group whose rules act as AWS set them (`none`; `count` would only watch)."""
    return {
        "name": group,
        "priority": priority,
        "override_action": {"none": {}},
        "statement": {"managed_rule_group_statement": {"name": group, "vendor_name": "AWS"}},
        "visibility_config": _visibility(group),
    }


@dataclass(frozen=True)
class WebFirewallArgs:
    name: str  # the ACL's and the log group's name (after `aws-waf-logs-`): unique per account and Region
    load_balancer_arn: pulumi.Input[str]
    log_retention_days: int  # `carepath:edge.waf.logRetentionDays`


class WebFirewall(pulumi.ComponentResource):
    web_acl_arn: pulumi.Output[str]

    def __init__(self, name: str, args: WebFirewallArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:edge:WebFirewall", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        acl = aws.wafv2.WebAcl(
            name,
            name=args.name,
            scope="REGIONAL",
            default_action={"allow": {}},
            rules=[_managed_rule(group, priority) for priority, group in enumerate(MANAGED_RULE_GROUPS)],
            visibility_config=_visibility(args.name),
            opts=child,
        )
        aws.wafv2.WebAclAssociation(name, resource_arn=args.load_balancer_arn, web_acl_arn=acl.arn, opts=child)
        log_group = aws.cloudwatch.LogGroup(f"{name}-logs", name=f"{LOG_GROUP_PREFIX}{args.name}", retention_in_days=args.log_retention_days, opts=child)
        aws.wafv2.WebAclLoggingConfiguration(
            name,
            resource_arn=acl.arn,
            log_destination_configs=[log_group_arn(log_group.name, self)],
            redacted_fields=[{"single_header": {"name": header}} for header in REDACTED_HEADERS],
            opts=child,
        )
        self.web_acl_arn = acl.arn
        self.register_outputs({"webAclArn": self.web_acl_arn})

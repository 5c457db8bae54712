"""The CarePath policy pack: `pulumi preview --policy-pack policy` (and `up`) run every rule
of `rules.py` against the stack. It runs in its own virtualenv (requirements.txt here):
pulumi-policy pins an older protobuf than the program's Pulumi SDK."""

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from rules import RULES, Resource, Rule

LEVELS = {"mandatory": EnforcementLevel.MANDATORY, "advisory": EnforcementLevel.ADVISORY}


def _stack(urn: str) -> str:
    return urn.split(":")[2]  # urn:pulumi:<stack>::<project>::<type>::<name>


def _resource_policy(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        for message in rule.resource(args.resource_type, args.props, _stack(args.urn)):
            report(f"{message}. Remediation: {rule.remediation}")

    return ResourceValidationPolicy(name=rule.name, description=rule.description, enforcement_level=LEVELS[rule.enforcement], validate=validate)


def _stack_policy(rule: Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        resources = [Resource(r.resource_type, r.name, r.props) for r in args.resources]
        stack = _stack(args.resources[0].urn) if args.resources else ""
        for message in rule.stack(resources, stack):
            report(f"{message}. Remediation: {rule.remediation}")

    return StackValidationPolicy(name=rule.name, description=rule.description, enforcement_level=LEVELS[rule.enforcement], validate=validate)


PolicyPack(
    name="carepath-guardrails",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[_resource_policy(rule) if rule.resource else _stack_policy(rule) for rule in RULES],
)

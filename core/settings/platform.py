"""The shared platform's settings: `carepath:cluster`, `edge`, `mesh` and `monitoring`."""

from __future__ import annotations

from dataclasses import field
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator
from pydantic.dataclasses import dataclass

from core.settings.fields import (
    SECTION,
    CertificateArn,
    Cidr,
    ClusterName,
    Count,
    Fraction,
    InstanceType,
    KubernetesVersion,
    Port,
    Positive,
    Quantity,
    RoleArn,
    SubnetId,
    VpcId,
    between,
    check_istio_version,
    check_vpc_cidr,
    matching,
    problem,
)


@dataclass(frozen=True, config=SECTION)
class ClusterSettings:
    """`carepath:cluster`: the EKS cluster, its nodes and its network."""

    name: Optional[ClusterName] = None  # default carepath-<stack>
    kubernetes_version: KubernetesVersion = "1.34"
    instance_type: InstanceType = "t3.large"
    min_nodes: Count = 2
    desired_nodes: Count = 2
    max_nodes: Count = 4
    vpc_cidr: Annotated[str, AfterValidator(check_vpc_cidr)] = "10.0.0.0/16"
    nat_gateways: Literal["single", "onePerAz"] = "single"
    vpc_id: Optional[VpcId] = None
    public_subnet_ids: tuple[SubnetId, ...] = ()
    private_subnet_ids: tuple[SubnetId, ...] = ()
    endpoint_public_access: bool = True
    public_access_cidrs: tuple[Cidr, ...] = ("0.0.0.0/0",)
    admin_role_arns: tuple[RoleArn, ...] = ()
    deletion_protection: bool = False


# The retention periods CloudWatch Logs accepts (PutRetentionPolicy), in days.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)


def check_log_retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise problem(f"is not a retention CloudWatch Logs accepts ({', '.join(map(str, LOG_RETENTION_DAYS))})")
    return value


@dataclass(frozen=True, config=SECTION)
class AccessLogSettings:
    """`carepath:edge.accessLogs`: the ALB's access logs in S3 (`components.access_logs`)."""

    retention_days: Annotated[int, between(1, 3650)] = 90  # then S3 deletes them


@dataclass(frozen=True, config=SECTION)
class WafSettings:
    """`carepath:edge.waf`: AWS WAF on the ALB (`components.firewall`); staging and production refuse it off."""

    enabled: bool = True
    log_retention_days: Annotated[int, AfterValidator(check_log_retention)] = 90


@dataclass(frozen=True, config=SECTION)
class EdgeSettings:
    """`carepath:edge`: the public ALB."""

    certificate_arn: Optional[CertificateArn] = None
    # Plain HTTP on the public listener when no certificate is set: refused unless the stack opts
    # in by this name, and never on a patient-facing stack (`core.settings.rules.PATIENT_FACING_STACKS`).
    allow_plain_http: bool = False
    test_port: Port = 8443
    test_cidrs: tuple[Cidr, ...] = ()  # who may reach the test listener; required for blue-green
    allowed_cidrs: tuple[Cidr, ...] = ("0.0.0.0/0",)  # who may reach the public listeners
    # Well under the ALB's 300 s default: long enough for a streamed answer to finish.
    deregistration_delay_seconds: Annotated[int, between(0, 120)] = 30
    idle_timeout_seconds: Annotated[int, between(1, 4000)] = 120
    controller_chart_version: Annotated[str, matching(r"\d+\.\d+\.\d+", "a chart version such as 1.17.0")] = "1.17.0"
    access_logs: AccessLogSettings = field(default_factory=AccessLogSettings)
    # Off only to destroy the stack: set it false, `pulumi up`, then `pulumi destroy`.
    deletion_protection: bool = True
    waf: WafSettings = field(default_factory=WafSettings)


@dataclass(frozen=True, config=SECTION)
class MeshSettings:
    """`carepath:mesh`: Istio. `enabled` unset means: on when a service's router needs it."""

    enabled: Optional[bool] = None
    istio_version: Annotated[str, AfterValidator(check_istio_version)] = "1.30.5"


@dataclass(frozen=True, config=SECTION)
class ThresholdSettings:
    """Alert thresholds, per version of a service."""

    error_ratio: Fraction = 0.02  # 5xx share of requests
    latency_p95_seconds: Positive = 2.5  # an LLM answer is slow
    canary_error_margin: Fraction = 0.01  # canary above stable by
    restarts: Annotated[int, between(1, 100)] = 3  # container restarts within 15 minutes
    min_requests_per_second: Positive = 0.1  # below: too little data to judge


@dataclass(frozen=True, config=SECTION)
class ReceiverSettings:
    """An Alertmanager receiver; its URL or key is `carepath:secrets.<secret>`, set with --secret."""

    name: Annotated[str, matching(r"[a-z0-9][a-z0-9-]{0,62}", "a receiver name (lowercase letters, digits, '-')")]
    kind: Literal["slack", "webhook", "pagerduty"]
    secret: Annotated[str, matching(r"[A-Za-z][A-Za-z0-9]{0,62}", "a key of carepath:secrets")]


@dataclass(frozen=True, config=SECTION)
class MonitoringSettings:
    """`carepath:monitoring`: Prometheus, Alertmanager and Grafana (kube-prometheus-stack)."""

    enabled: bool = True
    chart_version: Annotated[str, matching(r"\d+\.\d+\.\d+", "a chart version such as 80.4.1")] = "80.4.1"
    retention: Annotated[str, matching(r"[1-9][0-9]*(h|d|w|y)", "a duration such as 15d")] = "15d"
    storage_size: Quantity = "50Gi"
    thresholds: ThresholdSettings = field(default_factory=ThresholdSettings)
    receivers: tuple[ReceiverSettings, ...] = ()


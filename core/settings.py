"""Stack settings: the `carepath:` config of one stack, typed, validated, frozen.

`parse(raw, stack)` turns the raw config (section name -> JSON value, as Pulumi
holds it) into `Settings`, or raises `SettingsError` listing every problem, each
naming its full key, the value and what is allowed. Nothing here imports Pulumi:
`program.load_settings()` reads the values from the Pulumi runtime.

Decisions, where the design leaves room:

- Types are strict (config is JSON): `replicas: "2"` is an error, not a 2, and a
  YAML `kubernetesVersion: 1.30` (a float, which would read as "1.3") must be
  quoted. `pulumi config set --path` stores numbers and booleans typed.
- Sections are validated independently, so a typo in one never hides an error in
  another; rules that span sections run on every section that parsed.
- `mesh.enabled` defaults to true exactly when the strategy is `canary` (the only
  strategy that needs it); set it explicitly to keep the mesh across a switch.
  `Settings.mesh_enabled` is the resolved value.
- `cluster.name` defaults to `carepath-<stack>` (`Settings.cluster_name`), so stacks sharing an account do
  not collide; `chatApi.repository` can name an existing repository instead
  (`chatApi.createRepository: false`).
"""

from __future__ import annotations

import difflib
import ipaddress
import itertools
import json
import re
import typing
from dataclasses import dataclass as plain_dataclass
from dataclasses import field, fields, is_dataclass
from typing import Annotated, Any, Literal, Mapping, Optional, Union

from pydantic import AfterValidator, ConfigDict, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticCustomError

from core.quantity import parse_quantity
from core.signals import CHAT_API, PLACEHOLDERS, unknown_placeholders

NAMESPACE = "carepath"
STRATEGIES = ("rolling", "canary", "blue-green")
COLOURS = ("blue", "green")

# Config keys are camelCase only (`by_name=False` in `parse`); Python code builds sections by field name.
_SECTION = ConfigDict(extra="forbid", strict=True, alias_generator=to_camel, validate_by_name=True, validate_by_alias=True)


class SettingsError(ValueError):
    """Every problem found in a stack's config; `problems` holds one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"invalid stack config ({count}):\n" + "\n".join(f"  - {p}" for p in problems))


def _problem(message: str) -> PydanticCustomError:
    return PydanticCustomError("carepath", "{message}", {"message": message})


# --- field-level rules --------------------------------------------------------


def _between(low: int, high: int):
    def check(value: int) -> int:
        if not low <= value <= high:
            raise _problem(f"is not in {low}..{high}")
        return value

    return AfterValidator(check)


def _matching(pattern: str, what: str):
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise _problem(f"is not {what}")
        return value

    return AfterValidator(check)


def _image_tag(value: str) -> str:
    if value == "":
        raise _problem("is empty: name a released image tag such as v1.4.0")
    if value.lower() == "latest":
        raise _problem("is a moving tag: pin a released image tag such as v1.4.0")
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", value):
        raise _problem(
            "is not a valid image tag (letters, digits, '_', '.', '-'; at most 128; "
            "not starting with '.' or '-')"
        )
    return value


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise _problem("is not a CIDR block such as 10.0.0.0/16") from None
    return value


def _vpc_cidr(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        raise _problem("is not an IPv4 CIDR block such as 10.0.0.0/16") from None
    if not 16 <= network.prefixlen <= 20:
        raise _problem("must be a /16 to /20 block: pods take their IPs from the private subnets")
    return value


def _percent_or_count(value: Union[int, str]) -> Union[int, str]:
    if isinstance(value, int) and value < 0:
        raise _problem("is not a count >= 0 or a percentage such as '25%'")
    if isinstance(value, str) and not re.fullmatch(r"(100|[1-9]?[0-9])%", value):
        raise _problem("is not a count >= 0 or a percentage such as '25%'")
    return value


def _fraction(value: float) -> float:
    if not 0 < value < 1:
        raise _problem("is not a fraction between 0 and 1 (0.02 is 2 %)")
    return value


def _positive(value: float) -> float:
    if value <= 0:
        raise _problem("must be more than 0")
    return value


def _istio_version(value: str) -> str:
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", value)
    if not match:
        raise _problem("is not an Istio release such as 1.30.5")
    if (int(match[1]), int(match[2])) < (1, 22):
        raise _problem("is older than 1.22, the first release serving networking.istio.io/v1")
    return value


def _quantity(value: str) -> str:
    try:
        amount = parse_quantity(value)
    except ValueError:
        raise _problem("is not a Kubernetes quantity such as 250m, 1, 512Mi or 1Gi") from None
    if amount <= 0:
        raise _problem("must be more than 0")
    return value


Percent = Annotated[int, _between(0, 100)]
Fraction = Annotated[float, AfterValidator(_fraction)]
Positive = Annotated[float, AfterValidator(_positive)]
Quantity = Annotated[str, AfterValidator(_quantity)]
Count = Annotated[int, _between(1, 1000)]
Port = Annotated[int, _between(1, 65535)]
ImageTag = Annotated[str, AfterValidator(_image_tag)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Surge = Annotated[Union[int, str], AfterValidator(_percent_or_count)]
KubernetesVersion = Annotated[str, _matching(r"1\.[0-9]{2}", "a Kubernetes minor version such as \"1.34\"")]
InstanceType = Annotated[str, _matching(r"[a-z][a-z0-9-]*\.[a-z0-9]+", "an EC2 instance type such as t3.large")]
ClusterName = Annotated[str, _matching(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}", "an EKS cluster name (letters, digits, '-', '_'; at most 100)")]
VpcId = Annotated[str, _matching(r"vpc-[0-9a-f]{8,17}", "a VPC id such as vpc-0123456789abcdef0")]
SubnetId = Annotated[str, _matching(r"subnet-[0-9a-f]{8,17}", "a subnet id such as subnet-0123456789abcdef0")]
RoleArn = Annotated[str, _matching(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+", "an IAM role ARN")]
CertificateArn = Annotated[
    str, _matching(r"arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[A-Za-z0-9-]+", "an ACM certificate ARN")
]
RepositoryName = Annotated[
    str,
    _matching(
        r"(?=.{2,256}$)(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*",
        "an ECR repository name (lowercase letters, digits, '.', '_', '-', '/')",
    ),
]
HealthPath = Annotated[str, _matching(r"/[A-Za-z0-9._~/-]*", "an absolute HTTP path such as /healthz")]
HeaderName = Annotated[str, _matching(r"[a-z0-9][a-z0-9-]*", "a lowercase HTTP header name such as x-version")]
HeaderValue = Annotated[str, _matching(r"[A-Za-z0-9._~-]{1,64}", "a plain header value such as canary")]


def _strictly_increasing_to_100(steps: tuple[int, ...]) -> tuple[int, ...]:
    if not steps:
        raise _problem("is empty: list the canary weights, ending at 100")
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise _problem("is not strictly increasing")
    if steps[-1] != 100:
        raise _problem("does not end at 100 (the last step sends all traffic to the canary)")
    if steps[0] < 1:
        raise _problem("starts at 0: the first step must send some traffic to the canary")
    return steps


Steps = Annotated[tuple[Percent, ...], AfterValidator(_strictly_increasing_to_100)]


# --- sections -------------------------------------------------------------------


@dataclass(frozen=True, config=_SECTION)
class ClusterSettings:
    """`carepath:cluster`: the EKS cluster, its nodes and its network."""

    name: Optional[ClusterName] = None  # default carepath-<stack>
    kubernetes_version: KubernetesVersion = "1.34"
    instance_type: InstanceType = "t3.large"
    min_nodes: Count = 2
    desired_nodes: Count = 2
    max_nodes: Count = 4
    vpc_cidr: Annotated[str, AfterValidator(_vpc_cidr)] = "10.0.0.0/16"
    nat_gateways: Literal["single", "onePerAz"] = "single"
    vpc_id: Optional[VpcId] = None
    public_subnet_ids: tuple[SubnetId, ...] = ()
    private_subnet_ids: tuple[SubnetId, ...] = ()
    endpoint_public_access: bool = True
    public_access_cidrs: tuple[Cidr, ...] = ("0.0.0.0/0",)
    admin_role_arns: tuple[RoleArn, ...] = ()
    deletion_protection: bool = False


@dataclass(frozen=True, config=_SECTION)
class RequestSettings:
    cpu: Quantity = "250m"
    memory: Quantity = "512Mi"


@dataclass(frozen=True, config=_SECTION)
class LimitSettings:
    cpu: Quantity = "1"
    memory: Quantity = "1Gi"


@dataclass(frozen=True, config=_SECTION)
class ResourceSettings:
    """Per pod; limits at least the requests. Each value can be set alone."""

    requests: RequestSettings = field(default_factory=RequestSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)


@dataclass(frozen=True, config=_SECTION)
class AutoscalingSettings:
    """A HorizontalPodAutoscaler on CPU; when enabled it owns the replica count."""

    enabled: bool = False
    min_replicas: Count = 2
    max_replicas: Count = 6
    target_cpu_percent: Annotated[int, _between(10, 100)] = 70


@dataclass(frozen=True, config=_SECTION)
class ChatApiSettings:
    """`carepath:chatApi`: the chat-api service and its ECR repository."""

    repository: RepositoryName = "carepath-chat-api"
    create_repository: bool = True
    tag: Optional[ImageTag] = None
    pin_digest: bool = False  # resolve the tag to its digest at deploy time
    replicas: Count = 2
    port: Annotated[int, _between(1024, 65535)] = 8080  # non-root pods cannot bind below 1024
    metrics_port: Annotated[int, _between(1024, 65535)] = 9090  # Prometheus metrics at /metrics
    health_path: HealthPath = "/healthz"
    startup_seconds: Annotated[int, _between(10, 3600)] = 300  # loading a model can take minutes
    shutdown_seconds: Annotated[int, _between(0, 300)] = 15  # after SIGTERM, to finish in-flight work
    resources: ResourceSettings = field(default_factory=ResourceSettings)
    autoscaling: AutoscalingSettings = field(default_factory=AutoscalingSettings)
    keep_releases: Count = 30


@dataclass(frozen=True, config=_SECTION)
class RollingSettings:
    max_surge: Surge = 1
    max_unavailable: Surge = 0
    min_ready_seconds: Annotated[int, _between(0, 600)] = 10
    progress_deadline_seconds: Annotated[int, _between(60, 3600)] = 600
    revision_history_limit: Annotated[int, _between(1, 100)] = 10


@dataclass(frozen=True, config=_SECTION)
class HeaderSettings:
    name: HeaderName = "x-version"
    value: HeaderValue = "canary"


def _mirror_path(value: str) -> str:
    if value in ("/", "/*", "*", ""):
        raise _problem("matches every path, write endpoints included: list the read-only paths to mirror")
    if not re.fullmatch(r"/[A-Za-z0-9._~/-]*(/\*)?", value):
        raise _problem("is not a path such as /v1/models (exact) or /v1/models/* (prefix); no other wildcards or patterns")
    return value


def _non_empty(value: tuple) -> tuple:
    if not value:
        raise _problem("is empty: list the read-only paths to mirror")
    return value


@dataclass(frozen=True, config=_SECTION)
class MirrorSettings:
    """Shadow traffic: a share of the requests on read-only paths is copied to the canary;
    its answers are discarded. Writes are never mirrored: list read-only paths only."""

    percent: Percent
    paths: Annotated[tuple[Annotated[str, AfterValidator(_mirror_path)], ...], AfterValidator(_non_empty)]


@dataclass(frozen=True, config=_SECTION)
class CanarySettings:
    tag: Optional[ImageTag] = None  # absent: no canary in flight
    weight: Percent = 0
    replicas: Optional[Count] = None  # unset: its share of the stable count, at least 1
    stickiness: bool = True  # a conversation stays on the track it was first sent to
    mirror: Optional[MirrorSettings] = None  # applies while a canary is in flight; opens the driver's shadow step
    steps: Steps = (1, 5, 10, 25, 50, 75, 100)  # steps too slow to fill at the current traffic are skipped
    header: HeaderSettings = field(default_factory=HeaderSettings)


@dataclass(frozen=True, config=_SECTION)
class ColourSettings:
    tag: Optional[ImageTag] = None


@dataclass(frozen=True, config=_SECTION)
class BlueGreenSettings:
    active: Literal["blue", "green"] = "blue"
    blue: ColourSettings = field(default_factory=ColourSettings)
    green: ColourSettings = field(default_factory=ColourSettings)
    isolation: Literal["shared", "namespace"] = "shared"  # namespace: carepath-<stack>-<colour>
    idle_replicas: Optional[Annotated[int, _between(0, 1000)]] = None  # unset: full size, for instant rollback
    green_weight: Optional[Percent] = None  # set: split production traffic blue/green at the ALB


@dataclass(frozen=True, config=_SECTION)
class SmokeCheck:
    """One HTTP check through the blue/green test listener before a switch."""

    path: HealthPath
    status: Annotated[int, _between(100, 599)] = 200


SignalName = Annotated[str, _matching(r"[a-z][a-z0-9-]{0,62}", "a signal name (lowercase letters, digits, '-')")]


def _template(value: str) -> str:
    unknown = unknown_placeholders(value)
    if unknown:
        raise _problem(f"uses {', '.join('$' + u for u in unknown)}; the placeholders are {', '.join('$' + p for p in sorted(PLACEHOLDERS))}")
    if "$by" not in value:
        raise _problem("must aggregate by the version label: `sum by ($by) (...)` (histograms: `by ($by, le)`)")
    if "$window" not in value and "[" not in value:
        raise _problem("reads no window: use `[$window]` (e.g. `increase(x_total{$app}[$window])`)")
    return value


Template = Annotated[str, AfterValidator(_template)]


@dataclass(frozen=True, config=_SECTION)
class SignalSettings:
    """One entry of `rollout.analysis.signals`: a change to a default signal (by name), or a new
    one (`core.signals`). Unset fields keep the default's value; a new signal names its kind,
    summary, unit and queries. `enabled: false` drops a default signal."""

    name: SignalName
    enabled: bool = True
    kind: Optional[Literal["ratio", "distribution", "gauge", "count"]] = None
    summary: Optional[Annotated[str, _matching(r".{1,200}", "one line of at most 200 characters")]] = None
    unit: Optional[Annotated[str, _matching(r"[a-z%]{1,16}", "a unit such as ratio, s, tokens, bytes")]] = None
    direction: Optional[Literal["up", "down", "either"]] = None
    judged: Optional[Literal["relative", "absolute", "both"]] = None
    critical: Optional[bool] = None
    numerator: Optional[Template] = None
    denominator: Optional[Template] = None
    query: Optional[Template] = None
    limit: Optional[Template] = None
    quantile: Optional[Fraction] = None
    good: Optional[Positive] = None
    bad: Optional[Positive] = None
    bound: Optional[Positive] = None
    weight: Optional[Positive] = None
    min_events: Optional[Positive] = None


@dataclass(frozen=True, config=_SECTION)
class AnalysisSettings:
    """The release driver's judge (see `release.judge`) and its pace."""

    interval_seconds: Annotated[int, _between(1, 600)] = 10
    alpha: Fraction = 0.05  # bound on rolling back a good candidate, for all gates together
    beta: Fraction = 0.01  # bound on promoting a candidate `bad` x worse on a critical gate
    min_step_requests: Annotated[int, _between(1, 1_000_000)] = 50  # canary requests before a step may advance
    step_budget_seconds: Annotated[int, _between(10, 3600)] = 60  # skip steps that fill slower at the current traffic
    max_inconclusive_seconds: Annotated[int, _between(10, 86400)] = 300  # no usable data this long: abort
    baseline_seconds: Annotated[int, _between(60, 86400)] = 1800  # the reference's history the judge starts from
    bake_seconds: Annotated[int, _between(0, 86400)] = 300  # least watch after a blue/green switch or a rolling update
    smoke_checks: tuple[SmokeCheck, ...] = (SmokeCheck(path="/healthz"),)
    signals: tuple[SignalSettings, ...] = ()


@dataclass(frozen=True, config=_SECTION)
class InFlightSettings:
    """`rollout.inFlight`: the release the driver is carrying out. It is written in the same config
    write as the release's first step and removed in the same write as its last, so the stack
    file (the ledger) says a release is under way even when nothing is running: `status` warns
    when no driver holds the lease, the deploy workflow holds back, and a rerun resumes."""

    id: Annotated[str, _matching(r"[0-9a-f]{6,32}", "a release id (hex)")]
    tag: ImageTag  # the candidate
    previous: Optional[ImageTag] = None  # the version it replaces (rolling: what a rollback restores)
    started: Annotated[str, _matching(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "a UTC time such as 2026-11-28T10:02:11Z")] = "1970-01-01T00:00:00Z"


@dataclass(frozen=True, config=_SECTION)
class RolloutSettings:
    """`carepath:rollout`: the release strategy and its parameters."""

    strategy: Literal["rolling", "canary", "blue-green"]
    rolling: RollingSettings = field(default_factory=RollingSettings)
    canary: CanarySettings = field(default_factory=CanarySettings)
    blue_green: BlueGreenSettings = field(default_factory=BlueGreenSettings)
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    in_flight: Optional[InFlightSettings] = None


@dataclass(frozen=True, config=_SECTION)
class EdgeSettings:
    """`carepath:edge`: the public ALB."""

    certificate_arn: Optional[CertificateArn] = None
    test_port: Port = 8443
    test_cidrs: tuple[Cidr, ...] = ()  # who may reach the test listener; required for blue-green
    # Public host names clients use besides the ALB's own (the mesh routes by Host header).
    hostnames: tuple[Annotated[str, _matching(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", "a DNS host name such as chat.example.org")], ...] = ()
    allowed_cidrs: tuple[Cidr, ...] = ("0.0.0.0/0",)  # who may reach the public listeners
    # Well under the ALB's 300 s default: long enough for a streamed answer to finish.
    deregistration_delay_seconds: Annotated[int, _between(0, 120)] = 30
    idle_timeout_seconds: Annotated[int, _between(1, 4000)] = 120
    controller_chart_version: Annotated[str, _matching(r"\d+\.\d+\.\d+", "a chart version such as 1.17.0")] = "1.17.0"


@dataclass(frozen=True, config=_SECTION)
class MeshSettings:
    """`carepath:mesh`: Istio. `enabled` unset means: on for the canary strategy."""

    enabled: Optional[bool] = None
    istio_version: Annotated[str, AfterValidator(_istio_version)] = "1.30.5"


@dataclass(frozen=True, config=_SECTION)
class ThresholdSettings:
    """Alert thresholds, per version of chat-api."""

    error_ratio: Fraction = 0.02  # 5xx share of requests
    latency_p95_seconds: Positive = 2.5  # an LLM answer is slow
    canary_error_margin: Fraction = 0.01  # canary above stable by
    restarts: Annotated[int, _between(1, 100)] = 3  # container restarts within 15 minutes
    min_requests_per_second: Positive = 0.1  # below: too little data to judge


@dataclass(frozen=True, config=_SECTION)
class ReceiverSettings:
    """An Alertmanager receiver; its URL or key is `carepath:secrets.<secret>`, set with --secret."""

    name: Annotated[str, _matching(r"[a-z0-9][a-z0-9-]{0,62}", "a receiver name (lowercase letters, digits, '-')")]
    kind: Literal["slack", "webhook", "pagerduty"]
    secret: Annotated[str, _matching(r"[A-Za-z][A-Za-z0-9]{0,62}", "a key of carepath:secrets")]


@dataclass(frozen=True, config=_SECTION)
class MonitoringSettings:
    """`carepath:monitoring`: Prometheus, Alertmanager and Grafana (kube-prometheus-stack)."""

    enabled: bool = True
    chart_version: Annotated[str, _matching(r"\d+\.\d+\.\d+", "a chart version such as 80.4.1")] = "80.4.1"
    retention: Annotated[str, _matching(r"[1-9][0-9]*(h|d|w|y)", "a duration such as 15d")] = "15d"
    storage_size: Quantity = "50Gi"
    thresholds: ThresholdSettings = field(default_factory=ThresholdSettings)
    receivers: tuple[ReceiverSettings, ...] = ()


SECTIONS: dict[str, type] = {
    "cluster": ClusterSettings,
    "chatApi": ChatApiSettings,
    "rollout": RolloutSettings,
    "edge": EdgeSettings,
    "mesh": MeshSettings,
    "monitoring": MonitoringSettings,
    "secrets": dict[str, str],  # values only through `pulumi config set --secret --path secrets.<name>`
}


@plain_dataclass(frozen=True)
class Settings:
    """One stack's settings, after every rule passed and every default resolved."""

    stack: str
    cluster: ClusterSettings
    chat_api: ChatApiSettings
    rollout: RolloutSettings
    edge: EdgeSettings
    mesh: MeshSettings
    monitoring: MonitoringSettings
    secrets: dict[str, str] = field(default_factory=dict, repr=False)

    def to_config(self) -> dict[str, Any]:
        """The settings back as `carepath:` config sections (camelCase, JSON values)."""
        sections = {key: getattr(self, _FIELD_OF[key]) for key in SECTIONS}
        return {key: _ADAPTERS[key].dump_python(value, mode="json", by_alias=True) for key, value in sections.items()}

    @property
    def namespace(self) -> str:
        return f"carepath-{self.stack}"

    @property
    def cluster_name(self) -> str:
        return self.cluster.name or f"carepath-{self.stack}"

    @property
    def mesh_enabled(self) -> bool:
        """`mesh.enabled`, or, when unset, whether the strategy needs the mesh."""
        return self.mesh.enabled if self.mesh.enabled is not None else self.rollout.strategy == "canary"


# --- parsing ------------------------------------------------------------------

_ADAPTERS = {key: TypeAdapter(cls) for key, cls in SECTIONS.items()}
_FIELD_OF = {"cluster": "cluster", "chatApi": "chat_api", "rollout": "rollout", "edge": "edge", "mesh": "mesh", "monitoring": "monitoring", "secrets": "secrets"}
_TYPE_NAMES = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "dataclass_type": "a mapping",
    "model_type": "a mapping",
}


def _describe(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else repr(value)


def _known_keys(section_cls: type, path: tuple) -> list[str]:
    """The camelCase keys allowed in the mapping at `path` inside a section."""
    cls: Any = section_cls
    for part in path:
        if isinstance(part, int):  # an entry of a list: its items' type is already `cls`
            continue
        hints = {to_camel(name): hint for name, hint in typing.get_type_hints(cls, include_extras=False).items()}
        cls = _mapping_type(hints.get(part))
        if cls is None:
            return []
    return [to_camel(f.name) for f in fields(cls)]


def _mapping_type(hint: Any) -> Any:
    """The dataclass a type hint holds a mapping of, through Optional[...] and tuple[..., ...]."""
    if is_dataclass(hint):
        return hint
    for argument in typing.get_args(hint):
        found = _mapping_type(argument)
        if found is not None:
            return found
    return None


def _format(section: str, error: Mapping[str, Any]) -> str:
    loc = tuple(str(p) if not isinstance(p, int) else f"[{p}]" for p in error["loc"])
    path = ".".join((section, *loc)).replace(".[", "[")
    key = f"{NAMESPACE}:{path}"
    kind, value = error["type"], error.get("input")
    if section == "secrets":
        value = "[secret]"  # never echo a secret
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        allowed = _known_keys(SECTIONS[section], error["loc"][:-1])
        hint = difflib.get_close_matches(str(error["loc"][-1]), allowed, n=1)
        did_you_mean = f"; did you mean '{hint[0]}'?" if hint else ""
        return f"{key}: unknown key{did_you_mean} (allowed: {', '.join(allowed)})"
    if kind == "missing":
        return f"{key} is required" + (": one of " + ", ".join(STRATEGIES) if path == "rollout.strategy" else "")
    if kind == "literal_error":
        allowed = error["ctx"]["expected"].replace("'", "").replace(" or ", ", ")
        return f"{key}: {_describe(value)} is not one of {allowed}"
    if kind in _TYPE_NAMES:
        return f"{key}: {_describe(value)} is not {_TYPE_NAMES[kind]}"
    if kind == "carepath":
        return f"{key}: {_describe(value)} {error['msg']}"
    return f"{key}: {_describe(value)}: {error['msg']}"


def _cross_section_problems(parsed: dict[str, Any]) -> list[str]:
    """Rules that span keys; each runs when the sections it reads parsed."""
    problems: list[str] = []
    cluster: Optional[ClusterSettings] = parsed.get("cluster")
    if cluster is not None:
        if not cluster.min_nodes <= cluster.desired_nodes <= cluster.max_nodes:
            problems.append(
                f"{NAMESPACE}:cluster: node sizes must satisfy minNodes <= desiredNodes <= maxNodes, "
                f"got minNodes={cluster.min_nodes}, desiredNodes={cluster.desired_nodes}, maxNodes={cluster.max_nodes}"
            )
        if cluster.vpc_id is None and (cluster.public_subnet_ids or cluster.private_subnet_ids):
            problems.append(f"{NAMESPACE}:cluster.vpcId is required when subnet ids are given (they must belong to it)")
        if cluster.vpc_id is not None:
            for key, ids in (("publicSubnetIds", cluster.public_subnet_ids), ("privateSubnetIds", cluster.private_subnet_ids)):
                if len(ids) < 2:
                    problems.append(
                        f"{NAMESPACE}:cluster.{key}: {json.dumps(list(ids))} must list at least 2 subnets "
                        "in different availability zones when cluster.vpcId reuses a VPC"
                    )

    chat_api: Optional[ChatApiSettings] = parsed.get("chatApi")
    if chat_api is not None:
        problems += _chat_api_problems(chat_api)
        if chat_api.metrics_port == chat_api.port:
            problems.append(f"{NAMESPACE}:chatApi.metricsPort: {chat_api.metrics_port} is chatApi.port; metrics need a port of their own")
    edge: Optional[EdgeSettings] = parsed.get("edge")
    if edge is not None and edge.test_port in (80, 443):
        problems.append(f"{NAMESPACE}:edge.testPort: {edge.test_port} is taken by the production listener; use another port")
    rollout: Optional[RolloutSettings] = parsed.get("rollout")
    if rollout is not None:
        problems += _rollout_problems(rollout)
    if rollout is not None and chat_api is not None:
        idle = rollout.blue_green.idle_replicas
        if idle is not None and chat_api.autoscaling.enabled:
            problems.append(
                f"{NAMESPACE}:rollout.blueGreen.idleReplicas: {idle} cannot apply while chatApi.autoscaling is enabled "
                "(the autoscaler owns the replica count)"
            )
        if idle is not None and idle > chat_api.replicas:
            problems.append(
                f"{NAMESPACE}:rollout.blueGreen.idleReplicas: {idle} is above chatApi.replicas ({chat_api.replicas})"
            )
        if rollout.strategy in ("rolling", "canary") and chat_api.tag is None:
            problems.append(f"{NAMESPACE}:chatApi.tag is required: the {rollout.strategy} strategy deploys it as the stable version")
        if rollout.in_flight is not None and rollout.in_flight.tag not in _candidate_tags(rollout, chat_api):
            problems.append(
                f"{NAMESPACE}:rollout.inFlight.tag: {rollout.in_flight.tag!r} is not deployed by the {rollout.strategy} strategy's "
                f"config ({', '.join(sorted(filter(None, _candidate_tags(rollout, chat_api)))) or 'no candidate'}); "
                "the release record names the version its tracks run"
            )
        if rollout.strategy == "canary" and rollout.canary.tag is not None and rollout.canary.tag == chat_api.tag:
            problems.append(
                f"{NAMESPACE}:rollout.canary.tag: {rollout.canary.tag!r} is already the stable chatApi.tag; "
                "a canary must be a different version (promotion sets chatApi.tag and removes canary.tag)"
            )
    if rollout is not None and edge is not None and rollout.strategy == "blue-green" and not edge.test_cidrs:
        problems.append(
            f"{NAMESPACE}:edge.testCidrs is required for blue-green: the CIDRs (testers, CI) that may reach "
            "the test listener on edge.testPort"
        )
    monitoring: Optional[MonitoringSettings] = parsed.get("monitoring")
    secrets: Optional[dict[str, str]] = parsed.get("secrets")
    if monitoring is not None and secrets is not None:
        for index, receiver in enumerate(monitoring.receivers):
            if receiver.secret not in secrets:
                problems.append(
                    f"{NAMESPACE}:monitoring.receivers[{index}].secret: {receiver.secret!r} is not set; "
                    f"`pulumi config set --secret --path secrets.{receiver.secret} <url or key>`"
                )
    mesh: Optional[MeshSettings] = parsed.get("mesh")
    if rollout is not None and mesh is not None and rollout.strategy == "blue-green" and mesh.enabled:
        problems.append(
            f"{NAMESPACE}:mesh.enabled: true is not supported with rollout.strategy 'blue-green': its target groups "
            "reach the colours' pods directly, which the mesh's STRICT mTLS would refuse"
        )
    if rollout is not None and mesh is not None and rollout.strategy == "canary" and mesh.enabled is False:
        problems.append(
            f"{NAMESPACE}:mesh.enabled: false is not allowed with rollout.strategy 'canary': "
            "the canary's traffic split is an Istio VirtualService"
        )
    return problems


def _chat_api_problems(chat_api: ChatApiSettings) -> list[str]:
    problems: list[str] = []
    requests, limits = chat_api.resources.requests, chat_api.resources.limits
    for resource in ("cpu", "memory"):
        request, limit = getattr(requests, resource), getattr(limits, resource)
        if parse_quantity(limit) < parse_quantity(request):
            problems.append(
                f"{NAMESPACE}:chatApi.resources.limits.{resource}: {limit!r} is below the request {request!r}"
            )
    scaling = chat_api.autoscaling
    if scaling.min_replicas > scaling.max_replicas:
        problems.append(
            f"{NAMESPACE}:chatApi.autoscaling: minReplicas {scaling.min_replicas} is above maxReplicas {scaling.max_replicas}"
        )
    return problems


def _rollout_problems(rollout: RolloutSettings) -> list[str]:
    problems: list[str] = []
    rolling = rollout.rolling
    if rolling.max_surge in (0, "0%") and rolling.max_unavailable in (0, "0%"):
        problems.append(
            f"{NAMESPACE}:rollout.rolling: maxSurge and maxUnavailable are both 0, so a rollout could never progress"
        )
    canary = rollout.canary
    if canary.weight > 0 and canary.tag is None:
        problems.append(
            f"{NAMESPACE}:rollout.canary.weight: {canary.weight} needs rollout.canary.tag "
            "(no canary in flight means no tag and weight 0)"
        )
    problems += _signal_problems(rollout.analysis.signals)
    blue_green = rollout.blue_green
    if blue_green.green_weight is not None and blue_green.idle_replicas is not None:
        problems.append(
            f"{NAMESPACE}:rollout.blueGreen.greenWeight: {blue_green.green_weight} splits production traffic over both "
            "colours, so both must run at full size: unset rollout.blueGreen.idleReplicas"
        )
    if rollout.strategy == "blue-green":
        for colour in COLOURS:
            if getattr(rollout.blue_green, colour).tag is None:
                problems.append(
                    f"{NAMESPACE}:rollout.blueGreen.{colour}.tag is required: the blue-green strategy runs both colours"
                )
    return problems


def _candidate_tags(rollout: RolloutSettings, chat_api: ChatApiSettings) -> set[Optional[str]]:
    """The tags a release in flight can be running, by strategy."""
    if rollout.strategy == "canary":
        return {rollout.canary.tag}
    if rollout.strategy == "blue-green":
        return {rollout.blue_green.blue.tag, rollout.blue_green.green.tag}
    return {chat_api.tag}


_NEW_SIGNAL_NEEDS = {"ratio": ("numerator", "denominator"), "distribution": ("query",), "gauge": ("query",), "count": ("query", "bound")}


def _signal_problems(entries: tuple[SignalSettings, ...]) -> list[str]:
    """What a signal entry cannot mean, checked against the default catalogue it changes."""
    problems: list[str] = []
    defaults = {s.name: s for s in CHAT_API}
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        key = f"{NAMESPACE}:rollout.analysis.signals[{index}]"
        if entry.name in seen:
            problems.append(f"{key}.name: {entry.name!r} is listed twice; merge the two entries")
        seen.add(entry.name)
        if not entry.enabled:
            if entry.name not in defaults:
                problems.append(f"{key}.enabled: false, but {entry.name!r} is not a default signal (defaults: {', '.join(defaults)})")
            continue
        set_fields = {f.name: getattr(entry, f.name) for f in fields(entry) if getattr(entry, f.name) is not None}
        base = defaults.get(entry.name)
        kind = entry.kind or (base.kind if base else None)
        if base is None:
            hint = difflib.get_close_matches(entry.name, defaults, n=1)
            missing = [camel for camel in ("kind", "summary", "unit") if camel not in set_fields]
            missing += [to_camel(q) for q in _NEW_SIGNAL_NEEDS.get(kind or "", ()) if q not in set_fields]
            if missing:
                also = f" (or did you mean the default {hint[0]!r}?)" if hint else ""
                problems.append(f"{key}: a new signal {entry.name!r} needs {', '.join(missing)}{also}")
        elif entry.kind is not None and entry.kind != base.kind:
            problems.append(f"{key}.kind: {entry.kind!r} changes the kind of the default {entry.name!r} ({base.kind}); add a new signal instead")
        merged_good = entry.good if entry.good is not None else (base.good if base else 1.0)
        merged_bad = entry.bad if entry.bad is not None else (base.bad if base else 2.0)
        if merged_good >= merged_bad:
            problems.append(f"{key}: good {merged_good:g} must be below bad {merged_bad:g} (both are factors on the reference's share)")
        judged = entry.judged or (base.judged if base else "relative")
        bound = entry.bound if entry.bound is not None else (base.bound if base else None)
        if judged in ("absolute", "both") and bound is None:
            problems.append(f"{key}.bound is required: the signal is judged {judged!r}")
        if judged != "relative" and kind == "distribution":
            problems.append(f"{key}.judged: {judged!r} is not available for distributions; they are judged against the reference")
        if kind == "count" and judged != "absolute":
            problems.append(f"{key}.judged: counts are judged 'absolute' (against bound), not {judged!r}")
        if kind == "ratio" and bound is not None and bound >= 1:
            problems.append(f"{key}.bound: {bound:g} is not a share between 0 and 1")
    return problems


def parse(raw: Mapping[str, Any], stack: str, secret_keys: frozenset[str] = frozenset()) -> Settings:
    """Validate a stack's `carepath:` config; `raw` maps section names to decoded JSON values,
    `secret_keys` names the sections stored encrypted."""
    problems: list[str] = []
    for key in sorted(set(raw) - set(SECTIONS)):
        hint = difflib.get_close_matches(key, SECTIONS, n=1)
        did_you_mean = f"; did you mean '{NAMESPACE}:{hint[0]}'?" if hint else ""
        problems.append(f"{NAMESPACE}:{key}: unknown key{did_you_mean} (allowed: {', '.join(SECTIONS)})")

    parsed: dict[str, Any] = {}
    for key, adapter in _ADAPTERS.items():
        value = raw.get(key)
        if value is None:
            value = {}
        try:
            parsed[key] = adapter.validate_json(json.dumps(value), by_alias=True, by_name=False)
        except ValidationError as error:
            problems += [_format(key, e) for e in error.errors()]
    problems += _cross_section_problems(parsed)
    if raw.get("secrets") and "secrets" not in secret_keys:
        problems.append(
            f"{NAMESPACE}:secrets: set in plain text; use `pulumi config set --secret --path secrets.<name> <value>`"
        )
    if problems:
        raise SettingsError(problems)

    return Settings(
        stack=stack,
        cluster=parsed["cluster"],
        chat_api=parsed["chatApi"],
        rollout=parsed["rollout"],
        edge=parsed["edge"],
        mesh=parsed["mesh"],
        monitoring=parsed["monitoring"],
        secrets=parsed["secrets"],
    )

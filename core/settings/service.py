"""One service's settings: `carepath:services.<name>`, its image, pods, release and route."""

from __future__ import annotations

import typing
from dataclasses import field
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, ValidationInfo, field_validator
from pydantic.dataclasses import dataclass

from core.images import Severity
from core.settings.fields import (
    SECTION,
    Cidr,
    Command,
    Count,
    Fraction,
    HeaderName,
    HeaderValue,
    HealthPath,
    Hostname,
    ImageTag,
    MirrorPaths,
    OperatorName,
    PathPrefix,
    Percent,
    Port,
    Positive,
    Quantity,
    RepositoryName,
    ServiceName,
    SignalName,
    StackName,
    Steps,
    Surge,
    Template,
    TimeZone,
    WallTimeText,
    WindowName,
    between,
    matching,
    problem,
    wall_time,
)

Strategy = Literal["rolling", "canary", "blue-green"]
Colour = Literal["blue", "green"]
# How the shared edge tells a service's requests apart, most specific first (`core.edge` ranks
# its listener rules so); `default` takes what no other service's rule matches.
EntryKind = Literal["host-and-path", "host", "path", "default"]
STRATEGIES: tuple[str, ...] = typing.get_args(Strategy)
COLOURS: tuple[str, ...] = typing.get_args(Colour)
# Which routers exist is the router factory's to say (`components.routers`); the settings check
# a name against the traits it passes to `parse`.
RouterName = Annotated[str, matching(r"[a-z][a-z0-9-]{0,30}", "a router name such as istio, alb or gateway-api")]


@dataclass(frozen=True, config=SECTION)
class RequestSettings:
    cpu: Quantity = "250m"
    memory: Quantity = "512Mi"


@dataclass(frozen=True, config=SECTION)
class LimitSettings:
    cpu: Quantity = "1"
    memory: Quantity = "1Gi"


@dataclass(frozen=True, config=SECTION)
class ResourceSettings:
    """Per pod; limits at least the requests. Each value can be set alone."""

    requests: RequestSettings = field(default_factory=RequestSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)


@dataclass(frozen=True, config=SECTION)
class AutoscalingSettings:
    """A HorizontalPodAutoscaler on CPU; when enabled it owns the replica count."""

    enabled: bool = False
    min_replicas: Count = 2
    max_replicas: Count = 6
    target_cpu_percent: Annotated[int, between(10, 100)] = 70


@dataclass(frozen=True, config=SECTION)
class RollingSettings:
    max_surge: Surge = 1
    max_unavailable: Surge = 0
    min_ready_seconds: Annotated[int, between(0, 600)] = 10
    progress_deadline_seconds: Annotated[int, between(60, 3600)] = 600
    revision_history_limit: Annotated[int, between(1, 100)] = 10


@dataclass(frozen=True, config=SECTION)
class HeaderSettings:
    name: HeaderName = "x-version"
    value: HeaderValue = "canary"


@dataclass(frozen=True, config=SECTION)
class MirrorSettings:
    """Shadow traffic: a share of the requests on read-only paths is copied to the canary;
    its answers are discarded. Only reads are copied: the mirror routes match GET and HEAD on
    the listed paths, so a write on them still reaches its track but is never copied; `/x/*`
    covers `/x` and every path under it."""

    percent: Percent
    # On the gateway-api router each path takes matches in the HTTPRoute, which holds at most 128:
    # at most 12 paths with stickiness (10 matches a path, 3 more), 31 without (4 a path, 1 more).
    paths: MirrorPaths


@dataclass(frozen=True, config=SECTION)
class CanarySettings:
    tag: Optional[ImageTag] = None  # absent: no canary in flight
    weight: Percent = 0
    replicas: Optional[Count] = None  # unset: its share of the stable count, at least 1
    stickiness: bool = True  # a conversation stays on the track it was first sent to
    mirror: Optional[MirrorSettings] = None  # applies while a canary is in flight; opens the driver's shadow step
    steps: Steps = (1, 5, 10, 25, 50, 75, 100)  # steps too slow to fill at the current traffic are skipped
    header: HeaderSettings = field(default_factory=HeaderSettings)


@dataclass(frozen=True, config=SECTION)
class ColourSettings:
    tag: Optional[ImageTag] = None


@dataclass(frozen=True, config=SECTION)
class BlueGreenSettings:
    active: Colour = "blue"
    blue: ColourSettings = field(default_factory=ColourSettings)
    green: ColourSettings = field(default_factory=ColourSettings)
    isolation: Literal["shared", "namespace"] = "shared"  # namespace: carepath-<stack>-<colour>
    idle_replicas: Optional[Annotated[int, between(0, 1000)]] = None  # unset: full size, for instant rollback
    green_weight: Optional[Percent] = None  # set: split production traffic blue/green at the ALB


@dataclass(frozen=True, config=SECTION)
class SmokeCheck:
    """One HTTP check through the blue/green test listener before a switch."""

    path: HealthPath
    status: Annotated[int, between(100, 599)] = 200


@dataclass(frozen=True, config=SECTION)
class SignalSettings:
    """One entry of `rollout.analysis.signals`: a change to a default signal (by name), or a new
    one (`core.signals`). Unset fields keep the default's value; a new signal names its kind,
    summary, unit and queries. `enabled: false` drops a default signal."""

    name: SignalName
    enabled: bool = True
    kind: Optional[Literal["ratio", "distribution", "gauge", "count"]] = None
    summary: Optional[Annotated[str, matching(r".{1,200}", "one line of at most 200 characters")]] = None
    unit: Optional[Annotated[str, matching(r"[a-z%]{1,16}", "a unit such as ratio, s, tokens, bytes")]] = None
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


@dataclass(frozen=True, config=SECTION)
class AnalysisSettings:
    """The release driver's judge (see `release.judge`) and its pace."""

    interval_seconds: Annotated[int, between(1, 600)] = 10
    alpha: Fraction = 0.05  # bound on rolling back a good candidate, for all gates together
    beta: Fraction = 0.01  # bound on promoting a candidate `bad` x worse on a critical gate
    min_step_requests: Annotated[int, between(1, 1_000_000)] = 50  # canary requests before a step may advance
    step_budget_seconds: Annotated[int, between(10, 3600)] = 60  # skip steps that fill slower at the current traffic
    max_inconclusive_seconds: Annotated[int, between(10, 86400)] = 300  # no usable data this long: abort
    baseline_seconds: Annotated[int, between(60, 86400)] = 1800  # the reference's history the judge starts from
    bake_seconds: Annotated[int, between(0, 86400)] = 300  # least watch after a blue/green switch or a rolling update
    smoke_checks: tuple[SmokeCheck, ...] = (SmokeCheck(path="/healthz"),)
    signals: tuple[SignalSettings, ...] = ()


@dataclass(frozen=True, config=SECTION)
class InFlightSettings:
    """`rollout.inFlight`: the release the driver is carrying out. It is written in the same config
    write as the release's first step and removed in the same write as its last, so the stack
    file (the ledger) says a release is under way even when nothing is running: `status` warns
    when no driver holds the lease, the deploy workflow holds back, and a rerun resumes."""

    id: Annotated[str, matching(r"[0-9a-f]{6,32}", "a release id (hex)")]
    tag: ImageTag  # the candidate
    previous: Optional[ImageTag] = None  # the version it replaces (rolling: what a rollback restores)
    started: Annotated[str, matching(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "a UTC time such as 2026-11-28T10:02:11Z")] = "1970-01-01T00:00:00Z"


@dataclass(frozen=True, config=SECTION)
class RolloutSettings:
    """`services.<name>.rollout`: the service's release strategy and its parameters."""

    strategy: Strategy
    rolling: RollingSettings = field(default_factory=RollingSettings)
    canary: CanarySettings = field(default_factory=CanarySettings)
    blue_green: BlueGreenSettings = field(default_factory=BlueGreenSettings)
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    in_flight: Optional[InFlightSettings] = None


@dataclass(frozen=True, config=SECTION)
class ImageScanSettings:
    """`imageScan`: the release driver starts a release only on an image whose ECR scan has
    finished with no finding at or above `blockAt` (`core.images`)."""

    block_at: Severity = "CRITICAL"


def _listed(value: tuple) -> tuple:
    if not value:
        raise problem("is empty: list at least one")
    return value


@dataclass(frozen=True, config=SECTION)
class EgressSettings:
    """One entry of `egress`: a destination outside the cluster the service's pods may reach
    (an LLM provider's HTTPS API), as IPv4 blocks and TCP ports; everything else stays denied."""

    cidrs: Annotated[tuple[Cidr, ...], AfterValidator(_listed)]
    ports: Annotated[tuple[Port, ...], AfterValidator(_listed)]


@dataclass(frozen=True, config=SECTION)
class FreezeSettings:
    """One freeze window: nothing enters the stage while it is open. The form of `start` decides its
    kind: daily "HH:MM", weekly "ddd HH:MM" (mon..sun) or dated "YYYY-MM-DD HH:MM"; `end` has the
    same form. Daily and weekly windows wrap (end before start: to the next day or week); end equal
    to start is refused, as a window that never closes. Times are wall-clock times in `timeZone`
    (`core.freeze` says how a time the clock skips or shows twice is read)."""

    name: WindowName  # said in messages ("year-end")
    start: WallTimeText
    end: WallTimeText
    time_zone: TimeZone

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: str, info: ValidationInfo) -> str:
        if "start" not in info.data:  # start has its own problem
            return end
        first, last = wall_time(info.data["start"]), wall_time(end)
        if first.kind != last.kind:
            raise problem(f"is a {last.kind} time but start is {first.kind}: both bounds take one form")
        if first.kind == "dated" and (last.day, last.minutes) <= (first.day, first.minutes):
            raise problem(f"is not after start {info.data['start']!r}")
        if first.kind != "dated" and last.minutes == first.minutes:
            raise problem(f"equals start: the {first.kind} window would never close")
        return end


@dataclass(frozen=True, config=SECTION)
class ApprovalSettings:
    required: bool = False
    approvers: tuple[OperatorName, ...] = ()  # empty: anyone but the operator who promotes


@dataclass(frozen=True, config=SECTION)
class VerifySettings:
    """The suite run against the candidate before it takes patients' traffic (argv, no shell)."""

    command: Command
    timeout_seconds: Annotated[int, between(10, 7200)] = 900


@dataclass(frozen=True, config=SECTION)
class PromotionSettings:
    """`services.<name>.promotion`: this stack as a stage of the service's promotion path
    (`core.promotion`), which the stages' `after` links together, first to last."""

    after: Optional[StackName] = None  # the stage this one takes tags from; None: the first stage
    soak_seconds: Annotated[int, between(0, 2_592_000)] = 0  # healthy time here after promotion before a tag may leave
    watch_seconds: Annotated[int, between(0, 604_800)] = 600  # after promotion: a regression against the replaced version rolls back
    approval: ApprovalSettings = field(default_factory=ApprovalSettings)
    freeze: tuple[FreezeSettings, ...] = ()
    verify: Optional[VerifySettings] = None


@dataclass(frozen=True, config=SECTION)
class ServiceSettings:
    """`carepath:services.<name>`: one service, its ECR repository, its release and its route.

    `repository` defaults to `carepath-<name>`; `router` to the strategy's (see
    `core.routers.default_router`); `hosts` and `pathPrefix` say which requests of the shared
    edge are this service's (neither: every request no other service takes)."""

    rollout: RolloutSettings
    repository: Optional[RepositoryName] = None
    create_repository: bool = True
    tag: Optional[ImageTag] = None
    pin_digest: bool = False  # resolve the tag to its digest at deploy time
    replicas: Count = 2
    port: Annotated[int, between(1024, 65535)] = 8080  # non-root pods cannot bind below 1024
    metrics_port: Annotated[int, between(1024, 65535)] = 9090  # Prometheus metrics at /metrics
    health_path: HealthPath = "/healthz"
    startup_seconds: Annotated[int, between(10, 3600)] = 300  # loading a model can take minutes
    shutdown_seconds: Annotated[int, between(0, 300)] = 15  # after SIGTERM, to finish in-flight work
    resources: ResourceSettings = field(default_factory=ResourceSettings)
    autoscaling: AutoscalingSettings = field(default_factory=AutoscalingSettings)
    keep_releases: Count = 30
    router: Optional[RouterName] = None
    hosts: tuple[Hostname, ...] = ()
    path_prefix: Optional[PathPrefix] = None
    # Its pods' only connections besides the edge, Prometheus, DNS and istiod (NetworkPolicy):
    # `calls` names the stack's services it calls (on their port), `egress` what it reaches outside the cluster.
    calls: tuple[ServiceName, ...] = ()
    egress: tuple[EgressSettings, ...] = ()
    image_scan: ImageScanSettings = field(default_factory=ImageScanSettings)
    promotion: Optional[PromotionSettings] = None  # absent: in no promotion path on this stack

    @property
    def entry_kind(self) -> EntryKind:
        if self.hosts:
            return "host-and-path" if self.path_prefix else "host"
        return "path" if self.path_prefix else "default"


def repository_name(name: str, service: ServiceSettings) -> str:
    """The service's ECR repository: its `repository`, or `carepath-<name>`."""
    return service.repository or f"carepath-{name}"

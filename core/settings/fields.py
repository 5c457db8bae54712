"""Field-level rules of the stack config: one annotated type per kind of value, each with the
message a bad value gets. Sections (`core.settings.service`, `core.settings.platform`) are
built from these."""

from __future__ import annotations

import datetime
import functools
import ipaddress
import itertools
import re
import zoneinfo
from dataclasses import dataclass
from typing import Annotated, Literal, Optional, Union

from pydantic import AfterValidator, ConfigDict
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from core.quantity import parse_quantity
from core.signals import PLACEHOLDERS, unknown_placeholders

NAMESPACE = "carepath"

# Config keys are camelCase only (`by_name=False` in `parse`); Python code builds sections by field name.
# No NaN or Infinity in any decimal (YAML `.inf`): a threshold of Infinity renders an alert that never fires.
SECTION = ConfigDict(
    extra="forbid", strict=True, alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, allow_inf_nan=False
)


def problem(message: str) -> PydanticCustomError:
    return PydanticCustomError("carepath", "{message}", {"message": message})


# --- field-level rules --------------------------------------------------------


def between(low: int, high: int):
    def check(value: int) -> int:
        if not low <= value <= high:
            raise problem(f"is not in {low}..{high}")
        return value

    return AfterValidator(check)


def matching(pattern: str, what: str):
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise problem(f"is not {what}")
        return value

    return AfterValidator(check)


def _image_tag(value: str) -> str:
    if value == "":
        raise problem("is empty: name a released image tag such as v1.4.0")
    if value.lower() == "latest":
        raise problem("is a moving tag: pin a released image tag such as v1.4.0")
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", value):
        raise problem(
            "is not a valid image tag (letters, digits, '_', '.', '-'; at most 128; "
            "not starting with '.' or '-')"
        )
    return value


def _cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise problem("is not a CIDR block such as 10.0.0.0/16") from None
    # The ALB's security group rules (`cidr_blocks`) and EKS's public access list take IPv4 only:
    # an IPv6 block (::/0 the widest) would fail the deploy, or need rules of its own to review.
    if network.version != 4:
        raise problem("is an IPv6 block; list IPv4 blocks only (the ALB's security group and EKS's public access list take IPv4)")
    return value


def check_vpc_cidr(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        raise problem("is not an IPv4 CIDR block such as 10.0.0.0/16") from None
    if not 16 <= network.prefixlen <= 20:
        raise problem("must be a /16 to /20 block: pods take their IPs from the private subnets")
    return value


def _percent_or_count(value: Union[int, str]) -> Union[int, str]:
    if isinstance(value, int) and value < 0:
        raise problem("is not a count >= 0 or a percentage such as '25%'")
    if isinstance(value, str) and not re.fullmatch(r"(100|[1-9]?[0-9])%", value):
        raise problem("is not a count >= 0 or a percentage such as '25%'")
    return value


def _fraction(value: float) -> float:
    if not 0 < value < 1:
        raise problem("is not a fraction between 0 and 1 (0.02 is 2 %)")
    return value


def _positive(value: float) -> float:
    if value <= 0:
        raise problem("must be more than 0")
    return value


def check_istio_version(value: str) -> str:
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", value)
    if not match:
        raise problem("is not an Istio release such as 1.30.5")
    if (int(match[1]), int(match[2])) < (1, 22):
        raise problem("is older than 1.22, the first release serving networking.istio.io/v1")
    return value


def _quantity(value: str) -> str:
    try:
        amount = parse_quantity(value)
    except ValueError:
        raise problem("is not a Kubernetes quantity such as 250m, 1, 512Mi or 1Gi") from None
    if amount <= 0:
        raise problem("must be more than 0")
    return value


Percent = Annotated[int, between(0, 100)]
Fraction = Annotated[float, AfterValidator(_fraction)]
Positive = Annotated[float, AfterValidator(_positive)]
Quantity = Annotated[str, AfterValidator(_quantity)]
Count = Annotated[int, between(1, 1000)]
Port = Annotated[int, between(1, 65535)]
ImageTag = Annotated[str, AfterValidator(_image_tag)]
Cidr = Annotated[str, AfterValidator(_cidr)]  # IPv4 only
Surge = Annotated[Union[int, str], AfterValidator(_percent_or_count)]
KubernetesVersion = Annotated[str, matching(r"1\.[0-9]{2}", "a Kubernetes minor version such as \"1.34\"")]
InstanceType = Annotated[str, matching(r"[a-z][a-z0-9-]*\.[a-z0-9]+", "an EC2 instance type such as t3.large")]
ClusterName = Annotated[str, matching(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}", "an EKS cluster name (letters, digits, '-', '_'; at most 100)")]
VpcId = Annotated[str, matching(r"vpc-[0-9a-f]{8,17}", "a VPC id such as vpc-0123456789abcdef0")]
SubnetId = Annotated[str, matching(r"subnet-[0-9a-f]{8,17}", "a subnet id such as subnet-0123456789abcdef0")]
RoleArn = Annotated[str, matching(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+", "an IAM role ARN")]
CertificateArn = Annotated[
    str, matching(r"arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[A-Za-z0-9-]+", "an ACM certificate ARN")
]
RepositoryName = Annotated[
    str,
    matching(
        r"(?=.{2,256}$)(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*",
        "an ECR repository name (lowercase letters, digits, '.', '_', '-', '/')",
    ),
]
HealthPath = Annotated[str, matching(r"/[A-Za-z0-9._~/-]*", "an absolute HTTP path such as /healthz")]
HeaderName = Annotated[str, matching(r"[a-z0-9][a-z0-9-]*", "a lowercase HTTP header name such as x-version")]
HeaderValue = Annotated[str, matching(r"[A-Za-z0-9._~-]{1,64}", "a plain header value such as canary")]


def _strictly_increasing_to_100(steps: tuple[int, ...]) -> tuple[int, ...]:
    if not steps:
        raise problem("is empty: list the canary weights, ending at 100")
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise problem("is not strictly increasing")
    if steps[-1] != 100:
        raise problem("does not end at 100 (the last step sends all traffic to the canary)")
    if steps[0] < 1:
        raise problem("starts at 0: the first step must send some traffic to the canary")
    return steps


Steps = Annotated[tuple[Percent, ...], AfterValidator(_strictly_increasing_to_100)]

def _mirror_path(value: str) -> str:
    if value in ("/", "/*", "*", ""):
        raise problem("matches every path, write endpoints included: list the read-only paths to mirror")
    if not re.fullmatch(r"/[A-Za-z0-9._~/-]*(/\*)?", value):
        raise problem("is not a path such as /v1/models (exact) or /v1/models/* (prefix); no other wildcards or patterns")
    return value


def _non_empty(value: tuple) -> tuple:
    if not value:
        raise problem("is empty: list the read-only paths to mirror")
    return value


MirrorPaths = Annotated[tuple[Annotated[str, AfterValidator(_mirror_path)], ...], AfterValidator(_non_empty)]
# A DNS label short enough for `<name>-canary`, `<name>-green` and `<name>-mesh` to stay labels too.
ServiceName = Annotated[str, matching(r"[a-z]([a-z0-9-]{0,38}[a-z0-9])?", "a service name (lowercase letters, digits, '-'; at most 40; a DNS label)")]
Hostname = Annotated[str, matching(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", "a DNS host name such as chat.example.org")]
PathPrefix = Annotated[str, matching(r"(/[A-Za-z0-9._~-]+)+", "a path prefix such as /triage (no trailing '/', no wildcards)")]


SignalName = Annotated[str, matching(r"[a-z][a-z0-9-]{0,62}", "a signal name (lowercase letters, digits, '-')")]


def _template(value: str) -> str:
    unknown = unknown_placeholders(value)
    if unknown:
        raise problem(f"uses {', '.join('$' + u for u in unknown)}; the placeholders are {', '.join('$' + p for p in sorted(PLACEHOLDERS))}")
    if "$by" not in value:
        raise problem("must aggregate by the version label: `sum by ($by) (...)` (histograms: `by ($by, le)`)")
    if "$window" not in value and "[" not in value:
        raise problem("reads no window: use `[$window]` (e.g. `increase(x_total{$app}[$window])`)")
    return value


Template = Annotated[str, AfterValidator(_template)]


# --- promotion --------------------------------------------------------------


StackName = Annotated[str, matching(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", "a stack name such as staging")]
OperatorName = Annotated[str, matching(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}", "an operator name such as ana or ana@example.org")]
WindowName = Annotated[str, matching(r"[a-z0-9][a-z0-9 ._-]{0,63}", "a window name such as year-end (lowercase letters, digits, ' ', '.', '_', '-'; at most 64)")]


def _argument(value: str) -> str:
    if not value:
        raise problem("is empty: every argument of the command is a non-empty string")
    return value


def _command(value: tuple) -> tuple:
    if not value:
        raise problem("is empty: list the command and its arguments, e.g. [python, -m, pytest, -q, verify]")
    return value


Command = Annotated[tuple[Annotated[str, AfterValidator(_argument)], ...], AfterValidator(_command)]


@functools.cache
def _zone_names() -> frozenset[str]:
    # The names the zone database lists (the OS's, else the tzdata package's), not any file
    # zoneinfo would open: `localtime` is the machine's own zone, another one on each machine.
    return frozenset(zoneinfo.available_timezones() - {"localtime"})


def _time_zone(value: str) -> str:
    if value not in _zone_names():
        raise problem("is not an IANA time zone such as Europe/London (or UTC)")
    return value


TimeZone = Annotated[str, AfterValidator(_time_zone)]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WallKind = Literal["daily", "weekly", "dated"]


@dataclass(frozen=True)
class WallTime:
    """A freeze window's bound as written: daily "HH:MM", weekly "ddd HH:MM" or dated
    "YYYY-MM-DD HH:MM", a wall-clock time in the window's zone."""

    kind: WallKind
    hour: int
    minute: int
    weekday: Optional[int] = None  # weekly: 0 is mon
    day: Optional[datetime.date] = None  # dated

    @property
    def minutes(self) -> int:
        """Minutes into its period: the day (daily) or the week from mon 00:00 (weekly)."""
        return (self.weekday or 0) * 1440 + self.hour * 60 + self.minute


_WALL_FORMS = "a time such as 22:00 (daily), fri 16:00 (weekly) or 2026-12-23 00:00 (dated)"


def wall_time(value: str) -> WallTime:
    """`value` read as a freeze window's bound; a ValueError says what is wrong with it."""
    match = re.fullmatch(r"(?:(?P<weekday>[A-Za-z]{3})|(?P<date>\d{4}-\d\d-\d\d)) (?P<hour>\d\d):(?P<minute>\d\d)|(?P<h>\d\d):(?P<m>\d\d)", value, re.ASCII)
    if not match:
        raise ValueError(f"is not {_WALL_FORMS}")
    hour, minute = int(match["hour"] or match["h"]), int(match["minute"] or match["m"])
    # No 24:00: a window that ends at midnight ends at 00:00, which wraps to the next day.
    if hour > 23:
        raise ValueError(f"has hour {hour:02d}; hours are 00..23 (midnight is 00:00)")
    if minute > 59:
        raise ValueError(f"has minute {minute:02d}; minutes are 00..59")
    if match["weekday"]:
        if match["weekday"] not in WEEKDAYS:
            raise ValueError(f"has weekday {match['weekday']!r}; weekdays are {' '.join(WEEKDAYS)} (lower case)")
        return WallTime("weekly", hour, minute, weekday=WEEKDAYS.index(match["weekday"]))
    if match["date"]:
        try:
            day = datetime.date.fromisoformat(match["date"])
        except ValueError:
            raise ValueError(f"has {match['date']}, which is not a day of the calendar") from None
        return WallTime("dated", hour, minute, day=day)
    return WallTime("daily", hour, minute)


def _wall_time(value: str) -> str:
    try:
        wall_time(value)
    except ValueError as error:
        raise problem(str(error)) from None
    return value


WallTimeText = Annotated[str, AfterValidator(_wall_time)]

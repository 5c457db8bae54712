"""The driver's narrow interfaces to the outside: the stack and the metrics (here), the lease
(`release.lease`) and the ledger (`release.ledger`).

`Stack` is a Pulumi stack seen as its stack file, `up`, and the release state of each
service its last successful update applied: `AutomationStack` drives the real one through the
Automation API; `OfflineStack` keeps a workspace copy, applies every change with the
offline plan engine and checks the design's invariants (the test double, and
`--offline` rehearsals). `Metrics` is Prometheus: `PrometheusMetrics` over its
HTTP API, or a scripted one in tests. `Images` is the registry: `release.ecr.EcrImages` on
ECR, or `rehearsal.images.RehearsalImages` offline.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence

from core.images import ImageReport
from core.release import ReleaseState
from core.signals import Signal
from release.judge import Check, Reading


class StackError(RuntimeError):
    """`pulumi up` failed; traffic stays where the last successful update left it."""


class StackLocked(StackError):
    """Another update holds the stack's lock."""


class MetricsError(RuntimeError):
    """Prometheus could not be asked, or did not answer."""


class ImagesError(RuntimeError):
    """The registry could not be asked, or did not answer."""


class Stack(Protocol):
    name: str

    def config(self) -> dict[str, Any]:
        """The `carepath:` config of the stack file: section name -> decoded value."""
        ...

    def write(self, changes: Mapping[str, Any]) -> None:
        """Every change (`services.chat-api.rollout.canary.weight` -> 25, or `core.paths.UNSET`)
        in one write; a write never loses another writer's keys."""
        ...

    def up(self) -> None:
        """`pulumi up`, waiting a bounded while for another update of the stack to finish.
        Raises StackError, or StackLocked."""
        ...

    def outputs(self) -> Mapping[str, Any]:
        """The stack outputs of the last successful update."""
        ...

    def applied(self) -> Mapping[str, ReleaseState]:
        """Each service's release state as the last successful update deployed it (the `releases`
        output); a service with none recorded is absent."""
        ...


class Metrics(Protocol):
    def read(self, namespaces: Sequence[str], signals: Sequence[Signal], by: str, groups: Mapping[str, str], release_seconds: float, interval_seconds: float) -> Check:
        """Per signal, the readings of each group (candidate / reference -> the value of label
        `by`): counters since the release started, gauges over the last interval. Raises MetricsError."""
        ...

    def history(self, namespaces: Sequence[str], signals: Sequence[Signal], by: str, group: str, seconds: float, step_seconds: float, now: float) -> dict[str, list[Reading]]:
        """One group's readings per step over the last `seconds`: the baseline. Raises MetricsError."""
        ...


class Images(Protocol):
    def describe(self, repository: str, tag: str) -> ImageReport:
        """The tag in the repository: whether it is there, its scan's state and every finding.
        Raises ImagesError."""
        ...

"""The driver's two narrow interfaces to the outside: the stack and the metrics.

`Stack` is a Pulumi stack seen as config plus `up`: `AutomationStack` drives the
real one through the Automation API; `OfflineStack` applies every change to the
offline plan engine and checks the design's invariants (the test double, and
`--offline` rehearsals). `Metrics` is Prometheus: `PrometheusMetrics` over its
HTTP API, or a scripted one in tests.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence

from core.signals import Signal
from release.judge import Check, Reading


class StackError(RuntimeError):
    """`pulumi up` failed; traffic stays where the last successful update left it."""


class StackLocked(StackError):
    """Another update holds the stack's lock."""


class MetricsError(RuntimeError):
    """Prometheus could not be asked, or did not answer."""


class Stack(Protocol):
    name: str

    def config(self) -> dict[str, Any]:
        """The `carepath:` config: section name -> decoded value."""

    def set(self, path: str, value: Any) -> None:
        """`pulumi config set --path carepath:<path> <value>`."""

    def unset(self, path: str) -> None:
        """`pulumi config rm --path carepath:<path>`."""

    def up(self) -> None:
        """`pulumi up`. Raises StackError, or StackLocked."""

    def outputs(self) -> Mapping[str, Any]:
        """The stack outputs of the last update."""


class Metrics(Protocol):
    def read(self, namespace: str, signals: Sequence[Signal], by: str, groups: Mapping[str, str], release_seconds: float, interval_seconds: float) -> Check:
        """Per signal, the readings of each group (candidate / reference -> the value of label
        `by`): counters since the release started, gauges over the last interval. Raises MetricsError."""

    def history(self, namespace: str, signals: Sequence[Signal], by: str, group: str, seconds: float, step_seconds: float, now: float) -> dict[str, list[Reading]]:
        """One group's readings per step over the last `seconds`: the baseline. Raises MetricsError."""

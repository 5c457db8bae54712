"""The driver's two narrow interfaces to the outside: the stack and the metrics.

`Stack` is a Pulumi stack seen as config plus `up`: `AutomationStack` drives the
real one through the Automation API; `OfflineStack` applies every change to the
offline plan engine and checks the design's invariants (the test double, and
`--offline` rehearsals). `Metrics` is Prometheus: `PrometheusMetrics` over its
HTTP API, or a scripted one in tests.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol

from release.analysis import TrackSample


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
    def sample(self, namespace: str, release_seconds: float, step_seconds: float) -> dict[str, TrackSample]:
        """Per track: requests and errors over the last `release_seconds`, requests over the
        last `step_seconds`, and p95 latency over the step. Raises MetricsError."""

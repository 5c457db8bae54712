"""What a release run leaves behind: its observations, one per check, and its outcome.

The driver fills it; the progress lines, the audit log and the report read it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from release.judge import GateView


@dataclass(frozen=True)
class Observation:
    """One check of a release."""

    seconds: float  # since the release started
    step: int  # 1-based step of the release (a weight step, the bake, ...)
    weights: dict[str, int]  # track -> % of patient traffic at the time of the check
    verdict: str  # rollback | hold | advance | promote
    reasons: tuple[str, ...]
    gates: tuple[GateView, ...] = ()
    phase: str = "canary"  # canary | bake | test


@dataclass
class ReleaseRun:
    stack: str = ""
    service: str = ""
    tag: str = ""
    strategy: str = ""
    release_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    outcome: str = "running"  # promoted | rolled back | switched | switched back | stopped
    message: str = ""
    observations: list[Observation] = field(default_factory=list)

    @property
    def last_reasons(self) -> str:
        """Why the last check decided as it did (no check: the metrics never answered)."""
        return "; ".join(self.observations[-1].reasons) if self.observations else "metrics unavailable"

"""What a release does after each check of its analysis, as one rule (pure): the release driver
follows it on real metrics, the bench's simulation on simulated traffic, so the figures the
bench measures are the driver's.

- a rollback verdict ends the release;
- no usable data holds; held for `max_inconclusive_seconds` (counted from the start of the
  first such interval) it ends the release as inconclusive;
- a bake (blue/green after its switch, a rolling update) ends once `bake_seconds` have passed
  and every critical gate accepts the candidate;
- a canary advances once its step has had `min_step_requests` candidate requests while the
  evidence favours it, and is promoted from the last step once every critical gate accepts
  it (`core.release.canary_move`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Sequence

from core.release import canary_move
from release.judge import Decision

Move = Literal["rollback", "inconclusive", "hold", "baked", "advance", "promote"]


@dataclass(frozen=True)
class Pacing:
    max_inconclusive_seconds: float
    min_step_requests: float
    steps: Sequence[int] = ()  # the canary's ladder
    bake_seconds: Optional[float] = None  # set: a bake, not a canary


@dataclass(frozen=True)
class Progress:
    inconclusive_since: Optional[float] = None
    step_requests: float = 0.0  # candidate requests judged since the last step


def after_check(pacing: Pacing, progress: Progress, decision: Decision, interval_start: float, now: float, elapsed: float, weight: int) -> tuple[Move, Progress]:
    """The move after one check, and the progress to carry to the next (reset after an advance)."""
    if decision.verdict == "rollback":
        return "rollback", progress
    if decision.inconclusive:
        since = interval_start if progress.inconclusive_since is None else progress.inconclusive_since
        held = Progress(since, progress.step_requests)
        return ("inconclusive" if now - since >= pacing.max_inconclusive_seconds else "hold"), held
    progress = Progress(None, progress.step_requests + decision.exposure)
    if pacing.bake_seconds is not None:
        return ("baked" if elapsed >= pacing.bake_seconds and decision.verdict == "promote" else "hold"), progress
    if decision.verdict not in ("advance", "promote"):
        return "hold", progress
    move = canary_move(weight, pacing.steps, decision.verdict == "promote", progress.step_requests >= pacing.min_step_requests)
    if move == "advance":
        return "advance", Progress()
    return ("promote" if move == "promote" else "hold"), progress

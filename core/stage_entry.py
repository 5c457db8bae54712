"""Whether a tag may enter a stage of its promotion path now, as one rule (pure): the facts come
from the evidence (`release.evidence`), the decision goes back to `release.promotion`.

A stage is entered only when, in this order:

1. the stage before it released this tag and its judge promoted it (`previous-stage`);
2. the tag has soaked there: `soakSeconds` since that promotion, with its watch ended healthy
   (`soak`); a watch that rolled back or could not judge stops the path for good;
3. no freeze window of the stage is open (`freeze`): the wait ends when the windows thaw;
4. an approval was given, when the stage requires one (`approval`): by one of its `approvers`
   when it lists them, and never by the operator who promotes (four eyes).

An override (a hotfix) lifts `previous-stage`, `soak` or `freeze`, each named, with a reason that
the evidence keeps. Nothing lifts an approval: that is the one gate a person must open, and an
override by the promoter would be their own approval. The image digest, the other condition of
entry, is compared where the stage's registry answers (`release.promotion`).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import AbstractSet, Literal, Optional, Sequence

from core.freeze import FrozenForever, describe, frozen_by, thaws_at
from core.settings.service import ApprovalSettings, FreezeSettings

OVERRIDABLE: tuple[str, ...] = ("previous-stage", "soak", "freeze")
Verdict = Literal["enter", "wait", "stop"]


@dataclass(frozen=True)
class PreviousStage:
    """What the stage before says about the tag: its release's outcome, when it was promoted, its
    watch's outcome (None while it is still watched or was never watched) and its soak."""

    stack: str
    outcome: Optional[str]  # promoted | switched | rolled back | switched back | stopped; None: never released
    promoted_at: Optional[datetime.datetime]
    watched: Optional[str]  # healthy | unwatched | skipped | rolled back | inconclusive | superseded
    soak_seconds: int


@dataclass(frozen=True)
class Entry:
    """The decision: enter, wait (until `until` when the gate opens by itself; None: it needs a
    person), or stop. `overridden`: the gates an override lifted on the way."""

    verdict: Verdict
    gate: Optional[str] = None
    reason: str = ""
    until: Optional[datetime.datetime] = None
    overridden: tuple[str, ...] = ()


PROMOTED = ("promoted", "switched")
SOAKED = ("healthy", "unwatched", "skipped")


def _previous_gate(previous: PreviousStage, tag: str, now: datetime.datetime) -> Optional[Entry]:
    """The first of `previous-stage` and `soak` that is closed (None: both open)."""
    if previous.outcome not in PROMOTED or previous.promoted_at is None:
        said = "was never released there" if previous.outcome is None else f"ended {previous.outcome} there"
        return Entry("stop", "previous-stage", f"{tag} {said}, on {previous.stack}, the stage before: a tag enters a stage only once the one before promoted it")
    if previous.watched not in (*SOAKED, None):
        return Entry("stop", "soak", f"{tag}'s watch on {previous.stack} ended {previous.watched}: it did not soak healthy there")
    soaked = previous.promoted_at + datetime.timedelta(seconds=previous.soak_seconds)
    if previous.watched is None or now < soaked:
        return Entry("wait", "soak", f"{tag} soaks on {previous.stack} until {soaked:%Y-%m-%d %H:%M:%SZ} ({previous.soak_seconds} s healthy after its promotion)", until=soaked)
    return None


def entry(
    tag: str,
    previous: Optional[PreviousStage],
    freeze: Sequence[FreezeSettings],
    approval: ApprovalSettings,
    approved_by: Sequence[str],
    operator: str,
    now: datetime.datetime,
    overrides: AbstractSet[str] = frozenset(),
) -> Entry:
    """Whether `tag` enters the stage at `now` (aware), promoted by `operator`."""
    overridden: list[str] = []

    def closed(gate: Entry) -> Optional[Entry]:
        if gate.gate in overrides:
            overridden.append(str(gate.gate))
            return None
        return Entry(gate.verdict, gate.gate, gate.reason, gate.until, tuple(overridden))

    if previous is not None:
        gate = _previous_gate(previous, tag, now)
        if gate is not None and (blocked := closed(gate)) is not None:
            return blocked
    window = frozen_by(freeze, now)
    if window is not None:
        try:
            gate = Entry("wait", "freeze", f"frozen: {describe(window)}", until=thaws_at(freeze, now))
        except FrozenForever as forever:  # windows that never all close: no wait ends it
            gate = Entry("stop", "freeze", f"frozen for good: {forever}")
        if (blocked := closed(gate)) is not None:
            return blocked
    if approval.required:
        valid = [who for who in approved_by if who != operator and (not approval.approvers or who in approval.approvers)]
        if not valid:
            allowed = f"one of {', '.join(approval.approvers)}" if approval.approvers else "anyone"
            return Entry("wait", "approval", f"an approval by {allowed} other than {operator}, who promotes", overridden=tuple(overridden))
    return Entry("enter", overridden=tuple(overridden))

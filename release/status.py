"""What `status` says about a service of a stack, decided from the stack file, the applied state
and the service's lease.

The first line is the one that matters: it says when the stack file and the cluster
disagree, and when a candidate takes patient traffic with no driver judging it. `status`
without `--service` gives every service's first line first, then each one's details.
"""

from __future__ import annotations

from typing import Optional

from core.release import ReleaseState
from release.lease import Lease


def candidate_share(state: ReleaseState) -> tuple[Optional[str], int]:
    """The version a release in flight is bringing in, and its share of patient traffic."""
    tag = state.candidate
    canary = state.track("canary")
    if tag is None and canary is not None:
        tag = canary.tag  # a canary set by hand
    if tag is None:
        return None, 0
    share = sum(track.weight for name, track in state.tracks if track.tag == tag and (state.strategy != "canary" or name == "canary"))
    return tag, share


def headline(stack: str, service: str, wanted: Optional[ReleaseState], applied: Optional[ReleaseState], lease: Optional[Lease], now: float) -> str:
    """The first line of a service's `status`. `wanted`: the stack file's state (None: the file
    does not validate)."""
    where = f"stack {stack}, service {service}"
    run, abort = f"`run {stack} --service {service} --tag {{tag}}`", f"`abort {stack} --service {service}`"
    served = applied or wanted
    tag, share = candidate_share(served) if served else (None, 0)
    if lease is not None and lease.gone():
        lease = None  # held until it expires, but by a process that is gone: nothing judges
    unjudged = f"; {tag} takes {share} % of patient traffic and NO DRIVER IS JUDGING IT" if share and lease is None else ""
    if wanted is None:
        return f"{where}: THE STACK FILE DOES NOT VALIDATE (problems below); the cluster has {applied.describe() if applied else 'no recorded state'}{unjudged}"
    if applied is None:
        return f"{where}: NO APPLIED STATE RECORDED (no successful update has exported it yet); the stack file says {wanted.describe()}"
    if wanted != applied:
        return (
            f"{where}: NOT IN STEP: the stack file says {wanted.describe()}; the cluster has {applied.describe()} "
            f"(its last successful update){unjudged}; the next command re-applies the stack file"
        )
    if lease is not None:
        return f"{where}: {'release ' + tag if tag else 'a command'} in flight, {lease.describe(now)}"
    if share:
        return f"{where}: {tag} takes {share} % of patient traffic and NO DRIVER IS JUDGING IT: {run.format(tag=tag)} resumes the release, {abort} ends it"
    if tag:
        return f"{where}: release {tag} in flight, no patient traffic on it yet, no driver running: {run.format(tag=tag)} resumes it, {abort} ends it"
    return f"{where}: steady: {applied.describe()}"


def report(stack: str, service: str, wanted: Optional[ReleaseState], applied: Optional[ReleaseState], lease: Optional[Lease], now: float) -> list[str]:
    """A service's `status` lines: the headline, then the stack file and the applied state side by side."""
    lines = [headline(stack, service, wanted, applied, lease, now)]
    record = dict(wanted.in_flight) if wanted and wanted.in_flight else None
    lines.append(f"  stack file: {wanted.describe() if wanted else 'does not validate'}" + (f"; release {record['tag']} (id {record['id']}) in flight" if record else ""))
    lines.append(f"  applied:    {applied.describe() if applied else 'nothing recorded'}")
    if wanted and applied and wanted != applied:
        lines += [f"    differs: {line}" for line in applied.differences(wanted)]
    if lease is not None:
        lines.append(f"  lease:      {lease.describe(now)}")
    return lines

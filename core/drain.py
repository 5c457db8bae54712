"""How long a terminating chat-api pod keeps serving, so no request is cut off.

When a pod starts terminating, its endpoint is removed, the load balancer
controller deregisters the target, and the ALB stops sending new requests after
a propagation delay; requests already in flight get the target group's
deregistration delay to finish. The pod must keep serving through both, then
gets its own shutdown time before SIGKILL.
"""

from __future__ import annotations

from dataclasses import dataclass

# Endpoint removal -> controller -> ALB deregistration start, with margin (observed: a few seconds).
PROPAGATION_SECONDS = 15


@dataclass(frozen=True)
class DrainTimings:
    pre_stop_sleep_seconds: int
    termination_grace_seconds: int


def drain_timings(deregistration_delay_seconds: int, shutdown_seconds: int) -> DrainTimings:
    pre_stop = deregistration_delay_seconds + PROPAGATION_SECONDS
    return DrainTimings(pre_stop, pre_stop + shutdown_seconds)

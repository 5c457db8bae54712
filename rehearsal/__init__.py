"""Release rehearsals: a whole release of one service (chat-api unless told otherwise) run on
the offline stack against a real Prometheus (Debian's, on loopback, started and stopped here)
scraping a synthetic version of that service whose candidate behaves as a named scenario says
(`SCENARIOS`), so the driver's judgement is exercised end to end without a cluster. The
synthetic service also answers requests (`/v1/chat`, `/healthz`, on its public and test
listeners), so a stage's verification suite runs against it; `rehearsal.run.path_rehearsal`
gives every stage of a promotion path its own service and Prometheus.
"""

from rehearsal.exporter import SCENARIOS, TESTER_HEADER, Behaviour, SyntheticService, TrackLoad
from rehearsal.prometheus import free_port, query, running_prometheus, wait_for_series

__all__ = [
    "SCENARIOS",
    "TESTER_HEADER",
    "Behaviour",
    "SyntheticService",
    "TrackLoad",
    "free_port",
    "query",
    "running_prometheus",
    "wait_for_series",
]

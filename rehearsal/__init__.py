"""Release rehearsals: a whole release of one service (chat-api unless told otherwise) run on
the offline stack against a real Prometheus (Debian's, on loopback, started and stopped here)
scraping a synthetic version of that service whose candidate behaves as a named scenario says
(`SCENARIOS`), so the driver's judgement is exercised end to end without a cluster.
"""

from rehearsal.exporter import SCENARIOS, Behaviour, SyntheticService, TrackLoad
from rehearsal.prometheus import free_port, query, running_prometheus, wait_for_series

__all__ = [
    "SCENARIOS",
    "Behaviour",
    "SyntheticService",
    "TrackLoad",
    "free_port",
    "query",
    "running_prometheus",
    "wait_for_series",
]

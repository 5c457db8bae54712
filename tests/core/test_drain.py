from hypothesis import given
from hypothesis import strategies as st

from core.drain import PROPAGATION_SECONDS, drain_timings


@given(st.integers(0, 120), st.integers(0, 300))
def test_pods_serve_through_propagation_and_deregistration_then_shut_down(delay, shutdown):
    timings = drain_timings(delay, shutdown)
    assert timings.pre_stop_sleep_seconds > delay
    assert timings.pre_stop_sleep_seconds >= delay + PROPAGATION_SECONDS
    assert timings.termination_grace_seconds == timings.pre_stop_sleep_seconds + shutdown

"""Metrics from Prometheus's HTTP API (`/api/v1/query`), per track of chat-api."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request

from release.analysis import TrackSample
from release.ports import MetricsError

SELECTOR = 'namespace="{namespace}", job=~".*chat-api.*"'


def _window(seconds: float) -> str:
    return f"{max(int(math.ceil(seconds)), 1)}s"


class PrometheusMetrics:
    def __init__(self, url: str, timeout: float = 10.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def query(self, promql: str) -> dict[str, float]:
        """An instant query summed `by (track)`: track -> value."""
        address = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        try:
            with urllib.request.urlopen(address, timeout=self.timeout) as response:  # noqa: S310 (the operator's Prometheus)
                body = json.load(response)
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise MetricsError(f"{self.url}: {error}") from error
        if body.get("status") != "success":
            raise MetricsError(f"{self.url}: {body.get('errorType')}: {body.get('error')}")
        values = {}
        for series in body["data"]["result"]:
            value = float(series["value"][1])
            if not math.isnan(value):
                values[series["metric"].get("track", "")] = value
        return values

    def sample(self, namespace: str, release_seconds: float, step_seconds: float) -> dict[str, TrackSample]:
        selector = SELECTOR.format(namespace=namespace)
        release, step = _window(release_seconds), _window(step_seconds)
        requests = self.query(f"sum by (track) (increase(http_requests_total{{{selector}}}[{release}]))")
        errors = self.query(f'sum by (track) (increase(http_requests_total{{{selector}, status=~"5.."}}[{release}]))')
        step_requests = self.query(f"sum by (track) (increase(http_requests_total{{{selector}}}[{step}]))")
        p95 = self.query(
            f"histogram_quantile(0.95, sum by (track, le) (rate(http_request_duration_seconds_bucket{{{selector}}}[{step}])))"
        )
        return {
            track: TrackSample(total, errors.get(track, 0.0), step_requests.get(track, 0.0), p95.get(track))
            for track, total in requests.items()
        }

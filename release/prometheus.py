"""The judge's readings from Prometheus's HTTP API, for every signal of the catalogue.

Counters and histograms are read cumulatively since the release started
(`increase(...[<release seconds>])`) and the driver takes the difference between two
checks (`release.judge.since`): the checks then tile time exactly, whatever the scrape
interval, where back-to-back `[interval]` windows shorter than two scrapes would answer
nothing. Gauges are read over the last `max(interval, 60 s)`. The series read are the released
service's, in the release's namespaces, as `core.observability.selectors` names them for the
recording rules too.

Prometheus's answers are checked, not trusted: an error status, a missing `data`, a
result type other than the one asked for, or a value that is not a number raise
`MetricsError` (the driver holds: inconclusive); NaN and Inf are passed on as they are,
and the judge counts them as no data, never as zero.
"""

from __future__ import annotations

import http.client
import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Mapping, Optional, Sequence

from core.observability import namespace_matcher, selectors
from core.signals import Signal, render
from release.judge import Check, Histogram, Level, Ratio, Reading
from release.ports import MetricsError

GAUGE_WINDOW = 60.0  # at least two scrapes at Prometheus Operator's usual 15-30 s


def duration(seconds: float) -> str:
    return f"{max(int(math.ceil(seconds)), 1)}s"


def _time(raw: Any, what: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise MetricsError(f"{what}: sample time {raw!r} is not a number")
    return float(raw)


def _le(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise MetricsError(f"bucket bound le={raw!r} is not a number") from None


def _number(raw: Any, what: str) -> float:
    if not isinstance(raw, str):
        raise MetricsError(f"{what}: value {raw!r} is not a sample value string")
    try:
        return float(raw)  # "NaN", "+Inf" and "-Inf" are numbers here, judged later
    except ValueError:
        raise MetricsError(f"{what}: value {raw!r} is not a number") from None


class PrometheusMetrics:
    """Prometheus at `url`, read for `service`: the queries select that service's series only."""

    def __init__(self, url: str, *, service: str, timeout: float = 10.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.service = service

    def _get(self, path: str, params: Mapping[str, str], result_type: str) -> list[dict[str, Any]]:
        address = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(address, timeout=self.timeout) as response:  # noqa: S310 (the operator's Prometheus)
                body = json.load(response)
        except urllib.error.HTTPError as error:
            detail = error.read(300).decode("utf-8", "replace")
            raise MetricsError(f"{self.url}: HTTP {error.code}: {detail}") from error
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
            raise MetricsError(f"{self.url}: {error!r}") from error
        if not isinstance(body, dict) or body.get("status") != "success":
            error_text = body.get("error") if isinstance(body, dict) else body
            raise MetricsError(f"{self.url}: query failed: {error_text}")
        data = body.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("result"), list):
            raise MetricsError(f"{self.url}: the answer has no data.result")
        if data.get("resultType") != result_type:
            raise MetricsError(f"{self.url}: expected a {result_type} result, got {data.get('resultType')!r}")
        for series in data["result"]:
            labels = series.get("metric") if isinstance(series, dict) else None
            if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
                raise MetricsError(f"{self.url}: a series without string labels in {params.get('query', '')[:80]}")
        return data["result"]

    def vector(self, promql: str, at: Optional[float] = None) -> list[tuple[dict[str, str], float]]:
        """An instant query (at `at`, Unix seconds; default Prometheus's now): each series' labels and value."""
        params = {"query": promql} | ({"time": f"{at:.3f}"} if at is not None else {})
        result = []
        for series in self._get("/api/v1/query", params, "vector"):
            value = series.get("value")
            if not isinstance(value, list) or len(value) != 2:
                raise MetricsError(f"{self.url}: a vector sample is not [time, value]: {value!r}")
            result.append((series["metric"], _number(value[1], promql[:80])))
        return result

    def matrix(self, promql: str, start: float, end: float, step: float) -> list[tuple[dict[str, str], dict[float, float]]]:
        """A range query: each series' labels and its values by time."""
        params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": duration(step)}
        result = []
        for series in self._get("/api/v1/query_range", params, "matrix"):
            values = series.get("values")
            if not isinstance(values, list) or not all(isinstance(v, list) and len(v) == 2 for v in values):
                raise MetricsError(f"{self.url}: a matrix series has no [time, value] list")
            result.append((series["metric"], {_time(v[0], promql[:80]): _number(v[1], promql[:80]) for v in values}))
        return result

    # --- the catalogue ------------------------------------------------------------

    def _render(self, template: str, namespaces: Sequence[str], by: str, window: float) -> str:
        return render(template, by=by, window=duration(window), **selectors(self.service, namespace_matcher(namespaces)))

    def read(self, namespaces: Sequence[str], signals: Sequence[Signal], by: str, groups: Mapping[str, str], release_seconds: float, interval_seconds: float) -> Check:
        """Per signal, the readings of each group (candidate / reference -> value of label `by`):
        counters since the release started, gauges over the last interval. Every query is evaluated
        at the same instant, so a ratio's numerator and denominator count the same window.
        Raises MetricsError."""
        at = time.time()
        check: dict[str, dict[str, Reading]] = {}
        for signal in signals:
            window = max(interval_seconds, GAUGE_WINDOW) if signal.kind == "gauge" else release_seconds
            answers = self._answers(signal, lambda t, window=window: self.vector(self._render(t, namespaces, by, window), at))
            check[signal.name] = _readings(signal, by, groups, answers, None)
        return check

    def history(self, namespaces: Sequence[str], signals: Sequence[Signal], by: str, group: str, seconds: float, step_seconds: float, now: float) -> dict[str, list[Reading]]:
        """The readings of one group per step over the last `seconds` (range queries), to start the
        judge from the reference's baseline. Raises MetricsError."""
        history: dict[str, list[Reading]] = {}
        for signal in signals:
            if not signal.statistical:
                continue
            answers = self._answers(signal, lambda t: self.matrix(self._render(t, namespaces, by, step_seconds), now - seconds, now, step_seconds))
            instants = sorted({instant for answer in answers.values() for _, values in answer for instant in values})
            history[signal.name] = [reading for instant in instants if (reading := _readings(signal, by, {"g": group}, answers, instant).get("g")) is not None]
        return history

    @staticmethod
    def _answers(signal: Signal, ask) -> dict[str, Any]:
        queries = {"numerator": signal.numerator, "denominator": signal.denominator, "query": signal.query, "limit": signal.limit}
        return {name: ask(template) for name, template in queries.items() if template}


Answer = Sequence[tuple[dict[str, str], Any]]  # labels, and a value (instant) or values by time (range)


def _value(sample: Any, instant: Optional[float], missing: float) -> float:
    return sample if instant is None else sample.get(instant, missing)


def _by_group(answer: Answer, by: str, instant: Optional[float], missing: float = math.nan) -> dict[str, float]:
    return {labels.get(by, ""): _value(value, instant, missing) for labels, value in answer}


def _readings(signal: Signal, by: str, groups: Mapping[str, str], answers: Mapping[str, Answer], instant: Optional[float]) -> dict[str, Reading]:
    """The readings of each group from the answers to a signal's queries (at `instant`, for a range)."""
    readings: dict[str, Reading] = {}
    for role, group in groups.items():
        reading: Optional[Reading] = None
        if signal.kind == "ratio":
            totals = _by_group(answers["denominator"], by, instant)
            if group in totals:
                # A version without a single bad event has no numerator series: that is 0, not missing.
                numerator = _by_group(answers["numerator"], by, instant, missing=0.0).get(group, 0.0)
                bad = numerator if signal.direction != "down" else totals[group] - numerator
                reading = Ratio(max(bad, 0.0) if math.isfinite(bad) else bad, totals[group])
        elif signal.kind == "distribution":
            buckets = sorted(
                (_le(labels["le"]), _value(value, instant, math.nan)) for labels, value in answers["query"] if labels.get(by, "") == group and "le" in labels
            )
            reading = Histogram(tuple(buckets)) if buckets else None
        else:
            levels = _by_group(answers["query"], by, instant)
            if group in levels:
                limit = _by_group(answers["limit"], by, instant).get(group) if "limit" in answers else None
                reading = Level(levels[group], limit)
        if reading is not None:
            readings[role] = reading
    return readings


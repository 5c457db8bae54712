"""The signal catalogue: every number a release is judged or watched on, as data.

One `Signal` says what to ask Prometheus (PromQL templates), what kind of number it is,
which way is worse, how it is judged, whether it can roll a release back, and one line
for people. The same catalogue produces the release driver's gates (`release.judge`),
the recording rules, alerts and Grafana panels (`core.observability`) and the report:
no signal is defined twice.

Kinds:

- `ratio`: bad events over events (5xx over requests, failed triages over triages).
  `numerator` and `denominator` are counters; with `direction: down` the numerator
  counts the good events (successful triages) and the bad ones are the rest.
- `distribution`: a Prometheus histogram (`query` gives its `_bucket` series by `le`);
  judged at `quantile` through the share of requests above the bucket boundary at the
  reference's quantile (`direction: either` also tests the share below the boundary at
  1 - quantile: output length drifting either way).
- `gauge`: a level averaged per pod (CPU cores, memory bytes); `limit`, when set, is the
  level it is judged against in absolute terms (`bound` is then a share of it).
- `count`: events counted over the release (container restarts); judged against `bound`.

`judged`: `relative` compares the candidate with the reference version (stable, the
colour it replaces, the version it rolls over), `absolute` with `bound`, `both` does both.
`critical` signals can roll a release back and must have data to pass; `advisory` ones
are computed, shown and alerted on, never gating.

Templates: `$app` is replaced by the label matchers of the service's own series
(namespace and job), `$pods` by those of its pods' Kubernetes series (namespace and
container), `$ns` by the namespace matcher alone, `$service` by its name (all four from
`core.observability.selectors`, the one definition of a service's series), `$by` by the
label the versions are told apart by (`track`, or `version` while a rolling update runs
both), `$window` by a PromQL duration. Kubernetes series
(kube-state-metrics, cAdvisor) carry no track: they are joined with `kube_pod_labels`
(`$pod_tracks`), which kube-state-metrics exports with the pods' `track` and version labels.

The catalogue is keyed by service (`CATALOGUES`); `catalogue(service, overrides)` merges
the stack's `rollout.analysis.signals`: an entry naming a default signal changes only
the fields it sets, a new name adds a signal and must say everything.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Literal, Mapping, Optional, Sequence

Kind = Literal["ratio", "distribution", "gauge", "count"]
Direction = Literal["up", "down", "either"]
Judged = Literal["relative", "absolute", "both"]

KINDS: tuple[str, ...] = ("ratio", "distribution", "gauge", "count")
DIRECTIONS: tuple[str, ...] = ("up", "down", "either")
JUDGEMENTS: tuple[str, ...] = ("relative", "absolute", "both")
PLACEHOLDERS = frozenset({"app", "pods", "ns", "service", "by", "window", "pod_tracks"})
_PLACEHOLDER = re.compile(r"\$([A-Za-z_]+)")

# Pods' track and version, for Kubernetes series that have only namespace and pod.
POD_TRACKS = (
    'label_replace(label_replace(max by (namespace, pod, label_track, label_app_kubernetes_io_version) '
    '(kube_pod_labels{$ns, label_app_kubernetes_io_name="$service"}), '
    '"track", "$1", "label_track", "(.+)"), "version", "$1", "label_app_kubernetes_io_version", "(.+)")'
)


@dataclass(frozen=True)
class Signal:
    name: str
    kind: Kind
    summary: str  # one line for people
    unit: str  # for axes and panels: "ratio", "s", "tokens", "cores", "bytes", "restarts"
    direction: Direction = "up"
    judged: Judged = "relative"
    critical: bool = True
    numerator: str = ""  # ratio
    denominator: str = ""  # ratio
    query: str = ""  # distribution: bucket counts by ($by, le); gauge: level by $by; count: increase by $by
    limit: str = ""  # gauge: the level `bound` is a share of (resource limits)
    quantile: float = 0.95  # distribution
    good: float = 1.0  # relative: a candidate up to good x the reference's bad-event share is acceptable
    bad: float = 2.0  # relative: one at bad x the reference's share or worse must not pass
    bound: Optional[float] = None  # absolute: the worst acceptable value (a share of `limit` for gauges)
    min_events: float = 50.0  # least candidate events (requests, triages, answers) before its gates may accept
    weight: float = 1.0  # this signal's share of the family's false-rollback bound (alpha)

    @property
    def statistical(self) -> bool:
        """Judged by the sequential test (ratios and distributions), within the family's bounds."""
        return self.kind in ("ratio", "distribution")

    def templates(self) -> tuple[str, ...]:
        return tuple(t for t in (self.numerator, self.denominator, self.query, self.limit) if t)


def render(template: str, **values: str) -> str:
    """Fill a template's placeholders (`core.observability.selectors` gives `$app`, `$pods`, `$ns` and `$service`)."""
    text = template.replace("$pod_tracks", POD_TRACKS)
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def unknown_placeholders(template: str) -> list[str]:
    """`$names` a template uses that `render` does not fill (PromQL's own `$1` is a digit)."""
    return sorted({m.group(1) for m in _PLACEHOLDER.finditer(template)} - PLACEHOLDERS)


# --- chat-api's defaults: what the runbook names, and what a new LLM model changes -------------

_REQUESTS = "sum by ($by) (increase(http_requests_total{$app}[$window]))"
_ANSWERS = "sum by ($by) (increase(carepath_answers_total{$app}[$window]))"
_LATENCY = "sum by ($by, le) (increase(http_request_duration_seconds_bucket{$app}[$window]))"
_ON_PODS = "* on (namespace, pod) group_left (track, version) $pod_tracks"

CHAT_API: tuple[Signal, ...] = (
    Signal(
        "errors", "ratio", "share of requests answered with a 5xx", "ratio",
        numerator='sum by ($by) (increase(http_requests_total{$app, status=~"5.."}[$window]))',
        denominator=_REQUESTS, good=1.0, bad=5.0, weight=30, min_events=200,
    ),
    Signal(
        "latency-p50", "distribution", "median request duration", "s",
        query=_LATENCY, quantile=0.5, good=1.1, bad=1.5, critical=False,
    ),
    Signal(
        "latency-p95", "distribution", "95th percentile of request duration", "s",
        query=_LATENCY, quantile=0.95, good=1.25, bad=2.5,
    ),
    Signal(
        "latency-p99", "distribution", "99th percentile of request duration", "s",
        query=_LATENCY, quantile=0.99, good=1.25, bad=3.0,
    ),
    Signal(
        "time-to-first-token", "distribution", "95th percentile of the time to an answer's first token", "s",
        query="sum by ($by, le) (increase(gen_ai_server_time_to_first_token_seconds_bucket{$app}[$window]))",
        quantile=0.95, good=1.25, bad=2.5,
    ),
    Signal(
        "time-per-output-token", "distribution", "95th percentile of the time per output token after the first", "s",
        query="sum by ($by, le) (increase(gen_ai_server_time_per_output_token_seconds_bucket{$app}[$window]))",
        quantile=0.95, good=1.25, bad=2.5,
    ),
    Signal(
        "output-tokens", "distribution", "output tokens per answer, drifting longer or shorter", "tokens",
        query='sum by ($by, le) (increase(gen_ai_client_token_usage_bucket{$app, gen_ai_token_type="output"}[$window]))',
        direction="either", quantile=0.9, good=1.25, bad=2.5,
    ),
    Signal(
        "triage-success", "ratio", "share of triage requests that reached a triage outcome", "ratio",
        numerator='sum by ($by) (increase(carepath_triage_requests_total{$app, outcome="success"}[$window]))',
        denominator="sum by ($by) (increase(carepath_triage_requests_total{$app}[$window]))",
        direction="down", good=1.25, bad=2.0, weight=2,
    ),
    Signal(
        "complaints", "ratio", "complaints and thumbs-down per conversation", "ratio",
        numerator="sum by ($by) (increase(carepath_complaints_total{$app}[$window]))",
        denominator="sum by ($by) (increase(carepath_conversations_total{$app}[$window]))",
        good=1.25, bad=2.5,
    ),
    Signal(
        "refusals", "ratio", "answers the model refused", "ratio",
        numerator="sum by ($by) (increase(carepath_answer_refusals_total{$app}[$window]))",
        denominator=_ANSWERS, good=1.25, bad=2.5,
    ),
    Signal(
        "safety-filter", "ratio", "answers the safety filter stopped", "ratio",
        numerator="sum by ($by) (increase(carepath_safety_filter_hits_total{$app}[$window]))",
        denominator=_ANSWERS, good=1.25, bad=2.5,
    ),
    Signal(
        "restarts", "count", "container restarts of the version's pods (crashes, OOM kills, failed liveness probes)", "restarts",
        query=f"sum by ($by) (increase(kube_pod_container_status_restarts_total{{$pods}}[$window]) {_ON_PODS})",
        judged="absolute", bound=2,
    ),
    Signal(
        "pods-not-ready", "gauge", "pods of the version failing readiness", "pods",
        query=f'sum by ($by) (kube_pod_status_ready{{$ns, condition="false"}} {_ON_PODS})',
        judged="absolute", bound=0.5, critical=False,
    ),
    Signal(
        "cpu", "gauge", "CPU per pod, against the reference's and the limit", "cores",
        query=f"avg by ($by) (rate(container_cpu_usage_seconds_total{{$pods}}[$window]) {_ON_PODS})",
        limit=f'avg by ($by) (kube_pod_container_resource_limits{{$pods, resource="cpu"}} {_ON_PODS})',
        judged="both", bad=1.5, bound=0.9, critical=False,
    ),
    Signal(
        "memory", "gauge", "working-set memory per pod, against the reference's and the limit", "bytes",
        query=f"avg by ($by) (avg_over_time(container_memory_working_set_bytes{{$pods}}[$window]) {_ON_PODS})",
        limit=f'avg by ($by) (kube_pod_container_resource_limits{{$pods, resource="memory"}} {_ON_PODS})',
        judged="both", bad=1.5, bound=0.9, critical=False,
    ),
)

# A service without a catalogue of its own is judged on chat-api's.
CATALOGUES: Mapping[str, tuple[Signal, ...]] = {"chat-api": CHAT_API}


def catalogue(service: str, overrides: Sequence[object] = ()) -> tuple[Signal, ...]:
    """The service's signals with the stack's `rollout.analysis.signals` applied (mappings or the
    validated `core.settings.SignalSettings`). `enabled: false` drops a signal."""
    signals = {s.name: s for s in CATALOGUES.get(service, CHAT_API)}
    for item in overrides:
        entry: Mapping[str, object] = item if isinstance(item, Mapping) else asdict(item)  # type: ignore[call-overload]
        fields = {k: v for k, v in entry.items() if v is not None and k != "enabled"}
        name = str(fields["name"])
        if entry.get("enabled") is False:
            signals.pop(name, None)
            continue
        signals[name] = replace(signals[name], **fields) if name in signals else Signal(**fields)  # type: ignore[arg-type]
    return tuple(signals.values())

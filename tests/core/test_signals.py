"""The signal catalogue: complete for the runbook and a new model, well-formed, overridable."""

from __future__ import annotations

import pytest

from core.observability import selectors
from core.settings import SettingsError
from core.signals import CHAT_API, catalogue, render, unknown_placeholders
from tests.conftest import one_service, settings_from

RUNBOOK = {
    "errors", "latency-p50", "latency-p95", "latency-p99", "pods-not-ready", "restarts", "cpu", "memory",
    "triage-success", "complaints", "time-to-first-token", "time-per-output-token", "output-tokens", "refusals", "safety-filter",
}


def test_the_defaults_cover_the_runbook_and_what_a_new_model_changes():
    assert {s.name for s in CHAT_API} == RUNBOOK
    by_name = {s.name: s for s in CHAT_API}
    assert by_name["output-tokens"].direction == "either"
    assert by_name["triage-success"].direction == "down" and by_name["triage-success"].critical
    assert {s.kind for s in CHAT_API} == {"ratio", "distribution", "gauge", "count"}


@pytest.mark.parametrize("signal", CHAT_API, ids=lambda s: s.name)
def test_every_template_renders_to_promql_with_nothing_left_unfilled(signal):
    values = selectors("chat-api", 'namespace="carepath-staging"')
    for template in signal.templates():
        assert not unknown_placeholders(template)
        query = render(template, by="track", window="30s", **values)
        assert "$" not in query.replace('"$1"', ""), query
        assert 'namespace="carepath-staging"' in query and "by (track" in query
        assert query.count("(") == query.count(")")


def test_the_same_gates_follow_the_kind():
    for signal in CHAT_API:
        if signal.kind == "ratio":
            assert signal.numerator and signal.denominator
        else:
            assert signal.query
        assert signal.statistical == (signal.kind in ("ratio", "distribution"))
        assert signal.good < signal.bad and signal.summary and signal.unit


def test_a_service_without_a_catalogue_of_its_own_gets_the_default_one():
    assert catalogue("triage-api") == catalogue("chat-api") == CHAT_API
    dropped = catalogue("triage-api", [{"name": "complaints", "enabled": False}])
    assert "complaints" not in {s.name for s in dropped} and "complaints" in {s.name for s in CHAT_API}


def test_stack_overrides_change_drop_and_add_signals():
    raw = one_service({
        "tag": "v1.4.0",
        "rollout": {
            "strategy": "canary",
            "analysis": {
                "signals": [
                    {"name": "memory", "critical": True},
                    {"name": "cpu", "enabled": False},
                    {
                        "name": "handoffs", "kind": "ratio", "summary": "conversations handed to a nurse", "unit": "ratio",
                        "numerator": "sum by ($by) (increase(carepath_handoffs_total{$app}[$window]))",
                        "denominator": "sum by ($by) (increase(carepath_conversations_total{$app}[$window]))",
                    },
                ]
            },
        },
    })
    settings = settings_from(raw, "demo").service("chat-api")
    signals = {s.name: s for s in catalogue("chat-api", settings.rollout.analysis.signals)}
    assert signals["memory"].critical and signals["memory"].limit, "only the set field changed"
    assert "cpu" not in signals
    assert signals["handoffs"].kind == "ratio" and signals["handoffs"].critical


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "triage-succes", "critical": False}, "signals[0]: a new signal 'triage-succes' needs kind, summary, unit (or did you mean the default 'triage-success'?)"),
        ({"name": "errors", "good": 6}, "signals[0]: good 6 must be below bad 5"),
        ({"name": "errors", "kind": "gauge"}, "signals[0].kind: 'gauge' changes the kind of the default 'errors'"),
        ({"name": "latency-p95", "judged": "absolute", "bound": 2}, "signals[0].judged: 'absolute' is not available for distributions"),
        ({"name": "complaints", "judged": "both"}, "signals[0].bound is required"),
        ({"name": "nope", "enabled": False}, "signals[0].enabled: false, but 'nope' is not a default signal"),
        ({"name": "errors", "numerator": "increase(x{$app}[$window])"}, "signals[0].numerator: 'increase(x{$app}[$window])' must aggregate by the version label"),
        ({"name": "errors", "numerator": "sum by ($by) (x{$namespace}[$window])"}, "uses $namespace; the placeholders are"),
        ({"name": "Errors!"}, "signals[0].name: 'Errors!' is not a signal name"),
    ],
)
def test_a_bad_signal_entry_is_named_with_its_full_key(entry, message):
    raw = one_service({"tag": "v1.4.0", "rollout": {"strategy": "rolling", "analysis": {"signals": [entry]}}}, name="triage-api")
    with pytest.raises(SettingsError) as error:
        settings_from(raw, "demo")
    key = "carepath:services.triage-api.rollout.analysis.signals[0]"
    assert any(message in problem and problem.startswith(key) for problem in error.value.problems), error.value.problems

"""Settings of `services.<name>.promotion`: defaults, every problem (full key, value, what is
allowed), the freeze windows' forms and zones, and the rules across keys."""

from __future__ import annotations

from typing import Any, Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.settings import ApprovalSettings, FreezeSettings, PromotionSettings, SettingsError, VerifySettings
from core.settings.fields import WEEKDAYS
from tests.conftest import one_service, settings_from

KEY = "carepath:services.chat-api.promotion"
TAGS = {"rolling": {}, "canary": {}, "blue-green": {"blueGreen": {"blue": {"tag": "v1"}, "green": {"tag": "v2"}}}}


def raw(promotion: Any, strategy: str = "canary") -> dict[str, Any]:
    """chat-api with this promotion, on a strategy that has the tags it needs."""
    stable = {} if strategy == "blue-green" else {"tag": "v1.4.0"}
    return one_service({**stable, "rollout": {"strategy": strategy, **TAGS[strategy]}, "promotion": promotion}, edge={"testCidrs": ["203.0.113.0/24"]})


def promotion_of(promotion: Any, stack: str = "staging", strategy: str = "canary") -> PromotionSettings:
    parsed = settings_from(raw(promotion, strategy), stack).service("chat-api").promotion
    assert parsed is not None
    return parsed


def problems(promotion: Any, stack: str = "staging", strategy: str = "canary") -> list[str]:
    with pytest.raises(SettingsError) as caught:
        settings_from(raw(promotion, strategy), stack)
    return caught.value.problems


def freeze(**keys: Any) -> dict[str, Any]:
    return {"freeze": [{"name": "w", "start": "22:00", "end": "06:00", "timeZone": "UTC", **keys}]}


def test_a_service_is_in_no_promotion_path_unless_its_stack_says_so():
    assert settings_from(one_service({"tag": "v1", "rollout": {"strategy": "rolling"}})).service("chat-api").promotion is None


def test_the_defaults_are_the_documented_ones():
    assert promotion_of({}) == PromotionSettings(
        after=None, soak_seconds=0, watch_seconds=600, approval=ApprovalSettings(required=False, approvers=()), freeze=(), verify=None
    )
    assert promotion_of({"verify": {"command": ["k6", "run", "smoke.js"]}}).verify == VerifySettings(command=("k6", "run", "smoke.js"), timeout_seconds=900)


def test_a_full_stage_parses():
    parsed = promotion_of(
        {
            "after": "demo",
            "soakSeconds": 3600,
            "watchSeconds": 1800,
            "approval": {"required": True, "approvers": ["ana", "ben@example.org"]},
            "freeze": [
                {"name": "nightly", "start": "22:00", "end": "06:00", "timeZone": "UTC"},
                {"name": "weekend", "start": "fri 16:00", "end": "mon 08:00", "timeZone": "Europe/London"},
                {"name": "year-end", "start": "2026-12-23 00:00", "end": "2027-01-04 09:00", "timeZone": "America/New_York"},
            ],
            "verify": {"command": ["python", "-m", "pytest", "-q", "verify"], "timeoutSeconds": 600},
        },
        strategy="blue-green",
    )
    assert (parsed.after, parsed.soak_seconds, parsed.watch_seconds) == ("demo", 3600, 1800)
    assert parsed.approval == ApprovalSettings(required=True, approvers=("ana", "ben@example.org"))
    assert parsed.freeze[1] == FreezeSettings(name="weekend", start="fri 16:00", end="mon 08:00", time_zone="Europe/London")
    assert parsed.verify == VerifySettings(command=("python", "-m", "pytest", "-q", "verify"), timeout_seconds=600)


BAD = [
    ({"after": "staging!"}, f"{KEY}.after: 'staging!' is not a stack name such as staging"),
    ({"after": "staging"}, f"{KEY}.after: 'staging' is this stack itself; name the stage this one takes tags from, or remove the key on the first stage"),
    ({"soakSeconds": -1}, f"{KEY}.soakSeconds: -1 is not in 0..2592000"),
    ({"soakSeconds": "1h"}, f"{KEY}.soakSeconds: '1h' is not an integer"),
    ({"watchSeconds": 604_801}, f"{KEY}.watchSeconds: 604801 is not in 0..604800"),
    ({"approval": {"required": "yes"}}, f"{KEY}.approval.required: 'yes' is not true or false"),
    ({"approval": {"approvers": ["ana smith"]}}, f"{KEY}.approval.approvers[0]: 'ana smith' is not an operator name such as ana or ana@example.org"),
    ({"approval": {"approvers": ["ana", "ben", "ana"]}}, f"{KEY}.approval.approvers[2]: 'ana' is listed twice"),
    ({"approval": {"approver": ["ana"]}}, f"{KEY}.approval.approver: unknown key; did you mean 'approvers'? (allowed: required, approvers)"),
    ({"verify": {}}, f"{KEY}.verify.command is required"),
    ({"verify": {"command": []}}, f"{KEY}.verify.command: [] is empty: list the command and its arguments, e.g. [python, -m, pytest, -q, verify]"),
    ({"verify": {"command": "pytest verify"}}, f"{KEY}.verify.command: 'pytest verify' is not a list"),
    ({"verify": {"command": ["pytest", ""]}}, f"{KEY}.verify.command[1]: '' is empty: every argument of the command is a non-empty string"),
    ({"verify": {"command": ["pytest"], "timeoutSeconds": 5}}, f"{KEY}.verify.timeoutSeconds: 5 is not in 10..7200"),
    ({"soakSecond": 60}, f"{KEY}.soakSecond: unknown key; did you mean 'soakSeconds'?"),
    (freeze(name="Year End"), f"{KEY}.freeze[0].name: 'Year End' is not a window name such as year-end"),
    (freeze(name="x" * 65), f"{KEY}.freeze[0].name: '{'x' * 65}' is not a window name"),
    (freeze(start="9:00"), f"{KEY}.freeze[0].start: '9:00' is not a time such as 22:00 (daily), fri 16:00 (weekly) or 2026-12-23 00:00 (dated)"),
    (freeze(start="22:00:00"), f"{KEY}.freeze[0].start: '22:00:00' is not a time such as 22:00"),
    (freeze(start="24:00"), f"{KEY}.freeze[0].start: '24:00' has hour 24; hours are 00..23 (midnight is 00:00)"),
    (freeze(end="06:60"), f"{KEY}.freeze[0].end: '06:60' has minute 60; minutes are 00..59"),
    (freeze(start="Fri 16:00", end="mon 08:00"), f"{KEY}.freeze[0].start: 'Fri 16:00' has weekday 'Fri'; weekdays are mon tue wed thu fri sat sun (lower case)"),
    (freeze(start="frd 16:00", end="mon 08:00"), f"{KEY}.freeze[0].start: 'frd 16:00' has weekday 'frd'"),
    (freeze(start="2026-02-30 00:00", end="2026-03-02 00:00"), f"{KEY}.freeze[0].start: '2026-02-30 00:00' has 2026-02-30, which is not a day of the calendar"),
    (freeze(start="2026-12-23 00:00", end="mon 08:00"), f"{KEY}.freeze[0].end: 'mon 08:00' is a weekly time but start is dated: both bounds take one form"),
    (freeze(start="fri 16:00", end="08:00"), f"{KEY}.freeze[0].end: '08:00' is a daily time but start is weekly"),
    (freeze(start="2026-12-23 00:00", end="2026-12-23 00:00"), f"{KEY}.freeze[0].end: '2026-12-23 00:00' is not after start '2026-12-23 00:00'"),
    (freeze(start="2026-12-23 00:00", end="2026-12-22 23:59"), f"{KEY}.freeze[0].end: '2026-12-22 23:59' is not after start '2026-12-23 00:00'"),
    (freeze(start="22:00", end="22:00"), f"{KEY}.freeze[0].end: '22:00' equals start: the daily window would never close"),
    (freeze(start="fri 16:00", end="fri 16:00"), f"{KEY}.freeze[0].end: 'fri 16:00' equals start: the weekly window would never close"),
    (freeze(timeZone="Europe/Lond"), f"{KEY}.freeze[0].timeZone: 'Europe/Lond' is not an IANA time zone such as Europe/London (or UTC)"),
    (freeze(timeZone="+01:00"), f"{KEY}.freeze[0].timeZone: '+01:00' is not an IANA time zone"),
    (freeze(timeZone="../../etc/passwd"), f"{KEY}.freeze[0].timeZone: '../../etc/passwd' is not an IANA time zone"),
    (freeze(timeZone="America"), f"{KEY}.freeze[0].timeZone: 'America' is not an IANA time zone"),
    (freeze(timeZone="localtime"), f"{KEY}.freeze[0].timeZone: 'localtime' is not an IANA time zone"),
    (freeze(timeZone="europe/london"), f"{KEY}.freeze[0].timeZone: 'europe/london' is not an IANA time zone"),
    (freeze(time_zone="UTC"), f"{KEY}.freeze[0].time_zone: unknown key; did you mean 'timeZone'?"),
    ({"freeze": [{"name": "w", "start": "22:00", "end": "06:00"}]}, f"{KEY}.freeze[0].timeZone is required"),
    (
        {"freeze": [{"name": "w", "start": "22:00", "end": "06:00", "timeZone": "UTC"}, {"name": "w", "start": "sat 00:00", "end": "mon 00:00", "timeZone": "UTC"}]},
        f"{KEY}.freeze[1].name: 'w' is listed twice; give each window its own name",
    ),
]


@pytest.mark.parametrize("promotion, expected", BAD, ids=[e[len(KEY) + 1 : len(KEY) + 60] for _, e in BAD])
def test_a_bad_promotion_names_key_value_and_what_is_allowed(promotion, expected):
    found = problems(promotion)
    assert any(p.startswith(expected) for p in found), found


def test_verify_on_a_rolling_service_is_refused_for_want_of_a_way_to_the_candidate():
    found = problems({"verify": {"command": ["pytest", "verify"]}}, strategy="rolling")
    assert found == [
        f"{KEY}.verify: a rolling release has no way to reach the candidate before patients (no tester header, no test listener): "
        "use canary or blue-green on this stack (carepath:services.chat-api.rollout.strategy), or drop verify"
    ]


@pytest.mark.parametrize("strategy", ["canary", "blue-green"])
def test_verify_is_accepted_where_the_candidate_can_be_reached_before_patients(strategy):
    assert promotion_of({"verify": {"command": ["pytest", "verify"]}}, strategy=strategy).verify is not None


def test_a_rolling_stage_without_verify_is_accepted():
    assert promotion_of({"after": "demo", "soakSeconds": 60}, strategy="rolling").after == "demo"


def test_every_promotion_problem_is_reported_at_once():
    found = problems(
        {"soakSeconds": -1, "freeze": [{"name": "W", "start": "25:00", "end": "fri 10:00", "timeZone": "Mars/Olympus"}], "verify": {"command": []}}
    )
    assert [p.split(":")[1].split(" ")[0] for p in found] == [
        "services.chat-api.promotion.soakSeconds",
        "services.chat-api.promotion.freeze[0].name",
        "services.chat-api.promotion.freeze[0].start",
        "services.chat-api.promotion.freeze[0].timeZone",
        "services.chat-api.promotion.verify.command",
    ]


@given(st.integers(0, 99), st.integers(0, 99))
def test_a_daily_time_is_accepted_exactly_when_its_hour_and_minute_exist(hour, minute):
    text = f"{hour:02d}:{minute:02d}"
    window = {"name": "w", "start": text, "end": "12:30" if text != "12:30" else "12:31", "timeZone": "UTC"}
    if hour <= 23 and minute <= 59:
        assert promotion_of({"freeze": [window]}).freeze[0].start == text
    else:
        assert any(p.startswith(f"{KEY}.freeze[0].start: {text!r} has") for p in problems({"freeze": [window]}))


@given(st.sampled_from(WEEKDAYS), st.sampled_from(WEEKDAYS), st.integers(0, 23), st.integers(0, 23))
def test_weekly_windows_wrap_and_only_a_window_that_never_closes_is_refused(first, last, start, end):
    window: Mapping[str, Any] = {"name": "w", "start": f"{first} {start:02d}:00", "end": f"{last} {end:02d}:00", "timeZone": "Europe/London"}
    if (first, start) == (last, end):
        assert any("equals start" in p for p in problems({"freeze": [window]}))
    else:
        assert promotion_of({"freeze": [window]}).freeze[0].end == window["end"]


@pytest.mark.parametrize("zone", ["UTC", "Europe/London", "America/New_York", "Australia/Lord_Howe", "Etc/GMT+5", "America/Argentina/Buenos_Aires"])
def test_iana_zones_are_accepted(zone):
    assert promotion_of(freeze(timeZone=zone)).freeze[0].time_zone == zone


def test_a_freeze_window_built_in_code_is_checked_as_in_config():
    with pytest.raises(ValueError, match="is a daily time but start is weekly"):
        FreezeSettings(name="w", start="fri 16:00", end="08:00", time_zone="UTC")


@given(st.text(max_size=24), st.text(max_size=24))
def test_any_text_as_a_bound_or_a_zone_is_accepted_or_a_problem_naming_its_key(bound, zone):
    window = {"name": "w", "start": bound, "end": "12:00", "timeZone": zone}
    try:
        parsed = promotion_of({"freeze": [window]})
    except SettingsError as error:
        assert all(p.startswith(f"{KEY}.freeze[0].") for p in error.problems), error.problems
    else:
        assert parsed.freeze[0].start == bound and parsed.freeze[0].time_zone == zone

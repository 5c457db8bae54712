"""Freeze windows: which window is open at an instant and when the windows thaw, in every form and
zone, across the clocks' changes."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.freeze import HORIZON, FrozenForever, describe, frozen_by, thaws_at
from core.settings import FreezeSettings
from core.settings.fields import WEEKDAYS

UTC = datetime.timezone.utc
LONDON = ZoneInfo("Europe/London")
ZONES = ["Europe/London", "America/New_York", "Australia/Lord_Howe", "UTC"]


def window(start: str, end: str, zone: str = "Europe/London", name: str = "w") -> FreezeSettings:
    return FreezeSettings(name=name, start=start, end=end, time_zone=zone)


def london(*parts: int) -> datetime.datetime:
    return datetime.datetime(*parts, tzinfo=LONDON)  # type: ignore[misc]


def utc(*parts: int) -> datetime.datetime:
    return datetime.datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# --- examples -----------------------------------------------------------------------------------

WEEKEND = window("fri 16:00", "mon 08:00", name="weekend")


# Late March: the clocks go forward on Sunday 29 March 2026; late October: back on Sunday 25 October.
@pytest.mark.parametrize("friday", [datetime.date(2026, 3, 27), datetime.date(2026, 10, 23)], ids=["spring", "autumn"])
def test_a_weekend_window_covers_saturday_noon_and_ends_at_monday_eight_local(friday):
    saturday, monday = friday + datetime.timedelta(days=1), friday + datetime.timedelta(days=3)
    assert frozen_by([WEEKEND], london(saturday.year, saturday.month, saturday.day, 12)) is WEEKEND
    assert frozen_by([WEEKEND], london(friday.year, friday.month, friday.day, 16)) is WEEKEND
    assert frozen_by([WEEKEND], london(monday.year, monday.month, monday.day, 7, 59, 59)) is WEEKEND
    assert frozen_by([WEEKEND], london(monday.year, monday.month, monday.day, 8)) is None
    assert frozen_by([WEEKEND], london(friday.year, friday.month, friday.day, 15, 59, 59)) is None
    thawed = thaws_at([WEEKEND], london(saturday.year, saturday.month, saturday.day, 12))
    assert thawed == london(monday.year, monday.month, monday.day, 8)


def test_the_weekend_is_an_hour_shorter_when_the_clocks_go_forward_and_longer_when_they_go_back():
    spring = thaws_at([WEEKEND], london(2026, 3, 27, 16)) - london(2026, 3, 27, 16)
    autumn = thaws_at([WEEKEND], london(2026, 10, 23, 16)) - london(2026, 10, 23, 16)
    assert (spring, autumn) == (datetime.timedelta(hours=63), datetime.timedelta(hours=65))


def test_a_time_the_clock_skips_bounds_the_window_at_the_jump():
    # 29 March 2026, London: 01:00 GMT jumps to 02:00 BST (01:00 UTC).
    skipped = window("01:30", "01:45")
    assert frozen_by([skipped], utc(2026, 3, 29, 0, 59)) is None and frozen_by([skipped], utc(2026, 3, 29, 1, 0)) is None
    assert frozen_by([skipped], utc(2026, 3, 30, 0, 40)) is skipped  # 01:40 BST the next night
    across = window("01:30", "02:30")
    assert frozen_by([across], utc(2026, 3, 29, 0, 59, 59)) is None
    assert frozen_by([across], utc(2026, 3, 29, 1, 0)) is across
    assert thaws_at([across], utc(2026, 3, 29, 1, 0)) == utc(2026, 3, 29, 1, 30)  # 02:30 BST


def test_a_time_the_clock_shows_twice_is_its_first_showing():
    # 25 October 2026, London: 02:00 BST goes back to 01:00 GMT (01:00 UTC), so 01:xx comes twice.
    twice = window("01:30", "01:45")
    assert frozen_by([twice], utc(2026, 10, 25, 0, 30)) is twice  # 01:30 BST
    assert frozen_by([twice], utc(2026, 10, 25, 1, 30)) is None  # 01:30 GMT, the second showing
    assert thaws_at([twice], utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 25, 0, 45)


def test_lord_howes_half_hour_change_is_followed():
    # Lord Howe Island goes from +10:30 to +11 at 02:00 on the first Sunday of October (4 October 2026, 15:30 UTC the day before).
    skipped = window("02:00", "02:20", "Australia/Lord_Howe")
    assert frozen_by([skipped], utc(2026, 10, 3, 15, 29, 59)) is None
    assert frozen_by([skipped], utc(2026, 10, 3, 15, 30)) is None  # the jump itself: 02:30 is already past the window
    across = window("02:10", "03:00", "Australia/Lord_Howe")
    assert frozen_by([across], utc(2026, 10, 3, 15, 30)) is across
    assert thaws_at([across], utc(2026, 10, 3, 15, 30)) == utc(2026, 10, 3, 16, 0)


def test_a_daily_window_wraps_past_midnight():
    nightly = window("22:00", "06:00", "UTC")
    assert frozen_by([nightly], utc(2026, 5, 1, 23)) is nightly and frozen_by([nightly], utc(2026, 5, 2, 5, 59)) is nightly
    assert frozen_by([nightly], utc(2026, 5, 1, 21, 59)) is None and frozen_by([nightly], utc(2026, 5, 2, 6)) is None
    assert thaws_at([nightly], utc(2026, 5, 1, 23)) == utc(2026, 5, 2, 6)


def test_a_dated_window_is_read_in_its_zone():
    year_end = window("2026-12-23 00:00", "2027-01-04 09:00", "America/New_York", "year-end")
    assert frozen_by([year_end], utc(2026, 12, 23, 4, 59)) is None  # 23:59 on the 22nd in New York
    assert frozen_by([year_end], utc(2026, 12, 23, 5)) is year_end
    assert thaws_at([year_end], utc(2026, 12, 25)) == utc(2027, 1, 4, 14)
    assert frozen_by([year_end], utc(2027, 1, 4, 14)) is None


def test_chained_and_overlapping_windows_are_followed_through():
    morning, noon, afternoon = window("09:00", "12:00", "UTC"), window("12:00", "13:00", "UTC"), window("12:30", "15:00", "UTC")
    assert thaws_at([morning, noon], utc(2026, 5, 1, 10)) == utc(2026, 5, 1, 13)
    assert thaws_at([afternoon, morning, noon], utc(2026, 5, 1, 10)) == utc(2026, 5, 1, 15)
    assert thaws_at([morning], utc(2026, 5, 1, 10)) == utc(2026, 5, 1, 12)


def test_the_first_listed_open_window_is_named():
    wide, narrow = window("08:00", "18:00", "UTC", "wide"), window("11:00", "13:00", "UTC", "narrow")
    assert frozen_by([narrow, wide], utc(2026, 5, 1, 12)) is narrow
    assert frozen_by([wide, narrow], utc(2026, 5, 1, 12)) is wide
    assert frozen_by([narrow, wide], utc(2026, 5, 1, 14)) is wide


def test_an_unfrozen_instant_thaws_at_itself_as_given():
    at = london(2026, 5, 1, 12)
    assert thaws_at([], at) is at and thaws_at([window("13:00", "14:00")], at) is at
    assert frozen_by([], at) is None


def test_windows_that_leave_no_instant_open_are_frozen_forever():
    halves = [window("00:00", "12:00", "UTC"), window("12:00", "00:00", "UTC")]
    with pytest.raises(FrozenForever, match=r"no instant is open in the 400 days from 2026-05-01T10:00:00\+00:00"):
        thaws_at(halves, utc(2026, 5, 1, 10))
    assert issubclass(FrozenForever, ValueError)
    # Every weekday's window ending when the next one starts, all week round.
    week = [window(f"{day} 00:00", f"{following} 00:00", "UTC") for day, following in zip(WEEKDAYS, (*WEEKDAYS[1:], WEEKDAYS[0]), strict=True)]
    with pytest.raises(FrozenForever):
        thaws_at(week, utc(2026, 5, 1, 10))


def test_a_naive_instant_is_refused():
    naive = datetime.datetime(2026, 5, 1, 12)
    with pytest.raises(ValueError, match=r"^2026-05-01T12:00:00 is a naive time: give an aware one"):
        frozen_by([WEEKEND], naive)
    with pytest.raises(ValueError, match="naive"):
        thaws_at([], naive)


@pytest.mark.parametrize(
    "freeze, expected",
    [
        (window("2026-12-23 00:00", "2027-01-04 09:00", "America/New_York", "year-end"), "year-end (2026-12-23 00:00 to 2027-01-04 09:00 America/New_York)"),
        (WEEKEND, "weekend (fri 16:00 to mon 08:00 Europe/London)"),
        (window("22:00", "06:00", "UTC", "nightly"), "nightly (daily 22:00 to 06:00 UTC)"),
    ],
)
def test_a_window_is_described_with_its_bounds_and_zone(freeze, expected):
    assert describe(freeze) == expected


# --- properties -----------------------------------------------------------------------------------

# Hours around the clocks' changes (01:00 to 03:00 local) come up often.
hours = st.one_of(st.integers(0, 23), st.sampled_from([0, 1, 2, 3]))
minutes = st.sampled_from([0, 10, 15, 30, 45, 59])


@st.composite
def windows(draw) -> FreezeSettings:
    zone = draw(st.sampled_from(ZONES))
    kind = draw(st.sampled_from(["daily", "weekly", "dated"]))
    if kind == "dated":
        opens = draw(st.datetimes(datetime.datetime(2026, 1, 1), datetime.datetime(2027, 12, 31))).replace(second=0, microsecond=0)
        closes = opens + datetime.timedelta(minutes=draw(st.integers(1, 30 * 1440)))
        return window(opens.strftime("%Y-%m-%d %H:%M"), closes.strftime("%Y-%m-%d %H:%M"), zone)
    start, end = f"{draw(hours):02d}:{draw(minutes):02d}", f"{draw(hours):02d}:{draw(minutes):02d}"
    if kind == "weekly":
        start, end = f"{draw(st.sampled_from(WEEKDAYS))} {start}", f"{draw(st.sampled_from(WEEKDAYS))} {end}"
    if start == end:  # refused by the settings: a window that never closes (no minute above is 01)
        end = end[:-2] + "01"
    return window(start, end, zone)


# The clocks' changes of 2026 in the zones above, as UTC instants.
CHANGES = [utc(2026, 3, 8, 7), utc(2026, 11, 1, 6), utc(2026, 3, 29, 1), utc(2026, 10, 25, 1), utc(2026, 4, 4, 15), utc(2026, 10, 3, 15, 30)]
instants = st.one_of(
    st.datetimes(datetime.datetime(2026, 1, 1), datetime.datetime(2027, 12, 31), timezones=st.just(UTC)),
    st.builds(lambda change, seconds: change + datetime.timedelta(seconds=seconds), st.sampled_from(CHANGES), st.integers(-3 * 86400, 3 * 86400)),
)


@given(st.lists(windows(), max_size=3), instants)
def test_the_thaw_is_open_and_every_instant_before_it_frozen(freeze, at):
    try:
        thawed = thaws_at(freeze, at)
    except FrozenForever:
        assert frozen_by(freeze, at) is not None and frozen_by(freeze, at + HORIZON / 2) is not None
        return
    assert thawed >= at
    assert frozen_by(freeze, thawed) is None
    if frozen_by(freeze, at) is None:
        assert thawed == at
    else:
        span = thawed - at
        samples = [at + span * k / 16 for k in range(16)] + [thawed - datetime.timedelta(microseconds=1)]
        assert all(frozen_by(freeze, sample) is not None for sample in samples)


@given(st.integers(0, 1439), st.integers(1, 1439), st.datetimes(datetime.datetime(2026, 1, 1), datetime.datetime(2027, 12, 31), timezones=st.just(UTC)))
def test_a_daily_utc_window_covers_exactly_its_minutes_of_the_day(start, length, at):
    end = (start + length) % 1440
    freeze = window(f"{start // 60:02d}:{start % 60:02d}", f"{end // 60:02d}:{end % 60:02d}", "UTC")
    into_day = at.hour * 60 + at.minute + (at.second + at.microsecond / 1e6) / 60
    assert (frozen_by([freeze], at) is not None) == ((into_day - start) % 1440 < length)


@given(st.permutations(WEEKDAYS), st.sampled_from(ZONES), instants)
def test_a_weekly_window_is_open_exactly_on_its_days(days, zone, at):
    # Whole days (00:00 to 00:00) in the window's zone: open on the days from `first` up to, not including, `last`.
    first, last = days[:2]
    freeze = window(f"{first} 00:00", f"{last} 00:00", zone)
    day = WEEKDAYS.index(at.astimezone(ZoneInfo(zone)).strftime("%a").lower())
    days = (WEEKDAYS.index(last) - WEEKDAYS.index(first)) % 7
    assert (frozen_by([freeze], at) is not None) == ((day - WEEKDAYS.index(first)) % 7 < days)

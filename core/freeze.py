"""Freeze windows (`services.<name>.promotion.freeze`): while one is open, nothing enters the stage.

A window covers the instants from its start up to, not including, its end. Its bounds are
wall-clock times in its zone: daily "HH:MM", weekly "ddd HH:MM" and dated "YYYY-MM-DD HH:MM"
(`core.settings.fields.wall_time`); a daily or weekly window whose end comes before its start
ends on the next day or week.

Where the clock changes, each bound is the first instant at which the zone's clock reads that
time or later: a time the clock skips (spring forward: 01:30 in London on the last Sunday of
March) is the instant of the jump, and a time it shows twice (fall back) is its first showing
(zoneinfo's fold=0). So a change never turns a window inside out; one that lies wholly in
skipped time is empty that day. Instants given must be aware: a naive one is refused.
"""

from __future__ import annotations

import datetime
from typing import Iterator, Optional, Sequence
from zoneinfo import ZoneInfo

from core.settings.fields import wall_time
from core.settings.service import FreezeSettings

UTC = datetime.timezone.utc
# How far `thaws_at` looks for an open instant before it calls the windows endless.
HORIZON = datetime.timedelta(days=400)

Interval = tuple[datetime.datetime, datetime.datetime]


class FrozenForever(ValueError):
    """The windows leave no instant open within `HORIZON`."""


def _aware(at: datetime.datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at.isoformat()} is a naive time: give an aware one (with its zone), such as datetime.now(timezone.utc)")


def _instant(local: datetime.datetime, zone: ZoneInfo) -> datetime.datetime:
    """The first instant (UTC) at which the clock in `zone` reads `local` or later."""
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == local:
        return first  # the clock shows it; fold=0 is its first showing
    # Skipped: the two folds read it with the offsets on either side of the jump, so the jump
    # lies between them. Transitions fall on whole seconds; halve to the first second after it.
    low, high = sorted((local.replace(tzinfo=zone, fold=1).astimezone(UTC), first))
    before = low.astimezone(zone).utcoffset()
    seconds = int((high - low).total_seconds())
    while seconds > 1:
        middle = low + datetime.timedelta(seconds=seconds // 2)
        if middle.astimezone(zone).utcoffset() == before:
            low = middle
        else:
            high = middle
        seconds = int((high - low).total_seconds())
    return high


def _intervals(window: FreezeSettings, since: datetime.datetime, until: datetime.datetime) -> Iterator[Interval]:
    """The window's non-empty intervals (UTC) that may cover an instant from `since` to `until`
    (a few more besides: callers compare)."""
    zone = ZoneInfo(window.time_zone)
    start, end = wall_time(window.start), wall_time(window.end)
    if start.kind == "dated":
        assert start.day is not None and end.day is not None  # dated bounds carry their day
        bounds = [(datetime.datetime.combine(start.day, datetime.time(start.hour, start.minute)),
                   datetime.datetime.combine(end.day, datetime.time(end.hour, end.minute)))]
    else:
        period = 1440 if start.kind == "daily" else 7 * 1440
        length = datetime.timedelta(minutes=(end.minutes - start.minutes) % period)
        # An occurrence shorter than its period, started a period (and a clock change) before `since`, may still cover it.
        day = since.astimezone(zone).date() - datetime.timedelta(days=period // 1440 + 1)
        last = until.astimezone(zone).date() + datetime.timedelta(days=1)
        bounds = []
        while day <= last:
            if start.weekday is None or day.weekday() == start.weekday:
                opens = datetime.datetime.combine(day, datetime.time(start.hour, start.minute))
                bounds.append((opens, opens + length))
            day += datetime.timedelta(days=1)
    for opens, closes in bounds:
        interval = (_instant(opens, zone), _instant(closes, zone))
        if interval[0] < interval[1]:
            yield interval


def frozen_by(windows: Sequence[FreezeSettings], at: datetime.datetime) -> Optional[FreezeSettings]:
    """The window open at `at` (an aware datetime), the first listed if several; None: not frozen."""
    _aware(at)
    for window in windows:
        if any(opens <= at < closes for opens, closes in _intervals(window, at, at)):
            return window
    return None


def thaws_at(windows: Sequence[FreezeSettings], at: datetime.datetime) -> datetime.datetime:
    """The first instant at or after `at` (aware) that no window covers: `at` itself when none
    does, else an instant in UTC; windows that chain or overlap are followed through. Raises
    FrozenForever when no instant is open within `HORIZON` of `at` (daily windows 00:00 to 12:00
    and 12:00 to 00:00 together, say)."""
    _aware(at)
    limit = at + HORIZON
    cursor = at
    # By start: the first interval starting after the cursor leaves it open, and so do all later ones.
    for opens, closes in sorted(interval for window in windows for interval in _intervals(window, at, limit)):
        if opens > cursor:
            break
        cursor = max(cursor, closes)
    if cursor >= limit:
        listed = "; ".join(describe(window) for window in windows)
        raise FrozenForever(f"no instant is open in the {HORIZON.days} days from {at.isoformat()}: the freeze windows ({listed}) cover them all")
    return cursor


def describe(window: FreezeSettings) -> str:
    """The window as messages name it: "year-end (2026-12-23 00:00 to 2027-01-04 09:00 America/New_York)"."""
    daily = "daily " if wall_time(window.start).kind == "daily" else ""
    return f"{window.name} ({daily}{window.start} to {window.end} {window.time_zone})"

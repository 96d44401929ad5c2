"""Quiet hours in the recipient's own zone, across DST changes (deferred, never dropped)."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.quiet_hours import DEFAULT_RULES, QuietWindow, UnknownTimeZone, next_allowed

UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("frozen", "zone", "expected", "why"),
    [
        # New York springs forward on 2026-03-08: the night is one hour shorter
        ("2026-03-08T03:00:00Z", "America/New_York", utc(2026, 3, 8, 12), "22:00 EST -> 08:00 EDT"),
        # and falls back on 2026-11-01: the night is one hour longer
        ("2026-11-01T02:00:00Z", "America/New_York", utc(2026, 11, 1, 13), "22:00 EDT -> 08:00 EST"),
        # Paris springs forward on 2026-03-29 and falls back on 2026-10-25
        ("2026-03-28T22:30:00Z", "Europe/Paris", utc(2026, 3, 29, 6), "23:30 CET -> 08:00 CEST"),
        ("2026-10-24T20:00:00Z", "Europe/Paris", utc(2026, 10, 25, 7), "22:00 CEST -> 08:00 CET"),
        # Auckland (southern hemisphere): DST ends 2026-04-05, starts 2026-09-27
        ("2026-04-04T08:30:00Z", "Pacific/Auckland", utc(2026, 4, 4, 20), "21:30 NZDT -> 08:00 NZST"),
        ("2026-09-26T09:00:00Z", "Pacific/Auckland", utc(2026, 9, 26, 19), "21:00 NZST -> 08:00 NZDT"),
        # early morning: later the same local day
        ("2026-07-01T11:59:00Z", "America/New_York", utc(2026, 7, 1, 12), "07:59 EDT -> 08:00 EDT"),
    ],
)
def test_sms_in_quiet_hours_is_deferred_to_eight_local_across_dst(frozen, zone, expected, why) -> None:
    with freeze_time(frozen):
        now = datetime.now(UTC)
        assert next_allowed(now, zone, "sms", DEFAULT_RULES) == expected, why
        assert next_allowed(now, zone, "push", DEFAULT_RULES) == expected, why
        assert next_allowed(now, zone, "email", DEFAULT_RULES) == now  # email is never quiet
        assert expected.astimezone(ZoneInfo(zone)).time() == time(8, 0)


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Paris", "Pacific/Auckland"])
def test_daytime_sends_go_now(zone: str) -> None:
    noon_local = datetime(2026, 3, 29, 12, 0, tzinfo=ZoneInfo(zone))
    with freeze_time(noon_local):
        now = datetime.now(UTC)
        assert next_allowed(now, zone, "sms") == now


def test_window_ending_inside_a_spring_forward_gap_ends_right_after_the_gap() -> None:
    rules = {"sms": QuietWindow(time(22, 0), time(2, 30))}
    with freeze_time("2026-03-08T04:00:00Z"):  # 23:00 EST, the night New York skips 02:00-03:00
        until = next_allowed(datetime.now(UTC), "America/New_York", "sms", rules)
    assert until == utc(2026, 3, 8, 7, 0)  # 03:00 EDT, the first instant after the gap
    assert until.astimezone(ZoneInfo("America/New_York")).time() == time(3, 0)


def test_unknown_zone_and_naive_now_are_refused() -> None:
    with pytest.raises(UnknownTimeZone, match="Mars/Olympus"):
        next_allowed(utc(2026, 1, 1, 23), "Mars/Olympus", "sms")
    with pytest.raises(ValueError, match="aware"):
        next_allowed(datetime(2026, 1, 1, 23), "UTC", "sms")


def test_parse_windows_from_settings() -> None:
    assert QuietWindow.parse("21:00-08:00") == QuietWindow(time(21), time(8))
    assert QuietWindow.parse("") is None
    with pytest.raises(ValueError, match="HH:MM"):
        QuietWindow.parse("9pm-8am")


zones = st.sampled_from(["America/New_York", "Europe/Paris", "Pacific/Auckland", "Asia/Kolkata", "UTC"])
instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC)
)


@settings(max_examples=300, deadline=None)
@given(instants, zones)
def test_deferral_is_the_first_allowed_instant(now: datetime, zone: str) -> None:
    until = next_allowed(now, zone, "sms")
    window = DEFAULT_RULES["sms"]
    assert window is not None
    local_now = now.astimezone(ZoneInfo(zone)).time()
    if not window.contains(local_now):
        assert until == now
        return
    assert now < until <= now + timedelta(hours=12)  # deferred, never dropped, never more than a night
    assert not window.contains(until.astimezone(ZoneInfo(zone)).time())
    just_before = until - timedelta(minutes=1)
    assert just_before < now or window.contains(just_before.astimezone(ZoneInfo(zone)).time())

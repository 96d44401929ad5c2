"""Option parsing shared by commands: instants and key=value parameters."""

from __future__ import annotations

from datetime import datetime, timezone

from audiences.errors import InvalidParameter


# instants a loyalty program can mean; beyond them date arithmetic (windows, schedules) overflows
EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2999, 12, 31, tzinfo=timezone.utc)


def parse_instant(raw: str | None, option: str = "--at") -> datetime:
    """An aware UTC instant from ISO text (a date means its midnight UTC); None means now."""
    if raw is None:
        return datetime.now(timezone.utc)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidParameter(f"{option} {raw!r} is not an ISO date or datetime (e.g. 2026-11-23 or 2026-11-23T10:00+01:00)") from None
    try:
        value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    except OverflowError:
        value = LATEST.replace(year=9999)
    if not EARLIEST <= value <= LATEST:
        raise InvalidParameter(f"{option} {raw!r} is out of range: use a date between {EARLIEST.date()} and {LATEST.date()}")
    return value


def parse_pairs(pairs: list[str] | None, option: str = "--param") -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidParameter(f"{option} {pair!r} must look like name=value")
        out[key.strip()] = value.strip()
    return out

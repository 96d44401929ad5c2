"""Numbers, money, dates and times in the recipient's locale and time zone (Babel), as Jinja filters.

The filters read `locale` and `time_zone` from the render context, so a template writes
`{{ points|number }}` or `{{ expires_at|date }}` and never names a locale. Money is in the program's
currency (`{{ 1|currency }}`) unless the template names another (`{{ amount|currency(currency) }}`). Results are cached:
a mailing formats the same few values (points, expiry dates) for thousands of recipients.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import dates as babel_dates
from babel import numbers as babel_numbers
from jinja2 import pass_context
from jinja2.runtime import Context

from templates.locales import babel_locale, normalize_locale

Number = int | float | Decimal


@lru_cache(maxsize=512)
def _zone(name: str | None) -> ZoneInfo | timezone:
    if not name:
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def _local(value: datetime, time_zone: str | None) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} given to a template; datetimes must be aware (UTC)")
    return value.astimezone(_zone(time_zone))


@lru_cache(maxsize=8192)
def format_number(value: Number, locale: str | None) -> str:
    return babel_numbers.format_decimal(value, locale=babel_locale(locale))


@lru_cache(maxsize=8192)
def format_money(value: Number, currency: str, locale: str | None) -> str:
    return babel_numbers.format_currency(value, currency, locale=babel_locale(locale))


@lru_cache(maxsize=1024)
def format_percent(value: Number, locale: str | None) -> str:
    """`value` is a whole percentage (20 means 20 %), as offers are stored."""
    return babel_numbers.format_percent(Decimal(str(value)) / 100, locale=babel_locale(locale))


@lru_cache(maxsize=8192)
def format_day(value: date | datetime, fmt: str, locale: str | None, time_zone: str | None) -> str:
    day = _local(value, time_zone).date() if isinstance(value, datetime) else value
    return babel_dates.format_date(day, format=fmt, locale=babel_locale(locale))


@lru_cache(maxsize=8192)
def format_clock(value: datetime, fmt: str, locale: str | None, time_zone: str | None) -> str:
    """The time of day only: a template that already said the date says `at {{ x|time }}`, not the
    date again (`datetime('short')` after `date('full')` printed "November 3, 2026 at 11/3/26, 12:00 AM")."""
    return babel_dates.format_time(_local(value, time_zone), format=fmt, locale=babel_locale(locale))


@lru_cache(maxsize=8192)
def format_moment(value: datetime, fmt: str, locale: str | None, time_zone: str | None) -> str:
    return babel_dates.format_datetime(_local(value, time_zone), format=fmt, locale=babel_locale(locale))


def _ctx_locale(ctx: Context) -> str | None:
    return ctx.get("locale")


@lru_cache(maxsize=1024)
def formatting_locale(member_locale: str | None, template_locale: str) -> str:
    """The locale numbers and dates are formatted in: the member's, when the template is in the member's
    language (en-GB reads an `en` template with British dates, fr-CA a `fr` one with Canadian ones);
    the template's own when it fell back to another language, so a ja member on an English template
    reads English dates, not Japanese dates inside English sentences."""
    member = normalize_locale(member_locale)
    template = normalize_locale(template_locale)
    if member.split("-")[0] == template.split("-")[0]:
        return member
    return template


@pass_context
def number_filter(ctx: Context, value: Number) -> str:
    return format_number(value, _ctx_locale(ctx))


@pass_context
def currency_filter(ctx: Context, value: Number, currency: str | None = None) -> str:
    """Money in the member's locale, in `currency` or else the program's (LOYALFLOW_CURRENCY)."""
    code = currency or (ctx.get("program") or {}).get("currency")
    if not code:
        raise ValueError("currency filter: no currency given and the context's program has none")
    return format_money(value, code, _ctx_locale(ctx))


@pass_context
def percent_filter(ctx: Context, value: Number) -> str:
    return format_percent(value, _ctx_locale(ctx))


@pass_context
def date_filter(ctx: Context, value: date | datetime, fmt: str = "long") -> str:
    return format_day(value, fmt, _ctx_locale(ctx), ctx.get("time_zone"))


@pass_context
def time_filter(ctx: Context, value: datetime, fmt: str = "short") -> str:
    return format_clock(value, fmt, _ctx_locale(ctx), ctx.get("time_zone"))


@pass_context
def datetime_filter(ctx: Context, value: datetime, fmt: str = "medium") -> str:
    return format_moment(value, fmt, _ctx_locale(ctx), ctx.get("time_zone"))


FILTERS: dict[str, Any] = {
    "number": number_filter,
    "currency": currency_filter,
    "percent": percent_filter,
    "date": date_filter,
    "time": time_filter,
    "datetime": datetime_filter,
}

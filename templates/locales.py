"""Locale names and the fallback chain: fr-CA, then fr, then the default locale."""

from __future__ import annotations

from functools import lru_cache

from babel import Locale, UnknownLocaleError

DEFAULT_LOCALE = "en"
SUPPORTED_LOCALES: tuple[str, ...] = ("en", "fr", "fr-CA", "de", "es", "ja")


@lru_cache(maxsize=1024)
def normalize_locale(locale: str | None) -> str:
    """`fr_ca`, `FR-ca` and `fr-CA` are one locale: language lower case, region upper case."""
    if not locale:
        return DEFAULT_LOCALE
    parts = locale.replace("_", "-").strip().split("-")
    language = parts[0].lower()
    rest = [p.upper() if len(p) == 2 else p.title() for p in parts[1:] if p]
    return "-".join([language, *rest])


def fallback_chain(locale: str | None, default: str = DEFAULT_LOCALE) -> tuple[str, ...]:
    """The locales to try, most specific first: ("fr-CA", "fr", "en")."""
    name = normalize_locale(locale)
    parts = name.split("-")
    chain = ["-".join(parts[:i]) for i in range(len(parts), 0, -1)]
    chain.append(default)
    return tuple(dict.fromkeys(chain))


@lru_cache(maxsize=256)
def babel_locale(locale: str | None) -> Locale:
    """The Babel locale for formatting; an unknown one falls back along the chain, then to English."""
    for candidate in fallback_chain(locale):
        try:
            return Locale.parse(candidate.replace("-", "_"))
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse(DEFAULT_LOCALE)

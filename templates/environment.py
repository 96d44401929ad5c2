"""The two Jinja environments: HTML (autoescaped) and plain text (SMS, push, subjects, text parts).

Both use StrictUndefined, so a missing variable is an error, never an empty string in a message.
"""

from __future__ import annotations

from functools import lru_cache

from jinja2 import Environment, StrictUndefined

from templates.formatting import FILTERS


def _make(autoescape: bool) -> Environment:
    env = Environment(
        autoescape=autoescape,
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        cache_size=0,
    )
    env.filters.update(FILTERS)
    return env


@lru_cache(maxsize=1)
def html_env() -> Environment:
    return _make(autoescape=True)


@lru_cache(maxsize=1)
def text_env() -> Environment:
    return _make(autoescape=False)

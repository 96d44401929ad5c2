"""The two Jinja environments: HTML (autoescaped) and plain text (SMS, push, subjects, text parts).

Both use StrictUndefined, so a missing variable is an error, never an empty string in a message.
Both are sandboxed: a template is data that arrives by pull request, and `loyalflow check` renders
it in CI, so it must not reach Python internals (`cycler.__init__.__globals__.os`). Immutable too:
a template cannot change the lists and dicts of the context it is given, which other recipients'
renders share. Attribute names starting with `_` are refused when the template compiles
(jinja_tools.py), and anything dynamic by the sandbox as it renders.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Environment, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from templates.formatting import FILTERS


_DICT_ATTRIBUTES = frozenset(dir(dict))


class _Sandbox(ImmutableSandboxedEnvironment):
    """`member.first_name` on a plain dict, the commonest lookup in a message: the sandbox tries the
    attribute, catches the AttributeError, then takes the item (5% of a send's CPU in exceptions).
    For a plain dict and a name that is no dict attribute that is the item, so it is taken at once;
    everything else (`d.items`, objects, unsafe names) goes the sandbox's own way."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass  # the sandbox's own way: undefined, which StrictUndefined turns into an error
        return super().getattr(obj, attribute)


def _make(autoescape: bool) -> Environment:
    env = _Sandbox(
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

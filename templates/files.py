"""Template files on disk: where a template lives and what its name says (journey, step, locale, channel).

Layout (under the program's `templates/` folder, `templates/library/` for the shipped program, unless
another root is given):

    <journey>/<step>.<locale>.mjml       email: front matter (purpose, subject, preheader) + MJML with Jinja
    <journey>/<step>.<locale>.sms.txt    SMS: front matter (purpose, max_segments) + Jinja text
    <journey>/<step>.<locale>.push.json  push: {"purpose", "title", "body", "deep_link", "data"}, Jinja strings
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from templates.errors import (
    TemplateError,
)
from templates.locales import normalize_locale
from templates.vocabulary import Channel

DEFAULT_ROOT = Path(__file__).parent / "library"
SUFFIXES: dict[str, Channel] = {".push.json": "push", ".sms.txt": "sms", ".mjml": "email"}
_NAME = re.compile(r"^(?P<step>[a-z][a-z0-9_]*)\.(?P<locale>[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*)$")


def display_path(path: Path) -> str:
    """The path relative to the working directory when inside it: short, clickable in a terminal."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


@dataclass(frozen=True, slots=True)
class TemplateFile:
    journey: str
    step: str
    locale: str
    channel: Channel
    path: Path
    name: str
    """The path as shown in errors (relative to the working directory when inside it)."""


def split_name(path: Path, root: Path) -> TemplateFile | None:
    for suffix, channel in SUFFIXES.items():
        if path.name.endswith(suffix):
            stem = path.name[: -len(suffix)]
            match = _NAME.match(stem)
            if not match:
                raise TemplateError(display_path(path), None, "template file name must be <step>.<locale>" + suffix)
            journey = path.parent.relative_to(root).as_posix()
            return TemplateFile(journey, match["step"], normalize_locale(match["locale"]), channel, path, display_path(path))
    return None

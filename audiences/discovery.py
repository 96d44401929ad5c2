"""The program's own audiences, found in `<program>/audiences/` without registry edits.

`<name>.sql` is an SQL audience (audiences/sql_files.py); `<name>.py` is a Python query for what SQL
cannot say, defining `AUDIENCE = SomeAudience()` (a subclass of audiences.queries.base.Audience).
A file that fails to load is kept as a problem with its place, so one bad file hides no other.
"""

from __future__ import annotations

import importlib.util
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from audiences.program_dir import audiences_folder
from audiences.queries.base import Audience
from audiences.sql_files import AudienceFileError, SqlAudience, parse_sql_file


@dataclass
class Found:
    audiences: dict[str, Audience] = field(default_factory=dict)
    problems: dict[str, AudienceFileError] = field(default_factory=dict)
    """By audience name (the file's stem): what is wrong with its file."""


def _shown(path: Path) -> str:
    import os

    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def _load_python(path: Path) -> Audience:
    spec = importlib.util.spec_from_file_location(f"loyalflow_audience_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise AudienceFileError(_shown(path), exc.lineno, f"syntax error: {exc.msg}") from None
    except Exception as exc:  # a broken audience must not hide the others
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
        raise AudienceFileError(_shown(path), frames[-1].lineno if frames else None,
                                f"{type(exc).__name__}: {exc}") from None
    audience = getattr(module, "AUDIENCE", None)
    if not isinstance(audience, Audience):
        raise AudienceFileError(_shown(path), 1, "defines no `AUDIENCE = SomeAudience()` (an Audience instance)")
    if getattr(audience, "name", None) != path.stem:
        raise AudienceFileError(_shown(path), 1, f"AUDIENCE.name is {getattr(audience, 'name', None)!r}; "
                                                 f"it must be the file's name {path.stem!r}")
    return audience


def load_folder(folder: Path) -> Found:
    found = Found()
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        if path.name.startswith(("_", ".")) or path.suffix not in (".sql", ".py"):
            continue
        name = path.stem
        try:
            if name in found.audiences:
                raise AudienceFileError(_shown(path), None, f"audience {name!r} is defined twice (.sql and .py)")
            audience = (SqlAudience(parse_sql_file(path, _shown(path)), _shown(path)) if path.suffix == ".sql"
                        else _load_python(path))
        except AudienceFileError as exc:
            found.problems[name] = exc
            continue
        found.audiences[name] = audience
    return found


_cache: dict[tuple, Found] = {}


def program_audiences() -> Found:
    """The current program's audience files (cached until a file changes)."""
    folder = audiences_folder()
    if folder is None or not folder.is_dir():
        return Found()
    stamp = tuple((p.name, p.stat().st_mtime_ns) for p in sorted(folder.iterdir()) if p.is_file())
    key = (str(folder), stamp)
    if key not in _cache:
        _cache.clear()
        _cache[key] = load_folder(folder)
    return _cache[key]


def database_problems(engine: object) -> list[tuple[str, int | None, str]]:
    """(file, line, message) for each program SQL audience the database refuses, or whose result lacks
    a declared column: found by `loyalflow check` before a tick would fail on it."""
    from datetime import datetime, timezone

    from sqlalchemy.exc import SQLAlchemyError

    from audiences.db import session_scope

    out: list[tuple[str, int | None, str]] = []
    for name, audience in program_audiences().audiences.items():
        if not isinstance(audience, SqlAudience):
            continue
        try:
            defaults = {p.name: p.default for p in audience.spec.params if p.default is not None}
            params = audience.params(**defaults)
        except Exception:  # noqa: BLE001 - a required parameter: the journey gives it; not checkable alone
            continue
        try:
            with session_scope(engine) as session:  # type: ignore[arg-type]
                returned = set(session.execute(audience.probe(datetime(2026, 1, 1, tzinfo=timezone.utc), params)).keys())
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0]
            out.append((audience.source_file, None, f"audience {name!r}: the database refuses the query: {reason}"))
            continue
        missing = sorted(({"recipient_id"} | {c.name for c in audience.spec.columns}) - returned)
        if missing:
            out.append((audience.source_file, 1, f"audience {name!r}: the query returns no column "
                                                 f"{', '.join(missing)} (declared in the header)"))
    return out

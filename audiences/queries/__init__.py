"""The audiences a journey can enroll from: the built-in ones, plus the program's own files.

Built-ins are Python queries (below); a program adds `audiences/<name>.sql` or `<name>.py` files in
its folder (audiences/discovery.py), found without editing this registry.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from audiences.discovery import program_audiences
from audiences.errors import UnknownAudience
from audiences.queries.base import Audience, AudienceQuery, Criterion, Explanation
from audiences.queries.lapsed import Lapsed
from audiences.queries.members import Members
from audiences.queries.new_members import NewMembers
from audiences.queries.points_expiring import PointsExpiring
from audiences.queries.staff import StaffAudience
from audiences.queries.tier_ups import TierUps

AUDIENCES: dict[str, Audience] = {a.name: a for a in (NewMembers(), PointsExpiring(), TierUps(), Lapsed(), StaffAudience(), Members())}
"""The built-in audiences (every program can use them)."""


def all_audiences() -> dict[str, Audience]:
    """Built-ins and the program's audience files that load (a program file may not reuse a built-in name)."""
    found = program_audiences()
    return {**AUDIENCES, **{k: v for k, v in found.audiences.items() if k not in AUDIENCES}}


def audience_problems() -> list[tuple[str, int | None, str]]:
    """(file, line, message) for every program audience file that cannot be used."""
    found = program_audiences()
    out = [(e.path, e.line, e.message) for e in found.problems.values()]
    for name, aud in found.audiences.items():
        if name in AUDIENCES:
            out.append((getattr(aud, "source_file", name), 1,
                        f"audience {name!r} is a built-in audience's name; rename the file"))
    return out


def get_audience(name: str) -> Audience:
    found = program_audiences()
    if name in found.problems:
        raise found.problems[name]
    known = all_audiences()
    try:
        return known[name]
    except KeyError:
        raise UnknownAudience(f"unknown audience {name!r}; known audiences: {', '.join(sorted(known))}") from None


def declared_columns(audience: Audience, params: dict[str, Any] | None = None) -> dict[str, str]:
    """What an audience gives templates: each output column and its kind (int, str, datetime, ...)."""
    from audiences.sql_files import column_kind

    types = getattr(audience, "column_types", None)
    if callable(types):
        return dict(types())
    built = audience.query(datetime(2026, 1, 1, tzinfo=timezone.utc), **(params or {}))
    return {name: column_kind(expr.type) for name, expr in built.fields.items()}


__all__ = ["AUDIENCES", "Audience", "AudienceQuery", "Criterion", "Explanation", "all_audiences",
           "audience_problems", "declared_columns", "get_audience"]

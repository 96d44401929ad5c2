"""Audiences written as SQL text files, with their parameters and output columns declared in a header.

A file `<program>/audiences/<name>.sql` starts with comment lines that declare what it takes and gives:

    -- description: Active members and their points balance
    -- recipient: member                  (member, the default, or staff)
    -- param min_points: int = 100        (typed; `= default` optional; bound as :min_points)
    -- column tier_code: str              (each output column a template may use, typed)
    -- column balance: int
    -- key: tier_code                     (optional: orders a member's rows, e.g. one row per batch)
    SELECT m.id AS recipient_id, t.code AS tier_code, ... WHERE m.enrolled_at <= :now

The query returns `recipient_id` and the declared columns; `:now` is the instant it is evaluated at.
It runs in the database as a subquery, so count, `audience show` and enrollment work as for any
audience. Types: int, float, decimal, str, bool, datetime, date, json, list[int], list[str].
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    Integer,
    Numeric,
    String,
    bindparam,
    column,
    text,
    true,
)
from sqlalchemy.types import TypeEngine

from audiences.errors import InvalidParameter, PlacedError
from audiences.models.base import UTCDateTime
from audiences.queries.base import Audience, AudienceQuery, Criterion

KINDS: dict[str, tuple[Any, Any]] = {  # declared kind -> (Python type for parameters, SQL type)
    "int": (int, Integer()),
    "float": (float, Float()),
    "decimal": (Decimal, Numeric(18, 2)),
    "str": (str, String()),
    "bool": (bool, Boolean()),
    "datetime": (datetime, UTCDateTime()),
    "date": (date, Date()),
    "json": (dict, JSON()),
    "list[int]": (list[int], Integer()),
    "list[str]": (list[str], String()),
}
COLUMN_KINDS = tuple(k for k in KINDS if not k.startswith("list["))
_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_HEADER = re.compile(r"^--\s*(?P<key>description|recipient|key|param|column)\b\s*(?P<rest>.*)$")
_DECL = re.compile(r"^(?P<name>\w+)\s*:\s*(?P<kind>[\w\[\]]+)\s*(?:=\s*(?P<default>.*))?$")
_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")


class AudienceFileError(PlacedError):
    """An audience file that cannot be used; names the file and line."""


@dataclass(frozen=True)
class Declared:
    name: str
    kind: str
    default: Any = dataclasses.MISSING
    line: int = 1


def _parse_default(raw: str, kind: str, where: tuple[str, int]) -> Any:
    raw = raw.strip()
    if raw.lower() in ("none", "null"):
        return None
    try:
        if kind in ("int",):
            return int(raw)
        if kind in ("float",):
            return float(raw)
        if kind == "decimal":
            return Decimal(raw)
        if kind == "bool":
            if raw.lower() not in ("true", "false"):
                raise ValueError("use true or false")
            return raw.lower() == "true"
        if kind == "datetime":
            value = datetime.fromisoformat(raw)
            if value.tzinfo is None:
                raise ValueError("needs a time zone offset")
            return value
        if kind == "date":
            return date.fromisoformat(raw)
        if kind.startswith("list["):
            inner = int if kind == "list[int]" else str
            return tuple(inner(p.strip()) for p in raw.split(",") if p.strip())
        return raw.strip("'\"")
    except ValueError as exc:
        raise AudienceFileError(where[0], where[1], f"default {raw!r} is not a {kind}: {exc}") from None


@dataclass(frozen=True)
class SqlFile:
    path: Path
    name: str
    description: str
    recipient: str
    params: tuple[Declared, ...]
    columns: tuple[Declared, ...]
    key: str | None
    sql: str


def parse_sql_file(path: Path, shown: str | None = None) -> SqlFile:
    """Read and validate one audience file; every mistake is an AudienceFileError at its line."""
    where = shown or str(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise AudienceFileError(where, None, "not UTF-8 text") from None
    name = path.stem
    if not _NAME.fullmatch(name):
        raise AudienceFileError(where, None, f"audience name {name!r} (the file name) must be lower-case letters, "
                                             "digits and '_'")
    description, recipient, key = "", "member", None
    params: list[Declared] = []
    columns: list[Declared] = []
    body_start = len(lines)
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            body_start = number - 1
            break
        match = _HEADER.match(stripped)
        if match is None:
            continue  # an ordinary comment
        field, rest = match["key"], match["rest"].lstrip(":").strip()
        if field == "description":
            description = rest
        elif field == "recipient":
            if rest not in ("member", "staff"):
                raise AudienceFileError(where, number, f"recipient {rest!r}: use member or staff")
            recipient = rest
        elif field == "key":
            key = rest
        else:
            decl = _DECL.match(rest)
            if decl is None:
                raise AudienceFileError(where, number, f"{field} declaration must look like `-- {field} name: type"
                                                       + (" = default`" if field == "param" else "`"))
            kind = decl["kind"]
            allowed = KINDS if field == "param" else COLUMN_KINDS
            if kind not in allowed:
                raise AudienceFileError(where, number, f"{field} {decl['name']!r}: unknown type {kind!r}; "
                                                       f"known: {', '.join(allowed)}")
            if not _NAME.fullmatch(decl["name"]) or decl["name"] in ("now", "recipient_id"):
                raise AudienceFileError(where, number, f"{field} name {decl['name']!r} must be a lower-case "
                                                       "identifier other than now and recipient_id")
            if field == "column" and decl["default"] is not None:
                raise AudienceFileError(where, number, "a column has no default")
            default = (_parse_default(decl["default"], kind, (where, number)) if decl["default"] is not None
                       else dataclasses.MISSING)
            target = params if field == "param" else columns
            if any(d.name == decl["name"] for d in target):
                raise AudienceFileError(where, number, f"{field} {decl['name']!r} is declared twice")
            target.append(Declared(decl["name"], kind, default, number))
    sql = "\n".join(lines[body_start:]).strip().rstrip(";")
    if not sql:
        raise AudienceFileError(where, len(lines) or 1, "no SQL after the header")
    if ";" in sql:
        line = body_start + next(i for i, text_line in enumerate(lines[body_start:], 1) if ";" in text_line)
        raise AudienceFileError(where, line, "one SELECT statement only (no ';' inside)")
    if not columns:
        raise AudienceFileError(where, 1, "declares no output column: add `-- column name: type` lines "
                                          "(the columns templates may use)")
    used = set(_BIND.findall(sql))
    declared = {p.name for p in params}
    for unknown in sorted(used - declared - {"now"}):
        line = body_start + next((i for i, t in enumerate(lines[body_start:], 1) if f":{unknown}" in t), 1)
        raise AudienceFileError(where, line, f"the SQL uses :{unknown}, which no `-- param {unknown}: type` declares")
    for p in params:
        if p.name not in used:
            raise AudienceFileError(where, p.line, f"param {p.name!r} is declared but the SQL never uses :{p.name}")
    if key is not None and key not in {c.name for c in columns} | {"recipient_id"}:
        raise AudienceFileError(where, 1, f"key {key!r} is not a declared column")
    return SqlFile(path, name, description, recipient, tuple(params), tuple(columns), key, sql)


class SqlAudience(Audience):
    """An audience from an SQL file: a subquery with the declared parameters bound."""

    def __init__(self, spec: SqlFile, shown: str | None = None) -> None:
        self.spec = spec
        self.name = spec.name  # type: ignore[misc]
        self.description = spec.description or f"SQL audience {shown or spec.path.name}"  # type: ignore[misc]
        self.recipient = spec.recipient  # type: ignore[misc]
        self.no_rows_reason = f"is not returned by {shown or spec.path.name}"  # type: ignore[misc]
        self.source_file = shown or str(spec.path)
        ordered = sorted(spec.params, key=lambda p: p.default is not dataclasses.MISSING)
        self.Params = dataclasses.make_dataclass(  # type: ignore[misc]
            f"{spec.name}_params",
            [(p.name, KINDS[p.kind][0], dataclasses.field(default=p.default)) if p.default is not dataclasses.MISSING
             else (p.name, KINDS[p.kind][0]) for p in ordered],
            frozen=True)

    def column_types(self) -> dict[str, str]:
        """Declared output columns and their kinds: what templates may use."""
        return {c.name: c.kind for c in self.spec.columns}

    def params(self, **values: Any) -> Any:
        required = [p.name for p in self.spec.params if p.default is dataclasses.MISSING and p.name not in values]
        if required:
            raise InvalidParameter(f"audience {self.name!r} needs parameter {', '.join(required)} "
                                   f"(declared in {self.source_file})")
        return super().params(**values)

    def _binds(self, now: datetime, params: Any) -> list[Any]:
        binds = [bindparam("now", now, type_=UTCDateTime())] if "now" in _BIND.findall(self.spec.sql) else []
        for p in self.spec.params:
            value = getattr(params, p.name)
            expanding = p.kind.startswith("list[")
            binds.append(bindparam(p.name, list(value) if expanding and value is not None else value,
                                   type_=KINDS[p.kind][1], expanding=expanding))
        return binds

    def probe(self, now: datetime, params: Any) -> Any:
        """The query with no rows (LIMIT 0): what columns it really returns, and whether the database takes it."""
        return text(f"SELECT * FROM ({self.spec.sql}) AS probe LIMIT 0").bindparams(*self._binds(now, params))

    def build(self, now: datetime, params: Any) -> AudienceQuery:
        binds = self._binds(now, params)
        cols = [column("recipient_id", Integer())] + [column(c.name, KINDS[c.kind][1]) for c in self.spec.columns]
        sub = text(self.spec.sql).bindparams(*binds).columns(*cols).subquery(f"audience_{self.name}")
        return AudienceQuery(
            source=sub,
            recipient_id=sub.c.recipient_id,
            criteria=[Criterion("returned", f"returned by the query in {self.source_file}", true())],
            fields={c.name: sub.c[c.name] for c in self.spec.columns},
            key=sub.c[self.spec.key] if self.spec.key else None,
        )


def column_kind(sql_type: TypeEngine[Any]) -> str:
    """The declared kind of a Python audience's field, from its SQL type (for typed samples)."""
    checks: list[tuple[type, str]] = [(UTCDateTime, "datetime"), (Boolean, "bool"), (Integer, "int"),
                                      (Numeric, "decimal"), (Date, "date"), (JSON, "json"), (String, "str")]
    from sqlalchemy import DateTime, Enum

    if isinstance(sql_type, (UTCDateTime, DateTime)):
        return "datetime"
    if isinstance(sql_type, Enum):
        return "str"
    for cls, kind in checks:
        if isinstance(sql_type, cls):
            return "float" if kind == "decimal" and isinstance(sql_type, Float) else kind
    return "str"

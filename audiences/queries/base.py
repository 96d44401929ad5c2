"""What an audience is: a row source, named criteria and message fields, all SQL.

One definition serves three uses: the set-based select the engine enrolls from, the count,
and the explanation of why one member is in or out (each criterion evaluated for that member).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    and_,
    case,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.orm import Session

from audiences.errors import InvalidParameter

Recipient = Literal["member", "staff"]


@dataclass(frozen=True)
class Criterion:
    name: str
    describe: str
    expr: ColumnElement[bool]


@dataclass(frozen=True)
class AudienceQuery:
    """A built audience at one instant `now`, ready to run."""

    source: FromClause
    recipient_id: ColumnElement[int]
    criteria: Sequence[Criterion]
    fields: Mapping[str, ColumnElement[Any]]
    key: ColumnElement[Any] | None = None
    """Orders rows deterministically (recipient, then e.g. the batch) so runs are diffable."""
    count_source: FromClause | None = None
    """A lighter source for counting when no criterion needs the fields' joins (e.g. RFM scores)."""
    count_query: Select[Any] | None = None
    """A whole count statement, when counting recipients has a cheaper exact form than counting rows."""

    def _where(self) -> ColumnElement[bool]:
        return and_(true(), *(c.expr for c in self.criteria))

    def select(self) -> Select[Any]:
        """recipient_id, then the fields, for every row in the audience."""
        columns = [self.recipient_id.label("recipient_id")]
        columns += [expr.label(name) for name, expr in self.fields.items()]
        order = [self.recipient_id] + ([self.key] if self.key is not None else [])
        return select(*columns).select_from(self.source).where(self._where()).order_by(*order)

    def count_select(self) -> Select[Any]:
        """Distinct recipients in the audience (a member with two expiring batches counts once)."""
        if self.count_query is not None:
            return self.count_query
        source = self.count_source if self.count_source is not None else self.source
        return select(func.count(func.distinct(self.recipient_id))).select_from(source).where(self._where())


    def explain_select(self, recipient_id: int) -> Select[Any]:
        columns = [expr.label(name) for name, expr in self.fields.items()]
        columns += [case((c.expr, literal(1)), else_=literal(0)).label(f"__{c.name}") for c in self.criteria]
        order = [self.key] if self.key is not None else []
        return select(*columns).select_from(self.source).where(self.recipient_id == recipient_id).order_by(*order)


@dataclass(frozen=True)
class CriterionResult:
    name: str
    describe: str
    passed: bool


@dataclass(frozen=True)
class RowExplanation:
    fields: dict[str, Any]
    criteria: list[CriterionResult]

    @property
    def included(self) -> bool:
        return all(c.passed for c in self.criteria)


@dataclass(frozen=True)
class Explanation:
    audience: str
    recipient_id: int
    exists: bool
    rows: list[RowExplanation] = field(default_factory=list)
    no_rows_reason: str | None = None

    @property
    def included(self) -> bool:
        return any(r.included for r in self.rows)


def _coerce(raw: str, annotation: Any, name: str) -> Any:
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, types.UnionType) and args:
        return _coerce(raw, args[0], name)
    if origin in (list, tuple) and args:
        return [_coerce(part.strip(), args[0], name) for part in raw.split(",") if part.strip()]
    try:
        if annotation is int:
            return int(raw)
        if annotation is float:
            return float(raw)
        if annotation is Decimal:
            return Decimal(raw)
        if annotation is bool:
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError("use true or false")
            return raw.lower() in ("true", "1", "yes")
        if annotation is date:
            return date.fromisoformat(raw)
        if annotation is datetime:
            value = datetime.fromisoformat(raw)
            if value.tzinfo is None:
                raise ValueError("needs a time zone offset, e.g. 2026-11-23T00:00:00+00:00")
            return value
    except (ValueError, ArithmeticError) as exc:
        raise InvalidParameter(f"parameter {name}={raw!r}: {exc}") from None
    return raw


class Audience:
    """Base class: subclasses set name, description, recipient, Params and build()."""

    name: ClassVar[str]
    description: ClassVar[str]
    recipient: ClassVar[Recipient] = "member"
    no_rows_reason: ClassVar[str] = "has no rows this audience looks at"

    @dataclass(frozen=True)
    class Params:
        pass

    def params(self, **values: Any) -> Any:
        known = {f.name for f in dataclasses.fields(self.Params)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidParameter(
                f"audience {self.name!r} has no parameter {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known)) or 'none'}"
            )
        params = self.Params(**values)
        self.validate(params)
        return params

    def parse_params(self, raw: Mapping[str, str]) -> Any:
        hints = typing.get_type_hints(self.Params)
        known = {f.name for f in dataclasses.fields(self.Params)}
        values = {k: _coerce(v, hints[k], k) for k, v in raw.items() if k in known}
        values.update({k: v for k, v in raw.items() if k not in known})  # reported by params()
        return self.params(**values)

    def validate(self, params: Any) -> None:
        for f in dataclasses.fields(params):
            value = getattr(params, f.name)
            if f.name.endswith("_days") and isinstance(value, int) and value < 0:
                raise InvalidParameter(f"audience {self.name!r}: {f.name} must be >= 0, got {value}")

    def build(self, now: datetime, params: Any) -> AudienceQuery:
        raise NotImplementedError

    def query(self, now: datetime, **params: Any) -> AudienceQuery:
        if now.tzinfo is None:
            raise InvalidParameter(f"audience {self.name!r}: 'now' must be timezone-aware, got {now.isoformat()}")
        return self.build(now, self.params(**params))

    def count(self, session: Session, now: datetime, **params: Any) -> int:
        return int(session.execute(self.query(now, **params).count_select()).scalar_one())

    def explain(self, session: Session, now: datetime, recipient_id: int, **params: Any) -> Explanation:
        built = self.query(now, **params)
        exists = self._exists(session, recipient_id)
        if not exists:
            return Explanation(self.name, recipient_id, False, no_rows_reason=f"no {self.recipient} with id {recipient_id}")
        rows = []
        for row in session.execute(built.explain_select(recipient_id)).mappings():
            fields = {k: v for k, v in row.items() if not k.startswith("__")}
            results = [CriterionResult(c.name, c.describe, bool(row[f"__{c.name}"])) for c in built.criteria]
            rows.append(RowExplanation(fields, results))
        reason = None if rows else f"{self.recipient} {recipient_id} {self.no_rows_reason}"
        return Explanation(self.name, recipient_id, True, rows, reason)

    def _exists(self, session: Session, recipient_id: int) -> bool:
        from audiences.models import Member, Staff

        table = Staff if self.recipient == "staff" else Member
        return session.get(table, recipient_id) is not None

"""`generate`: deterministic synthetic loyalty data, written chunk by chunk with bounded memory.

Each chunk of members has its own random stream derived from (seed, chunk index), and row ids
follow from the chunks before it, so the same (members, seed, as_of) always gives the same rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import Connection, Engine, insert
from sqlalchemy.exc import IntegrityError

from audiences.demo.activity import generate_activity
from audiences.demo.errors import DemoDataExists, DemoDataResetBlocked
from audiences.demo.members import generate_members
from audiences.demo.staff import program_update_rows, staff_rows, store_rows, tier_rows
from audiences.demo.timeline import Timeline
from audiences.demo.writer import (
    DEMO_TABLES, RowWriter, advance_sequences, bulk_load_settings, delete_demo_rows, first_nonempty, instants,
    nullable_ids, writer_for,
)
from audiences.errors import InvalidParameter
from audiences.models import ProgramUpdate, Staff, Store, Tier

CHUNK_MEMBERS = 25_000
"""Members per chunk and per transaction. Part of the output's definition: changing it changes the data."""
MAX_MEMBERS = 50_000_000

Progress = Callable[[int, int], None]

_KINDS = np.array(["earn", "redeem", "expire"], dtype=object)


@dataclass(frozen=True)
class DemoSummary:
    members: int
    seed: int
    as_of: datetime
    counts: dict[str, int] = field(default_factory=dict)
    """Rows written per table."""
    elapsed_seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.counts.values())


@dataclass
class _Ids:
    purchase: int = 1
    ledger: int = 1
    change: int = 1
    device: int = 1


def rng_for(seed: int, *stream: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy=seed, spawn_key=stream)))


def check_request(members: int, seed: int, as_of: datetime) -> None:
    """Refuse bad arguments before anything is touched (the CLI calls it before migrating)."""
    if isinstance(members, bool) or not isinstance(members, int) or members < 1:
        raise InvalidParameter(f"--members must be a whole number of at least 1, got {members!r}")
    if members > MAX_MEMBERS:
        raise InvalidParameter(f"--members must be at most {MAX_MEMBERS:,}, got {members:,}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidParameter(f"--seed must be a whole number of at least 0, got {seed!r}")
    if as_of.tzinfo is None:
        raise InvalidParameter(f"as_of {as_of.isoformat()} has no time zone; give an aware instant")


def generate(engine: Engine, members: int, seed: int, as_of: datetime, progress: Progress | None = None,
             *, reset: bool = False) -> DemoSummary:
    """Write `members` synthetic members and their history as of `as_of` into a migrated, empty database.

    Raises InvalidParameter for bad arguments and DemoDataExists when loyalty data is already there
    (unless `reset`, which first deletes the rows of the demo tables); either way nothing changes.
    """
    check_request(members, seed, as_of)
    started = time.perf_counter()
    timeline = Timeline.build(as_of)
    counts = dict.fromkeys(DEMO_TABLES, 0)
    with engine.connect() as conn:
        with conn.begin():
            _prepare(conn, reset)  # with foreign keys enforced: a reset must not orphan other layers' rows
            _write_fixed(conn, seed, timeline, counts)
        with bulk_load_settings(conn):
            _write_members(conn, members, seed, timeline, counts, progress)
        with conn.begin():
            advance_sequences(conn)
    return DemoSummary(members, seed, timeline.as_of, counts, time.perf_counter() - started)


def _write_members(conn: Connection, members: int, seed: int, timeline: Timeline, counts: dict[str, int],
                   progress: Progress | None) -> None:
    """The members and everything that hangs off them, chunk by chunk."""
    ids = _Ids()
    for chunk, first in enumerate(range(1, members + 1, CHUNK_MEMBERS)):
        n = min(CHUNK_MEMBERS, members - first + 1)
        with conn.begin():  # one transaction per chunk (bigger ones measured no faster)
            _write_chunk(writer_for(conn), rng_for(seed, 1, chunk), timeline, first, n, ids, counts)
        if progress is not None:
            progress(first + n - 1, members)


def _prepare(conn: Connection, reset: bool) -> None:
    table = first_nonempty(conn)
    if table is None:
        return
    if not reset:
        raise DemoDataExists(
            f"the database already has rows in {table!r}; demo data goes only into an empty database "
            "(use --reset to delete the loyalty tables' rows first)")
    try:
        delete_demo_rows(conn)
    except IntegrityError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise DemoDataResetBlocked(f"cannot reset: other tables still reference the loyalty data ({reason})") from None


def _write_fixed(conn: Connection, seed: int, timeline: Timeline, counts: dict[str, int]) -> None:
    fixed = rng_for(seed, 0)
    for model, rows in ((Tier, tier_rows()), (Store, store_rows()), (Staff, staff_rows(fixed)),
                        (ProgramUpdate, program_update_rows(fixed, timeline.as_of))):
        conn.execute(insert(model), rows)
        counts[model.__tablename__] += len(rows)


def _write_chunk(out: RowWriter, rng: np.random.Generator, timeline: Timeline, first: int, n: int, ids: _Ids,
                 counts: dict[str, int]) -> None:
    members = generate_members(rng, timeline, first, n)
    activity = generate_activity(rng, timeline, members, ids.purchase, ids.ledger, ids.change)

    rows = members.rows
    out.write("members", (*rows, "tier_id"),
              zip(*(instants(v) if k == "enrolled_at" else v for k, v in rows.items()), activity.tier_id.tolist()))

    dev = members.devices
    k = len(dev["member_id"])
    out.write("device_tokens", ("id", "member_id", "platform", "token", "created_at", "revoked_at"),
              zip(range(ids.device, ids.device + k), dev["member_id"], dev["platform"], dev["token"],
                  instants(dev["created_at"]), instants(dev["revoked_at"])))
    ids.device += k

    # purchases and ledger lines go in id order, which the generator made the order of their
    # timestamp index (see activity.py), so both the table and that index are filled front to back
    p = activity.purchases
    order = np.argsort(p["id"])
    amount = (p["amount_minor"] / p["minor_per_unit"]).round(2)
    out.write("purchases", ("id", "member_id", "store_id", "amount", "currency", "purchased_at"),
              zip(*(p[c][order].tolist() for c in ("id", "member_id", "store_id")), amount[order].tolist(),
                  p["currency"][order].tolist(), instants(p["purchased_at"][order])))

    led = activity.ledger
    order = np.argsort(led["id"])
    kind = led["kind"][order]
    notes = [None if kk == 0 else ("reward redemption" if kk == 1 else f"expired batch {b}")
             for kk, b in zip(kind.tolist(), led["batch_ledger_id"][order].tolist())]
    out.write("points_ledger", ("id", "member_id", "kind", "points", "occurred_at", "expires_at", "purchase_id", "note"),
              zip(led["id"][order].tolist(), led["member_id"][order].tolist(), _KINDS[kind].tolist(),
                  led["points"][order].tolist(), instants(led["occurred_at"][order]),
                  instants(led["expires_at"][order]), nullable_ids(led["purchase_id"][order]), notes))

    ch = activity.tier_changes
    c = len(ch["id"])
    out.write("tier_changes", ("id", "member_id", "from_tier_id", "to_tier_id", "changed_at", "reason"),
              zip(*(ch[col].tolist() for col in ("id", "member_id", "from_tier_id", "to_tier_id")),
                  instants(ch["changed_at"]), ["spend"] * c))

    counts["members"] += n
    counts["device_tokens"] += k
    counts["purchases"] += len(p["id"])
    counts["points_ledger"] += len(kind)
    counts["tier_changes"] += c
    ids.purchase += len(p["id"])
    ids.ledger += len(kind)
    ids.change += c

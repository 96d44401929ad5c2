"""Fresh planner statistics on PostgreSQL for the tables a pass fills as it goes.

A pass inserts thousands of enrollments, then thousands of ledger rows chunk after chunk; autovacuum
analyzes a table at most once a minute and only after 10% of it changed. Until then PostgreSQL
plans with the statistics it has: on a new installation, or after a first big enrollment, "sends is
empty". The reminder cap's per-member count then became a sequential scan of `sends` for each
enrollment of a chunk, a scan that grew with every chunk (54 s of a 100,000-member tick, against
0.3 s once analyzed). So before each chunk, a table whose live rows differ from the planner's count
by more than `FRACTION` of it (and at least `MIN_ROWS`) is analyzed (a sample of at most 30,000
rows: tens of milliseconds). Nothing to do on SQLite, whose planner does not use such statistics unless
asked (no sqlite_stat1), and a role that does not own a table only gets PostgreSQL's warning.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.orm import Session

from audiences.id_lists import on_postgresql

log = logging.getLogger("loyalflow.table_stats")

TABLES = ("enrollments", "sends")
FRACTION = 0.1
MIN_ROWS = 1_000


def refresh_stale(session: Session, tables: tuple[str, ...] = TABLES) -> list[str]:
    """ANALYZE the tables among `tables` whose statistics are stale; returns their names. Committed."""
    if not on_postgresql(session):
        return []
    rows = session.execute(text(
        "SELECT c.relname, greatest(c.reltuples, 0), s.n_live_tup FROM pg_class c "
        "JOIN pg_stat_user_tables s ON s.relid = c.oid "
        "WHERE s.schemaname = current_schema() AND c.relname = ANY(:tables)"), {"tables": list(tables)}).all()
    # the planner's row count (reltuples, from the last ANALYZE or VACUUM) against the live rows:
    # updates in place (leases, steps) do not make a plan wrong, a table ten times its estimate does
    stale = [name for name, planned, live in rows if abs(live - planned) >= max(MIN_ROWS, FRACTION * planned)]
    for name in stale:
        session.execute(text(f"ANALYZE {name}"))  # names from TABLES, never from input
    if stale:
        session.commit()
        log.info("analyzed %s: statistics stale after this pass's inserts", ", ".join(stale))
    return stale

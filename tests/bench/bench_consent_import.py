"""Benchmark: `loyalflow consent import` of a large CSV into SQLite: rows per second and peak RSS.

The file (written here, streaming) has one bad row in a thousand, spread over every kind the
importer refuses, so the error path is measured too. The target is 1,000,000 rows in under 60 s
and under 300 MB peak RSS (the whole process: Python, SQLAlchemy and the import).

    python -m tests.bench.bench_consent_import [--rows 1000000] [--members 100000]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import insert

from audiences.db import make_engine, session_scope
from audiences.models import Member
from channels.consent import import_consent_csv
from flows import migrate

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
BAD = [b"1_0,email,marketing,opt_in,2026-01-02T10:00:00Z", b"+7,sms,marketing,opt_in,2026-01-02T10:00:00Z",
       b"3,email,marketing,opt_in,0001-01-01T00:00:00Z", b"4,email\xff,marketing,opt_in,2026-01-02T10:00:00Z",
       b"5,push,marketing,opt_in,2026-01-02T10:00:00Z\x00", b"999999999,email,marketing,opt_in,2026-01-02T10:00:00Z"]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def write_csv(path: Path, rows: int, members: int) -> int:
    channels, actions = (b"email", b"sms", b"push"), (b"opt_in", b"opt_out")
    bad = 0
    with path.open("wb") as out:
        out.write(b"recipient_id,channel,purpose,action,occurred_at,source,evidence\n")
        lines = []
        for i in range(rows):
            if i % 1000 == 999:
                lines.append(BAD[(i // 1000) % len(BAD)])
                bad += 1
            else:
                lines.append(b"%d,%s,marketing,%s,2026-0%d-%02dT%02d:%02d:00Z,crm_export,"
                             % (i % members + 1, channels[i % 3], actions[(i // 3) % 2], i % 9 + 1, i % 28 + 1, i % 24, i % 60))
            if len(lines) == 10_000:
                out.write(b"\n".join(lines) + b"\n")
                lines = []
        if lines:
            out.write(b"\n".join(lines) + b"\n")
    return bad


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="CSV rows (default 100,000; the target is 1,000,000)")
    parser.add_argument("--members", type=int, default=100_000, help="members in the database (default 100,000)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="loyalflow-bench-consent-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}", create=True)
        migrate.upgrade(engine)
        with session_scope(engine) as session:
            for start in range(1, args.members + 1, 10_000):
                session.execute(insert(Member), [
                    {"id": i, "first_name": "M", "email": f"m{i}@example.com", "locale": "en", "time_zone": "UTC",
                     "country": "US", "enrolled_at": NOW} for i in range(start, min(start + 10_000, args.members + 1))])
        path = Path(tmp) / "consent.csv"
        bad = write_csv(path, args.rows, args.members)
        size = path.stat().st_size
        before = peak_rss_mib()
        started = time.perf_counter()
        with session_scope(engine) as session:
            report = import_consent_csv(session, path, now=NOW)
        elapsed = time.perf_counter() - started
        engine.dispose()
    assert report.imported == args.rows - bad and report.refused == bad, report.summary()
    print(f"consent import: {args.rows:,} rows ({size / 2**20:.0f} MiB CSV, {bad:,} bad), {args.members:,} members, SQLite")
    print(f"  {elapsed:.1f} s, {args.rows / elapsed:,.0f} rows/s")
    print(f"  peak RSS {peak_rss_mib():.0f} MiB for the whole process (before the import: {before:.0f} MiB)")
    print(f"  target 1,000,000 rows < 60 s and < 300 MiB: "
          f"{'met' if elapsed * 1_000_000 / args.rows < 60 and peak_rss_mib() < 300 else 'NOT met'}"
          + ("" if args.rows == 1_000_000 else " (extrapolated from this run's rate)"))


if __name__ == "__main__":
    main()

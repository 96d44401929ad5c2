"""Deterministic holdout and rollout buckets: a hash of (recipient, journey) computed in SQL.

The same integer arithmetic runs in SQLite and PostgreSQL (64-bit, no overflow: every product
stays below 2**62) and in Python (for tests and explanations), so a member's bucket never
depends on the database, the run, or the order of rows.
"""

from __future__ import annotations

import zlib

from sqlalchemy import BigInteger, ColumnElement, cast

PRIME = 1_000_003
BUCKETS = 10_000  # 0.01 % resolution


def salt(journey: str, purpose: str) -> int:
    return zlib.crc32(f"{journey}:{purpose}".encode()) % PRIME


def bucket_sql(recipient_id: ColumnElement[int], journey: str, purpose: str) -> ColumnElement[int]:
    s = salt(journey, purpose)
    x = (cast(recipient_id, BigInteger) * 7_919 + s) % PRIME
    y = (x * x + s * 31 + 17) % PRIME
    z = (y * 48_271 + x) % PRIME
    return z % BUCKETS  # type: ignore[return-value]


def bucket(recipient_id: int, journey: str, purpose: str) -> int:
    s = salt(journey, purpose)
    x = (recipient_id * 7_919 + s) % PRIME
    y = (x * x + s * 31 + 17) % PRIME
    z = (y * 48_271 + x) % PRIME
    return z % BUCKETS


def threshold(percent: float) -> int:
    return round(percent * BUCKETS / 100)

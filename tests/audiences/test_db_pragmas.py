"""SQLite connections get a small page cache by default (it also bounds sort memory), or the one asked for."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from audiences.db import SQLITE_CACHE_KIB, make_engine


def _pragma(engine: object, name: str) -> int:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(text(f"PRAGMA {name}")).scalar_one())


def test_every_connection_has_the_small_cache_and_the_usual_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}", create=True)
    assert SQLITE_CACHE_KIB <= 16_384
    assert _pragma(engine, "cache_size") == -SQLITE_CACHE_KIB
    assert _pragma(engine, "foreign_keys") == 1 and _pragma(engine, "busy_timeout") == 30_000
    engine.dispose()


def test_a_caller_may_ask_for_another_cache(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'b.db'}", create=True, sqlite_cache_kib=2_048)
    assert _pragma(engine, "cache_size") == -2_048
    engine.dispose()

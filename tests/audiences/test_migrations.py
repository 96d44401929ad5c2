"""Migrations build exactly the models' schema and come down cleanly, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from flows import migrate
from flows.schema import target_metadata


def test_upgrade_matches_models_then_downgrade_removes_everything(engine: Engine) -> None:
    assert migrate.is_up_to_date(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), target_metadata())
    assert diff == [], f"models and migrations disagree: {diff}"
    tables = set(inspect(engine).get_table_names())
    assert {"members", "points_ledger", "purchases", "tiers", "staff"} <= tables

    migrate.downgrade(engine, "base")
    assert migrate.current_heads(engine) == set()
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

    migrate.upgrade(engine)  # and back up again: the round trip is repeatable
    assert migrate.is_up_to_date(engine)

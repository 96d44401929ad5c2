"""Alembic environment: every layer's tables share one metadata; each layer keeps its own
branch of versions (audiences/migrations, channels/migrations, journeys/migrations)."""

from __future__ import annotations

from alembic import context

from flows.schema import target_metadata

config = context.config


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("loyalflow runs migrations through flows.migrate, which passes a connection")
    context.configure(
        connection=connection,
        target_metadata=target_metadata(),
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs batch ALTERs
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()

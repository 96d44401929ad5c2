"""Schema migrations (Alembic), used by `loyalflow db upgrade` and by the tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from audiences.db import safe_url
from audiences.errors import LoyalflowError

# Each layer owns a branch; a branch appears once its folder holds a version.
VERSION_PACKAGES = ("audiences", "channels", "journeys")


def _version_locations() -> list[str]:
    # the layers are installed side by side, so their folders are siblings of this package's
    root = Path(__file__).resolve().parent.parent
    return [str(root / p / "migrations") for p in VERSION_PACKAGES if (root / p / "migrations").is_dir()]


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("version_locations", " ".join(_version_locations()))
    config.set_main_option("path_separator", "space")
    config.attributes["engine"] = engine
    return config


def _run(engine: Engine, action: str, target: str) -> None:
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, target)


def upgrade(engine: Engine, target: str = "heads") -> None:
    _run(engine, "upgrade", target)


def downgrade(engine: Engine, target: str = "base") -> None:
    _run(engine, "downgrade", target)


def current_heads(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())



def is_up_to_date(engine: Engine) -> bool:
    """Every head of every layer is applied (a head other branches depend on is implied by them)."""
    script = ScriptDirectory.from_config(alembic_config(engine))
    current = current_heads(engine)
    if not current:
        return False
    applied = {rev.revision for rev in script.revision_map.iterate_revisions(tuple(current), "base")}
    return set(script.get_heads()) <= applied


class SchemaNotCurrent(LoyalflowError):
    """The database schema is missing or behind the code."""


def require_current(engine: Engine) -> Engine:
    """Refuse to work on a database whose schema is not the code's: say how to fix it."""
    if not is_up_to_date(engine):
        applied = ", ".join(sorted(current_heads(engine))) or "no schema"
        raise SchemaNotCurrent(
            f"the database at {safe_url(engine.url)} has {applied}; run `loyalflow db upgrade` first"
        )
    return engine

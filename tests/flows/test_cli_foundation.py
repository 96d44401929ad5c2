"""The CLI on bad input: one clear line on stderr, a non-zero exit, no traceback, nothing changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import inspect

from audiences.db import make_engine


def run(*args: str, url: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALFLOW_")}
    if url is not None:
        env["LOYALFLOW_DATABASE_URL"] = url
    return subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    ("url", "fragments"),
    [
        ("not a url", ("is not a database URL", "'not a url'")),
        ("mysql://u@localhost/db", ("unsupported database 'mysql'",)),
        ("postgresql://loyal:s3cret@127.0.0.1:9/loyalty", ("cannot reach the database", "127.0.0.1:9", "***")),
        ("sqlite:////nonexistent-folder/x/loyalflow.db", ("cannot reach the database",)),
    ],
)
def test_bad_database_urls(url: str, fragments: tuple[str, ...]) -> None:
    result = run("db", "upgrade", url=url)
    assert_one_line_error(result, *fragments)
    assert "s3cret" not in result.stderr  # the password is masked


def test_unknown_audience_lists_the_known_ones(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert run("db", "upgrade", url=url).returncode == 0
    result = run("audience", "count", "winback", url=url)
    assert_one_line_error(result, "unknown audience 'winback'", "lapsed, members, new_members, points_expiring, staff, tier_ups")


def test_unknown_member_and_bad_parameter(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    run("db", "upgrade", url=url)
    assert_one_line_error(run("audience", "show", "lapsed", "--member", "77", url=url), "no member with id 77")
    assert_one_line_error(run("audience", "count", "lapsed", "-p", "days=3", url=url), "has no parameter days")
    assert_one_line_error(run("audience", "count", "lapsed", "-p", "lapsed_days=abc", url=url), "lapsed_days")


def test_a_database_without_the_schema_says_how_to_fix_it(tmp_path: Path) -> None:
    result = run("audience", "count", "new_members", url=f"sqlite:///{tmp_path / 'empty.db'}")
    assert_one_line_error(result, "run `loyalflow db upgrade` first")


def test_default_database_is_a_sqlite_file_in_the_working_directory(tmp_path: Path) -> None:
    result = run("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    engine = make_engine(f"sqlite:///{tmp_path / 'loyalflow.db'}")
    assert "members" in inspect(engine).get_table_names()
    down = run("db", "downgrade", "--to", "base", cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert "members" not in inspect(engine).get_table_names()


@freeze_time("2026-11-23T12:00:00+00:00")
def test_audience_count_uses_the_current_time_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime, timezone

    from typer.testing import CliRunner

    from audiences.db import session_scope
    from flows import migrate
    from flows.cli import app
    from tests.audiences import builders as b

    url = f"sqlite:///{tmp_path / 'x.db'}"
    monkeypatch.setenv("LOYALFLOW_DATABASE_URL", url)
    engine = make_engine(url)
    migrate.upgrade(engine)
    now = datetime.now(timezone.utc)
    with session_scope(engine) as s:
        b.member(s, 1, enrolled_at=now - b.days(1))
        b.member(s, 2, enrolled_at=now - b.days(10))
    result = CliRunner().invoke(app, ["audience", "count", "new_members"])
    assert result.exit_code == 0, result.output
    assert "new_members: 1 members at 2026-11-23T12:00:00+00:00" in result.output
    shown = CliRunner().invoke(app, ["audience", "show", "new_members", "--member", "2"])
    assert "is OUT" in shown.output and "enrolled_recently" in shown.output

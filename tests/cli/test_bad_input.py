"""Issue 16 (CLI) and issue 17 (read-only commands): bad values, paths and files are one `error:`
line without member data; nothing is created; `preview` never prints a terminal escape from member data."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from audiences.db import make_engine, session_scope
from flows import migrate
from tests.audiences import builders as b
from tests.cli.running import assert_one_error_line, run_cli

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
HOSTILE = "Ann\x1b]0;owned\x07\x1b[2J\x9b31m"


@pytest.fixture()
def database(tmp_path: Path) -> str:
    """A migrated SQLite database with one member whose first name carries terminal escapes."""
    url = f"sqlite:///{tmp_path / 'loyalflow.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    with session_scope(engine) as s:
        b.member(s, 42, enrolled_at=T0).first_name = HOSTILE
    engine.dispose()
    return url


@pytest.mark.slow
@pytest.mark.parametrize(("args", "fragments"), [
    (("audience", "count", "points_expiring", "-p", "within_days=99999999999"),
     ("points_expiring", "out of range", "within_days=99999999999")),
    (("audience", "show", "points_expiring", "--member", "42", "-p", "within_days=99999999999"), ("out of range",)),
    (("audience", "count", "points_expiring", "--at", "9999-12-31"), ("--at '9999-12-31' is out of range",)),
    (("report", "--at", "9999-12-31"), ("--at '9999-12-31' is out of range",)),
    (("simulate", "win_back", "--start", "9999-12-31"), ("--start '9999-12-31' is out of range",)),
], ids=["within_days", "show-within_days", "count-at", "report-at", "simulate-start"])
def test_values_out_of_range(entry_point: str, tmp_path: Path, database: str, args: tuple[str, ...],
                             fragments: tuple[str, ...]) -> None:
    assert_one_error_line(run_cli(entry_point, *args, cwd=tmp_path, url=database), *fragments)


@pytest.mark.slow
def test_unwritable_paths(entry_point: str, tmp_path: Path, database: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    html = run_cli(entry_point, "preview", "points_expiring", "email_7d", "--html", str(blocker / "x.html"),
                   cwd=tmp_path, url=database)
    assert_one_error_line(html, "cannot use", str(blocker / "x.html"))
    gallery = run_cli(entry_point, "gallery", str(blocker / "gallery"), cwd=tmp_path, url=database)
    assert_one_error_line(gallery, "cannot use", str(blocker / "gallery"))
    report = run_cli(entry_point, "report", "--html", str(blocker / "r.html"), cwd=tmp_path, url=database)
    assert_one_error_line(report, "cannot use", str(blocker / "r.html"))


@pytest.mark.slow
def test_preview_shows_escapes_from_member_data_instead_of_sending_them(entry_point: str, tmp_path: Path,
                                                                       database: str) -> None:
    result = run_cli(entry_point, "preview", "welcome", "email_welcome", "--member", "42", cwd=tmp_path, url=database)
    assert result.returncode == 0, result.stderr
    assert "Ann" in result.stdout
    for raw in ("\x1b", "\x07", "\x9b"):
        assert raw not in result.stdout
    assert "\\x1b]0;owned\\x07" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("args", [("audience", "count", "lapsed"), ("audience", "show", "lapsed", "--member", "1"),
                                  ("report",), ("db", "current"), ("simulate", "win_back", "--start", "2026-10-01")])
def test_read_only_commands_never_create_a_database(entry_point: str, tmp_path: Path, args: tuple[str, ...]) -> None:
    result = run_cli(entry_point, *args, cwd=tmp_path)
    assert_one_error_line(result, "no database at sqlite:///loyalflow.db", "loyalflow db upgrade", "loyalflow demo")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("args", [("journeys",), ("audience", "list")])
def test_listings_that_need_no_database_leave_none(entry_point: str, tmp_path: Path, args: tuple[str, ...]) -> None:
    result = run_cli(entry_point, *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_db_upgrade_still_creates_the_database(entry_point: str, tmp_path: Path) -> None:
    result = run_cli(entry_point, "db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "loyalflow.db").is_file()


def _main_with(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], exc: BaseException) -> str:
    """Run main() on a throwaway command that raises `exc`; the one line it printed."""
    from flows.cli import app, main

    def boom() -> None:
        raise exc

    monkeypatch.setattr(app, "registered_commands", [*app.registered_commands])
    app.command("boom-for-test", hidden=True)(boom)
    with pytest.raises(SystemExit) as exited:
        main(["boom-for-test"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_a_non_utf8_file_is_one_line_without_its_content(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    raw = "member 7,Zoë,zoe@example.com".encode("latin-1")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        err = _main_with(monkeypatch, capsys, exc)
    assert "not UTF-8" in err and "offset" in err
    assert "zoe@example.com" not in err and "Zo" not in err


def test_overflow_and_os_errors_are_one_line(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert "out of range" in _main_with(monkeypatch, capsys, OverflowError("date value out of range"))
    err = _main_with(monkeypatch, capsys, PermissionError(13, "Permission denied", "/srv/out.html"))
    assert "cannot use /srv/out.html: Permission denied" in err


def test_database_echo_logs_statements_but_never_their_parameters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("LOYALFLOW_DATABASE_ECHO", "true")
    engine = make_engine(f"sqlite:///{tmp_path / 'echo.db'}")
    with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
        with engine.connect() as conn:
            conn.execute(text("SELECT :email AS e"), {"email": "ann.private@example.com"})
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "SELECT" in logged  # the switch still shows the statements
    assert "ann.private@example.com" not in logged
    engine.dispose()

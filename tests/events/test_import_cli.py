"""`loyalflow events import`: streamed, bad lines reported as file:line, good lines kept, exit code 2."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from audiences.models import Event
from flows.cli import app
from tests.events.events_data import add_members, purchase

RECENT = datetime.now(timezone.utc) - timedelta(hours=1)  # the command checks times against the wall clock


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_import_keeps_good_lines_reports_bad_ones_by_line_and_exits_2(sqlite_engine: Engine, tmp_path: Path,
                                                                      monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LOYALFLOW_DATABASE_URL", str(sqlite_engine.url))
    add_members(sqlite_engine, 2)
    secret = "+33612345678"
    file = write(tmp_path / "events.jsonl", [
        json.dumps(purchase("f1", 1, RECENT)),
        "{this is not json",
        json.dumps({**purchase("f2", 2, RECENT), "occurred_at": "2026-11-30T10:00:00", "phone": secret}),
        "",
        json.dumps(purchase("f3", 42, RECENT)),
        json.dumps(purchase("f1", 1, RECENT)),
        json.dumps(purchase("f4", 2, RECENT, phone=secret)),
    ])
    result = CliRunner().invoke(app, ["events", "import", str(file)])
    assert result.exit_code == 2, result.output
    out = result.output
    assert f"{file}:2: not valid JSON" in out
    assert f"{file}:3: " in out and "occurred_at has no time zone" in out and "phone unknown field" in out
    assert f"{file}:5: member_id no member has this id" in out
    assert f"{file}:6:" not in out and f"{file}:7:" not in out
    assert f"{file}: 6 line(s): 2 accepted, 1 duplicate, 3 rejected" in out
    assert secret not in out
    with Session(sqlite_engine) as s:
        assert s.execute(select(Event.idempotency_key, Event.source).order_by(Event.id)).all() == [("f1", "file"),
                                                                                                   ("f4", "file")]
    again = CliRunner().invoke(app, ["events", "import", str(file)])
    assert f"{file}: 6 line(s): 0 accepted, 3 duplicate, 3 rejected" in again.output


def test_a_clean_file_exits_0_and_a_missing_one_is_a_clear_error(sqlite_engine: Engine, tmp_path: Path,
                                                                  monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LOYALFLOW_DATABASE_URL", str(sqlite_engine.url))
    add_members(sqlite_engine, 3)
    file = write(tmp_path / "ok.jsonl", [json.dumps(purchase(f"k{i}", i % 3 + 1, RECENT)) for i in range(2500)])
    result = CliRunner().invoke(app, ["events", "import", str(file)])
    assert result.exit_code == 0, result.output
    assert "2500 line(s): 2500 accepted, 0 duplicate, 0 rejected" in result.output
    missing = CliRunner().invoke(app, ["events", "import", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "cannot read" in missing.output

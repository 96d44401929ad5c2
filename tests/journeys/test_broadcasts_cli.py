"""`loyalflow broadcast create|preview|send|list|cancel` in process, against a migrated SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from flows.cli import main
from journeys.models import Enrollment, SendStatus
from journeys.models import Send as LedgerRow
from tests.journeys.test_broadcasts import members


@pytest.fixture()
def cli_db(sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("LOYALFLOW_DATABASE_URL", str(sqlite_engine.url))
    monkeypatch.setenv("LOYALFLOW_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("LOYALFLOW_DELIVERY_MODE", "outbox")
    monkeypatch.setenv("LOYALFLOW_QUIET_HOURS_EMAIL", "")
    return sqlite_engine


def cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.mark.slow
def test_create_preview_send_deliver_list_and_cancel(cli_db: Engine, capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    members(cli_db, 30, consent_every=3)
    assert cli("broadcast", "create", "winter", "--template", "broadcasts/newsletter", "--param", "locale=en") == 0
    assert "created broadcast winter (draft)" in capsys.readouterr().out
    assert cli("broadcast", "preview", "winter", "--member", "7") == 0
    out = capsys.readouterr().out
    assert "subject: News from" in out and "Double points every Tuesday" in out
    assert cli("broadcast", "send", "winter", "--deliver") == 0
    out = capsys.readouterr().out
    assert "30 enrolled" in out and "this pass: 10 sent, 20 skipped" in out
    assert len([p for p in (tmp_path / "outbox").rglob("*.eml") if not p.name.startswith(".")]) == 10
    assert cli("broadcast", "send", "winter") == 2
    assert "only a draft can be sent" in capsys.readouterr().err
    assert cli("broadcast", "list", "--format", "json") == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["name"], row["status"], row["sent"], row["skipped"]) == ("winter", "sent", 10, {"no_consent": 20})
    assert cli("broadcast", "cancel", "winter") == 2
    assert "already sent" in capsys.readouterr().err

    assert cli("broadcast", "create", "spring", "--template", "broadcasts/newsletter") == 0
    assert cli("broadcast", "send", "spring", "--at", "2999-01-01T10:00:00+00:00", "--over", "1h") == 0
    assert "scheduled" in capsys.readouterr().out
    assert cli("broadcast", "cancel", "spring") == 0
    assert "30 member(s) will not get it" in capsys.readouterr().out
    with Session(cli_db) as s:
        assert s.scalar(select(func.count()).where(LedgerRow.status == SendStatus.sent)) == 10
        assert s.scalar(select(func.count()).where(Enrollment.exit_reason == "cancelled")) == 30


def test_bad_input_names_the_problem(cli_db: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("broadcast", "create", "x", "--template", "broadcasts/missing") == 2
    err = capsys.readouterr().err
    assert "unknown template 'broadcasts/missing'" in err and "broadcasts/newsletter" in err
    assert cli("broadcast", "send", "nope") == 2
    assert "unknown broadcast 'nope'" in capsys.readouterr().err
    assert cli("broadcast", "create", "x", "--template", "broadcasts/newsletter") == 0
    assert cli("broadcast", "send", "x", "--over", "soon") == 2
    assert "not a duration" in capsys.readouterr().err
    with Session(cli_db) as s:
        assert s.scalar(select(func.count()).select_from(Enrollment)) == 0

"""`loyalflow consent import` and `loyalflow serve`, as a person runs them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select

from audiences.db import session_scope
from channels.models import ConsentEvent
from flows.cli import main
from tests.channels.people import add_members


def test_consent_import_reports_bad_lines_and_keeps_good_rows(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with session_scope(sqlite_engine) as s:
        add_members(s, 1)
    monkeypatch.setenv("LOYALFLOW_DATABASE_URL", str(sqlite_engine.url))
    csv = tmp_path / "c.csv"
    csv.write_text("recipient_id,channel,purpose,action,occurred_at\n1,email,marketing,opt_in,2026-01-01T00:00:00Z\n"
                   "1,email,marketing,opt_in,yesterday\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["consent", "import", str(csv)])
    out = capsys.readouterr().out
    assert exit_.value.code == 1
    assert "c.csv:3: occurred_at 'yesterday' is not an ISO 8601 timestamp" in out
    assert "1 consent events imported, 1 rows refused" in out
    with session_scope(sqlite_engine) as s:
        assert s.scalar(select(func.count()).select_from(ConsentEvent)) == 1

    with pytest.raises(SystemExit) as exit_:
        main(["consent", "import", str(tmp_path / "missing.csv")])
    assert exit_.value.code == 2 and "cannot read consent file" in capsys.readouterr().err


def test_serve_answers_on_localhost(sqlite_engine: Engine, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = os.environ | {"LOYALFLOW_DATABASE_URL": str(sqlite_engine.url), "LOYALFLOW_UNSUBSCRIBE_SECRET": "s"}
    proc = subprocess.Popen([sys.executable, "-c", "from flows.cli import main; main()", "serve", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError(proc.stderr.read().decode() if proc.stderr else "serve did not start") from None
                time.sleep(0.1)
        assert response.text == "ok"
        forged = httpx.post(f"http://127.0.0.1:{port}/webhooks/twilio/inbound", data={"Body": "STOP"})
        assert forged.status_code == 403
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)

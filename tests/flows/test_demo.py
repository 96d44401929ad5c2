"""`loyalflow demo`, run as a newcomer runs it: from nothing to an outbox and a report."""

from __future__ import annotations

import email
import os
import subprocess
import sys
from email import policy
from pathlib import Path

import pytest


def demo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOYALFLOW_", "PREFECT_API"))}
    env["PREFECT_HOME"] = str(cwd / ".prefect")
    env["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", "demo", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_demo_from_nothing_to_outbox_and_report(tmp_path: Path) -> None:
    result = demo("--members", "400", "--days", "6", "--today", "2026-11-23", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "loyalflow-demo"
    report = (folder / "report.html").read_text(encoding="utf-8")
    assert "<svg" in report and "points_expiring" in report
    mails = sorted((folder / "outbox" / "email").glob("*.eml"))
    assert mails, "the demo sent no email"
    message = email.message_from_bytes(mails[0].read_bytes(), policy=policy.default)
    assert message["To"] and message["Subject"]
    assert message.get_body(("plain",)) is not None and message.get_body(("html",)) is not None
    for line in ("report", "outbox", "LOYALFLOW_DATABASE_URL"):
        assert line in result.stdout
    assert "Traceback" not in result.stderr

    again = demo("--members", "400", "--days", "6", "--today", "2026-11-23", cwd=tmp_path)  # re-runnable
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in (folder / "outbox" / "email").glob("*.eml")) == [p.name for p in mails]


def test_demo_never_touches_a_folder_it_did_not_make(tmp_path: Path) -> None:
    mine = tmp_path / "important"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me", encoding="utf-8")
    result = demo("--dir", str(mine), "--members", "10", "--days", "1", cwd=tmp_path)
    assert result.returncode != 0 and "not a loyalflow demo folder" in result.stderr
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "keep me"

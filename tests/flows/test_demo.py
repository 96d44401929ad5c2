"""`loyalflow demo`, run as a newcomer runs it: from nothing to an outbox and a report."""

from __future__ import annotations

import email
import os
import re
import subprocess
import sys
from email import policy
from pathlib import Path

import pytest


def demo(*args: str, cwd: Path, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The demo with its output to pipes (not a terminal), as in CI or `loyalflow demo > log`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOYALFLOW_", "PREFECT_API", "PREFECT_SERVER"))}
    env["PREFECT_HOME"] = str(cwd / ".prefect")
    env["COLUMNS"] = "200"
    env.update(env_extra or {})
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
    # not a terminal: one plain line per phase and per simulated day, in order
    lines = result.stdout.splitlines()
    phases = ["generating 400 members", "starting Prefect's local API", "replaying 6 days",
              *(f"day {i}/6 (2026-11-{16 + i:02d}) replayed" for i in range(1, 7)), "writing the report"]
    positions = [next(n for n, line in enumerate(lines) if phase in line) for phase in phases]
    assert positions == sorted(positions), lines

    # the demo's links are signed with the secret it wrote for `loyalflow serve`
    env_file = folder / ".env"
    exports = dict(line.removeprefix("export ").split("  #")[0].split("=", 1) for line in
                   env_file.read_text(encoding="utf-8").splitlines() if line.startswith("export "))
    secret = exports["LOYALFLOW_UNSUBSCRIBE_SECRET"]
    assert len(secret) >= 32 and secret not in result.stdout + result.stderr
    assert exports["LOYALFLOW_DATABASE_URL"] == f"sqlite:///{(folder / 'loyalflow.db').resolve()}"
    assert env_file.stat().st_mode & 0o077 == 0  # only its owner reads it
    assert_links_verify(mails, secret)

    again = demo("--members", "400", "--days", "6", "--today", "2026-11-23", cwd=tmp_path)  # re-runnable
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in (folder / "outbox" / "email").glob("*.eml")) == [p.name for p in mails]


def assert_links_verify(mails: list[Path], secret: str) -> None:
    """Every List-Unsubscribe link in the demo's emails verifies with the demo's secret (and not another)."""
    from pydantic import SecretStr

    from channels.settings import ChannelSettings
    from channels.unsubscribe import InvalidUnsubscribeToken, read_token

    checked = 0
    for path in mails:
        header = email.message_from_bytes(path.read_bytes(), policy=policy.default)["List-Unsubscribe"]
        if header is None:
            continue
        found = re.search(r"/unsubscribe/(\d+)/([^>\s]+)>", str(header))
        assert found, header
        member, token = int(found.group(1)), found.group(2)
        claim = read_token(ChannelSettings(unsubscribe_secret=SecretStr(secret)), token, member)
        assert claim.recipient_id == member
        with pytest.raises(InvalidUnsubscribeToken):
            read_token(ChannelSettings(unsubscribe_secret=SecretStr("another" * 8)), token, member)
        checked += 1
    assert checked, "no marketing email with a List-Unsubscribe link"


@pytest.mark.slow
def test_prefect_that_cannot_start_is_one_line_saying_what_to_do(tmp_path: Path) -> None:
    result = demo("--members", "20", "--days", "1", cwd=tmp_path,
                  env_extra={"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "0"})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("error: Prefect's local API did not start")
    assert "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in line and "PREFECT_API_URL" in line


def test_demo_never_touches_a_folder_it_did_not_make(tmp_path: Path) -> None:
    mine = tmp_path / "important"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me", encoding="utf-8")
    result = demo("--dir", str(mine), "--members", "10", "--days", "1", cwd=tmp_path)
    assert result.returncode != 0 and "not a loyalflow demo folder" in result.stderr
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_the_demo_folder_is_git_ignored() -> None:
    repo = Path(__file__).resolve().parents[2]
    if not (repo / ".git").exists():
        pytest.skip("not a git checkout")
    for path in ("loyalflow-demo/loyalflow.db", "loyalflow-demo/.env", "loyalflow-demo/outbox/email/1.eml"):
        assert subprocess.run(["git", "check-ignore", "-q", path], cwd=repo).returncode == 0, path

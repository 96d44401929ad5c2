"""The production commands refuse clearly instead of going nowhere: `deploy` and `serve-flows` without a
reachable Prefect server, and `run` when Prefect's temporary API cannot start; the embedded scheduler
does not touch Prefect at all, so a slow Prefect start cannot cost it a pass."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

LOYALFLOW = shutil.which("loyalflow")
START_HINT = "start one with `prefect server start`, then `export PREFECT_API_URL=http://127.0.0.1:4200/api`"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


def run_cli(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect"), "DO_NOT_TRACK": "1",
                "LOYALFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'loyalflow.db'}", **extra})
    command = [LOYALFLOW] if LOYALFLOW else [sys.executable, "-c", "from flows.cli import main; main()"]
    return subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)


def no_temporary_server(tmp_path: Path) -> bool:
    """Prefect's temporary server keeps its database in PREFECT_HOME: none means none was started."""
    home = tmp_path / "prefect"
    return not any(p.suffix == ".db" for p in home.rglob("*")) if home.exists() else True


@pytest.mark.slow
@pytest.mark.parametrize("command", [["deploy"], ["deploy", "--work-pool", "elsewhere"], ["serve-flows"]])
def test_without_a_prefect_server_the_command_refuses_in_one_line(tmp_path: Path, command: list[str]) -> None:
    done = run_cli(tmp_path, *command)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "PREFECT_API_URL is not set" in lines[0] and START_HINT in lines[0], done.stderr
    assert done.stdout == "" and no_temporary_server(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["deploy", "serve-flows"])
def test_with_an_unreachable_prefect_server_the_command_refuses_in_one_line(tmp_path: Path, command: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}/api"
    done = run_cli(tmp_path, command, PREFECT_API_URL=url)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"no Prefect server answers at PREFECT_API_URL={url}" in lines[0], done.stderr
    assert START_HINT in lines[0] and no_temporary_server(tmp_path)


def test_run_turns_a_temporary_api_that_never_starts_into_one_line(
        sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """What Prefect raises when its temporary API does not answer in time becomes one line, exit 2."""
    import flows.journey_flows
    from flows.cli import main

    def never_starts(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Timed out while attempting to connect to ephemeral Prefect API server. stdout: ...")

    monkeypatch.setenv("LOYALFLOW_DATABASE_URL", str(sqlite_engine.url))
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setattr(flows.journey_flows, "journey_tick", never_starts)
    with pytest.raises(SystemExit) as exit_:
        main(["run", "welcome"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did not start within 300 s" in err[0] and "prefect server start" in err[0], err


def test_the_cli_gives_the_temporary_api_time_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.runtime import quiet_prefect

    monkeypatch.delenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", raising=False)
    quiet_prefect()
    assert os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "300"


@pytest.mark.slow
def test_a_scheduler_pass_never_imports_prefect(tmp_path: Path) -> None:
    """The embedded runtime's pass is a plain engine call: however slowly Prefect's API would start, no
    pass waits for it (nor can lose a tick to it)."""
    code = f"""
import sys
from datetime import datetime, timezone
from sqlalchemy.orm import sessionmaker
from audiences.db import make_engine
from flows import migrate, scheduler
from journeys.registry import journeys
from journeys.services import default_services
engine = make_engine("sqlite:///{tmp_path / 'loyalflow.db'}")
migrate.upgrade(engine)
runner = scheduler.PassRunner(sessionmaker(engine), journeys(), default_services(), probes=[])
assert runner.step()
print(sorted(m for m in sys.modules if m == "prefect" or m.startswith("prefect.")))
"""
    env = {**os.environ, "LOYALFLOW_OUTBOX_DIR": str(tmp_path / "outbox")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"

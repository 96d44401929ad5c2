"""A real Prefect server on 127.0.0.1: `loyalflow serve-flows` serves the journeys' deployments,
a deployment run is picked up, and its messages land in the outbox."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session

from audiences.db import make_engine
from flows import migrate
from tests.audiences import builders as b

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_a_deployment_run_is_served_and_sends_to_the_outbox(tmp_path: Path) -> None:
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_API_URL": api, "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "LOYALFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'loyalflow.db'}",
        "LOYALFLOW_OUTBOX_DIR": str(tmp_path / "outbox"),
    })
    engine = make_engine(env["LOYALFLOW_DATABASE_URL"])
    migrate.upgrade(engine)
    with Session(engine, expire_on_commit=False) as s:
        b.tiers(s)
        for i in range(1, 6):
            b.member(s, i, enrolled_at=NOW - timedelta(hours=i))
        s.commit()

    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    served = None
    try:
        def healthy() -> bool:
            try:
                return httpx.get(f"{api}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 120, "the Prefect server")
        served = subprocess.Popen([sys.executable, "-c", "from flows.cli import main; main()", "serve-flows"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run = subprocess.run([sys.executable, "-c", f"""
import time
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
with get_client(sync_client=True) as client:
    for _ in range(240):
        try:
            client.read_deployment_by_name("journey-tick/welcome"); break
        except Exception:
            time.sleep(0.5)
flow_run = run_deployment("journey-tick/welcome", parameters={{"journey": "welcome", "now": "{NOW.isoformat()}"}},
                          timeout=180)
print(flow_run.state.type.value)
"""], env=env, capture_output=True, text=True, timeout=300)
        assert run.stdout.strip().splitlines()[-1] == "COMPLETED", run.stdout + run.stderr
        mails = sorted((tmp_path / "outbox" / "email").glob("*.eml"))
        assert len(mails) == 5
        assert "Welcome" in mails[0].read_text(encoding="utf-8")

        # `loyalflow deploy`: a deployment per journey on a process work pool, with its cron
        repo = Path(__file__).resolve().parents[2]
        deployed = subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", "deploy",
                                   "--work-pool", "loyalflow-test", "--source", str(repo)],
                                  env=env, capture_output=True, text=True, timeout=180)
        assert deployed.returncode == 0, deployed.stderr
        listing = subprocess.run([sys.executable, "-c", """
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, WorkPoolFilter, WorkPoolFilterName
with get_client(sync_client=True) as client:
    found = client.read_deployments(work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=["loyalflow-test"])))
    for d in sorted(found, key=lambda d: d.name):
        limit = d.global_concurrency_limit.limit if d.global_concurrency_limit else None
        print(d.name, d.schedules[0].schedule.cron, d.parameters["journey"], limit)
"""], env=env, capture_output=True, text=True, timeout=120)
        lines = listing.stdout.strip().splitlines()
        assert lines == [
            "points_expiring 0 6 * * * points_expiring 1", "staff_bulletin 0 7 * * 1 staff_bulletin 1",
            "tier_up 30 * * * * tier_up 1", "welcome 0 * * * * welcome 1", "win_back 0 7 * * * win_back 1",
        ], listing.stdout + listing.stderr

        # a process worker picks up a run of the deployed journey and sends to the outbox
        later = NOW + timedelta(days=1)
        with Session(engine, expire_on_commit=False) as s:
            for i in range(6, 9):
                b.member(s, i, enrolled_at=later - timedelta(hours=1))
            s.commit()
        queued = subprocess.run([sys.executable, "-c", f"""
from prefect.deployments import run_deployment
run = run_deployment("journey-tick/welcome", parameters={{"journey": "welcome", "now": "{later.isoformat()}"}},
                     timeout=0)
print(run.id)
"""], env=env, capture_output=True, text=True, timeout=120)
        assert queued.returncode == 0, queued.stderr
        worker = subprocess.run([sys.executable, "-m", "prefect", "worker", "start", "--pool", "loyalflow-test",
                                 "--type", "process", "--run-once"], env=env, capture_output=True, text=True,
                                cwd=repo, timeout=300)
        assert worker.returncode == 0, worker.stdout[-2000:] + worker.stderr[-2000:]
        mails = sorted((tmp_path / "outbox" / "email").glob("*.eml"))
        assert len(mails) == 8, worker.stdout[-2000:] + worker.stderr[-2000:]
    finally:
        for process in (served, server):
            if process is not None:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()

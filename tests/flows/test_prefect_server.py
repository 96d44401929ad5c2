"""A real Prefect server on 127.0.0.1 and the production path, step by step as the README walks it:
`serve-flows` runs the every-minute pass and stops cleanly on Ctrl-C; `deploy` and `serve-flows`
refuse each other; `deploy` registers the pass on a work pool and a process worker runs it; runs
are named for what they are; `loyalflow run` names its run and links to it.

Every wait is on a condition (the server answers, the ledger rows are final), never on a duration.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from audiences.db import make_engine
from flows import migrate
from journeys.models import FINAL_SEND_STATUSES, Send, SendStatus
from tests.audiences import builders as b

REPO = Path(__file__).resolve().parents[2]
PATIENCE = 900  # seconds: a loaded CI box is slow; these bound a hang, they do not measure speed
LOYALFLOW = [sys.executable, "-c", "from flows.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], bool], what: str, seconds: float = PATIENCE) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.5)


def final_sends(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).where(Send.status.in_(FINAL_SEND_STATUSES))) or 0)


def sent(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).where(Send.status == SendStatus.sent)) or 0)


def add_members(engine: Engine, ids: range) -> None:
    """New members who joined over an hour ago: the next welcome entry (hourly cron) takes them."""
    now = datetime.now(timezone.utc)
    with Session(engine, expire_on_commit=False) as s:
        for i in ids:
            b.member(s, i, enrolled_at=now - timedelta(hours=1, minutes=i))
        s.commit()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LOYALFLOW, *args], env=env, capture_output=True, text=True, timeout=PATIENCE, cwd=REPO)


def api_python(env: dict[str, str], code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=PATIENCE)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[dict[str, str]]:
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
    process = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def healthy() -> bool:
        try:
            return httpx.get(f"{api}/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, "the Prefect server to answer")
        yield env
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


def stop_prefect_worker(worker: subprocess.Popen[str]) -> None:
    """Prefect's own `prefect worker start` sometimes goes on idling after SIGTERM (its asyncio loop
    absorbs the cancellation): that is Prefect's process, not ours, so after a generous wait it is
    killed; what this test checks (the worker ran the pass) is already settled by then."""
    worker.send_signal(signal.SIGTERM)
    try:
        worker.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.communicate(timeout=60)


def stop(process: subprocess.Popen[str], sig: int = signal.SIGINT) -> str:
    process.send_signal(sig)
    try:
        out, _ = process.communicate(timeout=PATIENCE)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return out


@pytest.mark.slow
def test_the_production_path_on_a_real_server(server: dict[str, str], tmp_path: Path) -> None:
    env = server
    engine = make_engine(env["LOYALFLOW_DATABASE_URL"])
    migrate.upgrade(engine)
    with Session(engine) as s:
        b.tiers(s)
        s.commit()
    add_members(engine, range(1, 6))

    # 1. serve-flows: the every-minute pass runs from this one process and sends the welcome emails
    served = subprocess.Popen([*LOYALFLOW, "serve-flows"], env=env, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: final_sends(engine) >= 5 or served.poll() is not None, "5 welcome emails by serve-flows")
        assert served.poll() is None, served.communicate()[0]
        # 2. while it serves, `deploy` refuses: one runtime per server
        refused = cli(env, "deploy", "--work-pool", "loyalflow-test", "--source", str(REPO))
        assert refused.returncode == 2 and "serve-flows" in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    finally:
        out = stop(served)  # Ctrl-C
    assert served.returncode == 0, out
    assert sent(engine) == 5 and len(list((tmp_path / "outbox" / "email").glob("*.eml"))) == 5
    assert "Traceback" not in out and out.strip().splitlines()[-1] == "serve-flows stopped", out
    assert re.search(r"loyalflow pass at \S+: enrolled 5, advanced 5, sent 5", out), out  # one line per run
    paused = api_python(env, """
from prefect.client.orchestration import get_client
with get_client(sync_client=True) as c:
    print(c.read_deployment_by_name("loyalflow-pass/every-minute").paused)
""")
    assert paused.strip() == "False"  # Ctrl-C does not pause the schedule

    # 3. the served deployment is replaced by a deployment on a work pool (after deleting it)
    api_python(env, """
from prefect.client.orchestration import get_client
with get_client(sync_client=True) as c:
    c.delete_deployment(c.read_deployment_by_name("loyalflow-pass/every-minute").id)
""")
    deployed = cli(env, "deploy", "--work-pool", "loyalflow-test", "--source", str(REPO))
    assert deployed.returncode == 0, deployed.stderr
    lines = deployed.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("deployed loyalflow-pass/every-minute (* * * * *"), deployed.stdout
    assert lines[1] == "start workers: prefect worker start --pool loyalflow-test --limit 2"
    listing = api_python(env, """
from prefect.client.orchestration import get_client
with get_client(sync_client=True) as c:
    d = c.read_deployment_by_name("loyalflow-pass/every-minute")
    print(d.work_pool_name, d.schedules[0].schedule.cron, d.global_concurrency_limit.limit,
          d.concurrency_options.collision_strategy.value)
""")
    assert listing.split() == ["loyalflow-test", "*", "*", "*", "*", "*", "1", "CANCEL_NEW"]
    # serve-flows now refuses in turn, naming the way out
    refused = cli(env, "serve-flows")
    assert refused.returncode == 2 and "prefect deployment delete loyalflow-pass/every-minute" in refused.stderr

    # 4. a process worker runs the deployed pass: three more members are welcomed at welcome's next
    # hourly entry (queued for that instant, so the test need not wait for the hour)
    add_members(engine, range(6, 9))
    entry = (datetime.now(timezone.utc) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    api_python(env, f"""
from prefect.deployments import run_deployment
run_deployment("loyalflow-pass/every-minute", parameters={{"now": "{entry.isoformat()}"}}, timeout=0)
""")
    worker = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", "loyalflow-test",
                               "--type", "process"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: final_sends(engine) >= 8 or worker.poll() is not None, "3 more emails by a worker")
        assert worker.poll() is None, worker.communicate()[0][-3000:]
    finally:
        stop_prefect_worker(worker)
    assert sent(engine) == 8 and len(list((tmp_path / "outbox" / "email").glob("*.eml"))) == 8

    # 5. runs are named for the pass and the minute they stand for
    names = api_python(env, """
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import StateType
with get_client(sync_client=True) as c:
    runs = c.read_flow_runs(flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED]))))
    for r in runs:
        print(r.name)
""").split("\n")
    names = [n for n in names if n]
    assert len(names) >= 2 and all(re.fullmatch(r"pass \d{4}-\d\d-\d\dT\d\d:\d\dZ", n) for n in names), names
    assert f"pass {entry:%Y-%m-%dT%H:%M}Z" in names

    # 6. `loyalflow run` prints its run's name and where to see it
    ran = cli(env, "run", "tier_up")
    assert ran.returncode == 0, ran.stderr
    first = ran.stdout.splitlines()[0]
    assert re.fullmatch(rf"flow run tier_up \d{{4}}-\d\d-\d\dT\d\d:\d\dZ: {env['PREFECT_API_URL'][:-4]}"
                        r"/runs/flow-run/[0-9a-f-]{36}", first), ran.stdout

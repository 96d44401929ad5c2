"""A real Prefect server, a process work pool and N `prefect worker start` processes around one
PostgreSQL database: what the fan-out test and `tests/bench/bench_fanout.py` share.

Everything is waited for on a condition (the server answers, the workers are online, the pass run is
final) with generous bounds that only catch a hang; every process started here is stopped on exit,
even when the body fails.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.audiences import builders as b

REPO = Path(__file__).resolve().parents[2]
PATIENCE = 900.0  # seconds: bounds a hang on a loaded box, never measures speed
POOL = "loyalflow-fanout"
LOYALFLOW = [sys.executable, "-c", "from flows.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], what: str, seconds: float = PATIENCE, every: float = 0.5) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(every)
    return value


def members(engine: Engine, count: int, now: datetime) -> None:
    """`count` members who joined over the hour before `now`: welcome's entry at `now` takes them all."""
    b.reset_ids()
    with Session(engine, expire_on_commit=False) as s:
        b.tiers(s)
        for i in range(1, count + 1):
            b.member(s, i, enrolled_at=now - timedelta(hours=1 + i % 50))
        s.commit()


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(60)


@dataclass
class Pool:
    """The running server and workers; `api` talks to the server's REST API."""

    env: dict[str, str]
    api: str
    logs: Path
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call, retried while a loaded server answers 429/5xx or not at all (as Prefect's client does)."""
        deadline = time.monotonic() + PATIENCE
        while True:
            try:
                response = httpx.request(method, f"{self.api}{path}", timeout=60, **kwargs)
                if response.status_code != 429 and response.status_code < 500:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            else:
                if time.monotonic() > deadline:
                    break
            time.sleep(2)
        response.raise_for_status()
        return response.json() if response.content else None

    def deployment(self, name: str) -> dict[str, Any]:
        return self.request("GET", f"/deployments/name/{name}")

    def online_workers(self) -> dict[str, str]:
        """Worker id -> name, for the workers of the pool that are online."""
        rows = self.request("POST", f"/work_pools/{POOL}/workers/filter", json={})
        return {w["id"]: w["name"] for w in rows if w.get("status") == "ONLINE"}

    def identities(self) -> dict[str, str]:
        """What a range run records as its worker (`flows.fanout.who`, after the host) -> the worker's name:
        the name, or the pid of the worker process (`prefect worker start` runs it as its child)."""
        keys = {name: name for name in self.workers}
        for name, process in self.workers.items():
            for task in Path(f"/proc/{process.pid}/task").glob("*"):
                for child in (task / "children").read_text().split():
                    keys[f"pid {child}"] = name
            keys[f"pid {process.pid}"] = name
        return keys

    def start_run(self, deployment: str, parameters: dict[str, Any]) -> str:
        found = self.deployment(deployment)
        key = uuid.uuid4().hex  # a retried request after a lost answer makes no second run
        return self.request("POST", f"/deployments/{found['id']}/create_flow_run",
                            json={"parameters": parameters, "idempotency_key": key})["id"]

    def run(self, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/flow_runs/{run_id}")

    def artifact_table(self, key: str, run_id: str) -> list[dict[str, Any]]:
        rows = self.request("POST", "/artifacts/filter", json={
            "artifacts": {"key": {"any_": [key]}, "flow_run_id": {"any_": [run_id]}}})
        if not rows:
            return []
        data = rows[-1]["data"]
        return json.loads(data) if isinstance(data, str) else data

    def worker_output(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")


@contextmanager
def prefect_pool(tmp_path: Path, database_url: str, worker_names: list[str], *, limit: int = 2,
                 query_seconds: int = 2) -> Iterator[Pool]:
    """A Prefect server, `loyalflow deploy` onto a process pool (schedule paused: runs are started by
    hand), and one `prefect worker start --limit` process per name, all online before this yields."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    logs = tmp_path / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LOYALFLOW_"))}
    env.update({
        "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_API_URL": api, "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_WORKER_QUERY_SECONDS": str(query_seconds),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": str(int(PATIENCE)),
        "LOYALFLOW_DATABASE_URL": database_url, "LOYALFLOW_DELIVERY_MODE": "outbox",
        "LOYALFLOW_OUTBOX_DIR": str(tmp_path / "outbox"),
    })
    with ExitStack() as stack:
        server_log = stack.enter_context((logs / "server.log").open("wb"))
        server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                   "--port", str(port)], env=env, stdout=server_log, stderr=subprocess.STDOUT)
        stack.callback(_stop, server)
        pool = Pool(env=env, api=api, logs=logs)

        def healthy() -> bool:
            try:
                return httpx.get(f"{api}/health", timeout=10).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(lambda: healthy() or server.poll() is not None, "the Prefect server to answer")
        assert server.poll() is None, (logs / "server.log").read_text(errors="replace")[-3000:]
        deployed = subprocess.run([*LOYALFLOW, "deploy", "--work-pool", POOL, "--source", str(REPO)], env=env,
                                  cwd=REPO, capture_output=True, text=True, timeout=PATIENCE)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        passes = pool.deployment("loyalflow-pass/every-minute")
        pool.request("POST", f"/deployments/{passes['id']}/pause_deployment")  # and its auto-scheduled runs go
        for name in worker_names:
            log = stack.enter_context((logs / f"{name}.log").open("wb"))
            worker = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL,
                                       "--type", "process", "--limit", str(limit), "--name", name],
                                      env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
            pool.workers[name] = worker
            stack.callback(_stop, worker)
        wait_for(lambda: set(pool.online_workers().values()) >= set(worker_names)
                 or any(w.poll() is not None for w in pool.workers.values()), "the workers to come online")
        for name, worker in pool.workers.items():
            assert worker.poll() is None, pool.worker_output(name)[-3000:]
        yield pool


def run_pass(pool: Pool, now: datetime, chunk_size: int) -> dict[str, Any]:
    """Start one pass run on the pool and wait until it is final; returns the run as the API has it."""
    run_id = pool.start_run("loyalflow-pass/every-minute", {"now": now.isoformat(), "chunk_size": chunk_size,
                                                             "pickup_seconds": PATIENCE})

    def final() -> dict[str, Any] | None:
        run = pool.run(run_id)
        if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run
        if any(w.poll() is not None for w in pool.workers.values()):
            raise AssertionError("a worker exited: " + " | ".join(pool.worker_output(n)[-2000:] for n in pool.workers))
        return None

    return wait_for(final, "the pass run to finish", every=1.0)

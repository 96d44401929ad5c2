"""Benchmark: event accepted -> message in the outbox with the embedded scheduler running, and
events accepted per second by POST /v1/events.

Latency: the real `loyalflow serve` app under uvicorn on 127.0.0.1 and the real embedded scheduler
(flows.scheduler.start: APScheduler jobs in the database, the pass runner, its wake probe) with the
outbox adapter, on a SQLite file. Events (a first purchase each, for the shipped `first_purchase`
journey) are posted one at a time; the figure is from the moment the request is sent to the moment
the thank-you email is in the outbox. Three layouts:
- `cli`: `loyalflow serve` and `loyalflow scheduler` started as a user does, two processes; the
  scheduler notices new events with its 1 s wake probe; the .eml file's appearance is the arrival;
- `one-process`: serve (uvicorn thread) and the scheduler in one process, so an accepted event wakes
  the pass directly (the outbox adapter notes when it has written the file);
- `two-processes`: `serve` in a child process, the scheduler in this one (probe), same timing.

Throughput: batches of `--batch` events from `--clients` concurrent clients to a separate server
process; every event distinct and valid; the run checks that exactly that many rows were stored.

    python -m tests.bench.bench_events [--events 60] [--gap 0.5] [--throughput 20000] [--batch 500]
                                       [--clients 4] [--layouts cli,one-process,two-processes]
                                       [--postgres] [--json FILE]
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

KEY = "bench-events-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


POSTGRES: Any = None  # a throwaway server (tests/support/postgres.py) when --postgres is given


def prepare(folder: Path, members: int) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    from audiences.db import make_engine
    from audiences.models import Member
    from flows import migrate

    url = f"sqlite:///{folder / 'loyalflow.db'}"
    if POSTGRES is not None:
        name = f"bench_{folder.name.replace('-', '_')[-20:]}".lower()
        admin = create_engine(POSTGRES.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = POSTGRES.url(name)
    engine = make_engine(url)
    migrate.upgrade(engine)
    with Session(engine) as s:
        s.add_all(Member(id=i, first_name=f"M{i}", email=f"m{i}@example.com", locale="en",
                         time_zone="Europe/Paris", country="FR", enrolled_at=datetime(2026, 1, 1, tzinfo=timezone.utc))
                  for i in range(1, members + 1))
        s.commit()
    engine.dispose()
    return url


def event(key: str, member: int) -> dict[str, Any]:
    return {"type": "purchase", "member_id": member, "occurred_at": datetime.now(timezone.utc).isoformat(),
            "idempotency_key": key, "properties": {"amount": 42.5, "currency": "EUR", "store_name": "Lyon",
                                                   "points_earned": 43, "first_purchase": True}}


def serve_forever(url: str, port: int) -> None:
    """What `--serve` runs in a child process: the real app under uvicorn, as `loyalflow serve` does."""
    import uvicorn

    from audiences.db import make_engine
    from channels.settings import channel_settings
    from channels.webhooks.app import create_app

    uvicorn.run(create_app(make_engine(url), channel_settings()), host="127.0.0.1", port=port, log_level="warning",
                access_log=False)


def start_server_process(url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "LOYALFLOW_EVENTS_API_KEY": KEY, "LOYALFLOW_DATABASE_URL": url}
    proc = subprocess.Popen([sys.executable, "-m", "tests.bench.bench_events", "--serve", url, str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    wait_until_up(base, proc)
    return proc, base


def wait_until_up(base: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(f"{base}/healthz", timeout=2)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
                raise SystemExit("the events server did not start")
            time.sleep(0.1)


class TimedOutbox:
    """The real outbox adapter; notes when each member's message has been written."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.written: dict[int, float] = {}
        self.lock = threading.Lock()

    def send(self, messages: Any) -> Any:
        results = self.inner.send(messages)
        done = time.monotonic()
        with self.lock:
            for m in messages:
                self.written.setdefault(m.recipient_id, done)
        return results


def latency(layout: str, count: int, gap: float) -> dict[str, Any]:
    from sqlalchemy.orm import Session

    from audiences.db import make_engine
    from channels.adapters.outbox import OutboxAdapter
    from channels.settings import channel_settings
    from flows import scheduler
    from journeys.registry import journeys
    from journeys.services import services_for

    with tempfile.TemporaryDirectory(prefix="loyalflow-bench-events-") as tmp:
        folder = Path(tmp)
        url = prepare(folder, count)
        os.environ["LOYALFLOW_EVENTS_API_KEY"] = KEY
        os.environ["LOYALFLOW_OUTBOX_DIR"] = str(folder / "outbox")
        outbox = TimedOutbox(OutboxAdapter(channel_settings()))
        engine = make_engine(url)
        services = services_for(outbox)
        running = scheduler.start(engine, journeys(), services)
        proc = None
        server = None
        try:
            if layout == "one-process":
                import uvicorn

                from channels.webhooks.app import create_app

                port = free_port()
                server = uvicorn.Server(uvicorn.Config(create_app(engine, channel_settings()), host="127.0.0.1",
                                                       port=port, log_level="warning", access_log=False))
                threading.Thread(target=server.run, daemon=True).start()
                base = f"http://127.0.0.1:{port}"
                wait_until_up(base)
            else:
                proc, base = start_server_process(url)
            time.sleep(2)  # let the start-up catch-up pass finish
            sent: dict[int, float] = {}
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as client:
                for member in range(1, count + 1):
                    started = time.monotonic()
                    answer = client.post("/v1/events", json=event(f"lat-{layout}-{member}", member))
                    assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text
                    sent[member] = started
                    time.sleep(gap)
            deadline = time.monotonic() + 120
            while len(outbox.written) < count and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            if server is not None:
                server.should_exit = True
            if proc is not None:
                proc.terminate()
                proc.wait(30)
            scheduler.stop(engine, running)
        with Session(engine) as s:
            from journeys.models import Send

            ledger = s.query(Send).filter(Send.status == "sent").count()
        engine.dispose()
    delays = sorted(outbox.written[m] - sent[m] for m in sent if m in outbox.written)
    assert ledger == len(outbox.written), (ledger, len(outbox.written))
    return _figures(layout, count, delays)


def latency_cli(count: int, gap: float) -> dict[str, Any]:
    """`loyalflow serve` and `loyalflow scheduler` as a user runs them, each its own process; a
    message counts as in the outbox when its .eml file appears (polled every 10 ms)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from audiences.db import make_engine
    from journeys.models import Send

    with tempfile.TemporaryDirectory(prefix="loyalflow-bench-events-") as tmp:
        folder = Path(tmp)
        url = prepare(folder, count + 1)
        port = free_port()
        env = {**os.environ, "LOYALFLOW_EVENTS_API_KEY": KEY, "LOYALFLOW_DATABASE_URL": url,
               "LOYALFLOW_OUTBOX_DIR": str(folder / "outbox"), "LOYALFLOW_UNSUBSCRIBE_SECRET": "bench-secret"}
        serve = subprocess.Popen(["loyalflow", "serve", "--port", str(port)], env=env, cwd=folder,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sched = subprocess.Popen(["loyalflow", "scheduler"], env=env, cwd=folder, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        seen: dict[str, float] = {}
        stop = threading.Event()

        def watch() -> None:
            emails = folder / "outbox" / "email"
            while not stop.is_set():
                if emails.is_dir():
                    now = time.monotonic()
                    for name in os.listdir(emails):
                        if name.endswith(".eml") and not name.startswith("."):
                            seen.setdefault(name, now)
                time.sleep(0.01)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        base = f"http://127.0.0.1:{port}"
        sent: dict[int, float] = {}
        try:
            wait_until_up(base, serve)
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as client:
                warm = client.post("/v1/events", json=event("cli-warm-up", count + 1))  # both processes are up
                assert warm.status_code == 200, warm.text
                deadline = time.monotonic() + 180
                while not seen and time.monotonic() < deadline:
                    time.sleep(0.05)
                for member in range(1, count + 1):
                    started = time.monotonic()
                    answer = client.post("/v1/events", json=event(f"cli-{member}", member))
                    assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text
                    sent[member] = started
                    time.sleep(gap)
            deadline = time.monotonic() + 120
            while len(seen) < count + 1 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            sched.send_signal(2)  # Ctrl-C: the scheduler lets a running pass finish
            serve.terminate()
            for proc in (sched, serve):
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
        engine = make_engine(url)
        with Session(engine) as s:
            member_of = {ledger_id: member for ledger_id, member in s.execute(select(Send.id, Send.recipient_id))}
        engine.dispose()
    written = {member_of[int(name[:-4])]: at for name, at in seen.items()}
    delays = sorted(written[m] - sent[m] for m in sent if m in written)
    return _figures("cli", count, delays)


def _figures(layout: str, count: int, delays: list[float]) -> dict[str, Any]:
    return {"layout": layout, "events": count, "delivered": len(delays), "missing": count - len(delays),
            "p50_s": round(statistics.median(delays), 3) if delays else None,
            "p95_s": round(delays[max(0, math.ceil(0.95 * len(delays)) - 1)], 3) if delays else None,
            "max_s": round(delays[-1], 3) if delays else None}


def throughput(total: int, batch: int, clients: int) -> dict[str, Any]:
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from audiences.db import make_engine
    from audiences.models import Event

    members = 1000
    with tempfile.TemporaryDirectory(prefix="loyalflow-bench-events-") as tmp:
        url = prepare(Path(tmp), members)
        proc, base = start_server_process(url)
        try:
            bodies = [[event(f"tp-{i}", i % members + 1) for i in range(start, min(start + batch, total))]
                      for start in range(0, total, batch)]

            def post(body: list[dict[str, Any]]) -> int:
                with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as c:
                    answer = c.post("/v1/events", json=body)
                    assert answer.status_code == 200, answer.text[:300]
                    return int(answer.json()["accepted"])

            started = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                accepted = sum(pool.map(post, bodies))
            elapsed = time.perf_counter() - started
        finally:
            proc.terminate()
            proc.wait(30)
        engine = make_engine(url)
        with Session(engine) as s:
            stored = int(s.scalar(select(func.count()).select_from(Event)) or 0)
        engine.dispose()
    assert accepted == stored == total, (accepted, stored, total)
    return {"events": total, "batch": batch, "clients": clients, "seconds": round(elapsed, 2),
            "events_per_s": round(total / elapsed)}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve_forever(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=60, help="events posted one by one per layout (latency)")
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between two latency events")
    parser.add_argument("--throughput", type=int, default=20_000, help="events posted for the throughput figure")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--layouts", default="cli,one-process,two-processes")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--postgres", action="store_true", help="run on a throwaway PostgreSQL server instead of "
                                                                "SQLite (Debian's postgresql binaries)")
    args = parser.parse_args()
    global POSTGRES
    if args.postgres:
        from tests.support.postgres import start_postgres

        POSTGRES = start_postgres()
        if POSTGRES is None:
            raise SystemExit("PostgreSQL server binaries not found")
        atexit.register(POSTGRES.stop)
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    results: dict[str, Any] = {"latency": [], "throughput": None}
    for layout in [x for x in args.layouts.split(",") if x]:
        figures = latency_cli(args.events, args.gap) if layout == "cli" else latency(layout, args.events, args.gap)
        results["latency"].append(figures)
        print(f"event accepted -> message in the outbox ({layout}, scheduler running): "
              f"p50 {figures['p50_s']} s, p95 {figures['p95_s']} s, max {figures['max_s']} s "
              f"({figures['delivered']}/{figures['events']} delivered)", flush=True)
    if args.throughput:
        tp = throughput(args.throughput, args.batch, args.clients)
        results["throughput"] = tp
        print(f"/v1/events accepted {tp['events_per_s']} events/s ({tp['events']} events in batches of "
              f"{tp['batch']} from {tp['clients']} clients, {tp['seconds']} s)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

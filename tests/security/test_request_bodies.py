"""Request bodies are bounded before any signature check: a per-route size cap (413, read
incrementally so a huge body is never held), and a read timeout for uploads that stall (408)."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from audiences.db import make_engine
from flows import migrate

from channels.settings import ChannelSettings
from channels.unsubscribe import preferences_url, unsubscribe_url
from channels.webhooks.app import create_app
from tests.security.asgi import call
from tests.security.people import BASE, NOW
from tests.security.test_webhook_endpoints import counts
from tests.support.webhook_signing import AUTH_TOKEN, PUBLIC_KEY, sendgrid_headers

ROOT = Path(__file__).resolve().parents[2]

CHUNK = b"x" * 65536
FIFTY_MB_IN_CHUNKS = 50 * 1024 * 1024 // len(CHUNK)


def test_a_streamed_50_mb_body_is_refused_with_413_after_reading_little_of_it(sqlite_engine: Engine, hook_settings: ChannelSettings) -> None:
    app = create_app(sqlite_engine, hook_settings, clock=lambda: NOW)
    signed = sendgrid_headers(b"[]", NOW)  # signature checked only after the body is bounded
    routes = {
        "/webhooks/sendgrid/events": signed,
        "/webhooks/twilio/status": {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": "x"},
        "/webhooks/twilio/inbound": {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": "x"},
        preferences_url(hook_settings, 1).removeprefix(BASE): {"content-type": "application/x-www-form-urlencoded"},
        unsubscribe_url(hook_settings, 1, "email").removeprefix(BASE): {"content-type": "application/x-www-form-urlencoded"},
    }
    for path, headers in routes.items():
        sent = call(app, "POST", path, headers, itertools.repeat(CHUNK, FIFTY_MB_IN_CHUNKS))
        assert sent.status == 413, (path, sent.status, sent.body[:200])
        assert sent.chunks_read * len(CHUNK) <= 16 * 1024 * 1024, (path, sent.chunks_read)  # stopped at its cap
    assert counts(sqlite_engine) == (0, 0, 0)


def test_a_declared_content_length_over_the_cap_is_refused_without_reading(sqlite_engine: Engine, hook_settings: ChannelSettings) -> None:
    app = create_app(sqlite_engine, hook_settings, clock=lambda: NOW)
    headers = sendgrid_headers(b"[]", NOW) | {"content-length": str(50 * 1024 * 1024)}
    sent = call(app, "POST", "/webhooks/sendgrid/events", headers, itertools.repeat(CHUNK, FIFTY_MB_IN_CHUNKS))
    assert sent.status == 413 and sent.chunks_read == 0


def test_an_upload_that_stalls_gets_408_instead_of_holding_the_server(sqlite_engine: Engine, hook_settings: ChannelSettings) -> None:
    settings = hook_settings.model_copy(update={"request_body_timeout_seconds": 0.05})
    app = create_app(sqlite_engine, settings, clock=lambda: NOW)
    for path in ("/webhooks/sendgrid/events", "/webhooks/twilio/inbound", preferences_url(settings, 1).removeprefix(BASE)):
        headers = sendgrid_headers(b"[]", NOW) | {"content-type": "application/x-www-form-urlencoded"}
        sent = call(app, "POST", path, headers, itertools.repeat(b"a=1", 10), stall_after=1)  # then silence forever
        assert sent.status == 408, (path, sent.status)
    assert counts(sqlite_engine) == (0, 0, 0)


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's peak RSS from /proc")
def test_several_50_mb_bodies_at_once_do_not_grow_a_real_server(tmp_path: Path) -> None:
    """`loyalflow serve` under uvicorn, four 50 MB uploads at once: its peak RSS barely moves."""
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    (tmp_path / "serve.db").touch()
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALFLOW_")} | {
        "LOYALFLOW_DATABASE_URL": url, "LOYALFLOW_SENDGRID_WEBHOOK_PUBLIC_KEY": PUBLIC_KEY,
        "LOYALFLOW_TWILIO_AUTH_TOKEN": AUTH_TOKEN, "LOYALFLOW_UNSUBSCRIBE_SECRET": "s",
        "PYTHONPATH": str(ROOT), "PREFECT_HOME": str(tmp_path / ".prefect"),
    }
    server = subprocess.Popen([sys.executable, "-c", "from flows.cli import main; main()", "serve", "--port", str(port)],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # a loaded machine may take long to start Python; never a timing assertion
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "loyalflow serve did not start"
            time.sleep(0.2)
        before = _peak_rss_kib(server.pid)

        def upload(path: str) -> int:
            headers = sendgrid_headers(b"[]", datetime.now(timezone.utc)) | {"content-type": "application/x-www-form-urlencoded"}
            try:
                return httpx.post(f"{base}{path}", content=itertools.repeat(CHUNK, FIFTY_MB_IN_CHUNKS), headers=headers,
                                  timeout=300).status_code
            except httpx.TransportError:  # the server answered 413 and closed while we were still sending
                return 413

        paths = ["/webhooks/sendgrid/events", "/webhooks/sendgrid/events", "/webhooks/twilio/inbound", "/webhooks/twilio/status"]
        with ThreadPoolExecutor(len(paths)) as pool:
            statuses = list(pool.map(upload, paths))
        grown_mib = (_peak_rss_kib(server.pid) - before) / 1024
    finally:
        server.terminate()
        server.wait(timeout=60)
    print(f"server peak RSS growth: {grown_mib:.1f} MiB")  # shown with -s
    assert grown_mib < 40, f"peak RSS grew {grown_mib:.0f} MiB for four 50 MB bodies"
    assert statuses == [413] * len(paths), statuses

"""Benchmark: emails per second through the SendGrid adapter (the official SDK) to a local fake
SendGrid that answers after 20 ms, and how closely the token bucket holds a configured rate;
also the gate's candidates per second (consent, suppression, contact checks, cap, quiet hours).

The fake runs in its own process (as the real provider would be elsewhere) on 127.0.0.1 and
reports what it accepted, so the run also checks that nothing was sent twice.

    python -m tests.bench.bench_channels [--emails 3000] [--concurrency 128] [--rate 250] [--gate 20000]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
from pydantic import SecretStr

from channels.adapters.sendgrid import SendGridAdapter
from channels.ratelimit import TokenBucket
from channels.settings import ChannelSettings
from tests.channels.messages import email


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_fake(latency: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_providers", "sendgrid", "--port", str(port),
         "--latency", str(latency), "--api-key", "SG.bench"],
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"{url}/_stats", timeout=1)
            return proc, url
        except httpx.TransportError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit("fake SendGrid did not start") from None
            time.sleep(0.1)


class RecordingBucket(TokenBucket):
    """The limiter under test, noting the instant each request was let through."""

    def __init__(self, rate: float, capacity: float | None = None) -> None:
        super().__init__(rate, capacity)
        self.granted: list[float] = []
        self._record_lock = threading.Lock()

    def acquire(self, tokens: float = 1.0) -> float:
        waited = super().acquire(tokens)
        with self._record_lock:
            self.granted.append(time.monotonic())
        return waited


def stats(url: str) -> dict[str, float]:
    return httpx.get(f"{url}/_stats", timeout=5).json()


def run(url: str, count: int, concurrency: int, rate: float | None, first_id: int) -> tuple[float, int, list[float]]:
    settings = ChannelSettings(
        sendgrid_api_key=SecretStr("SG.bench"), sendgrid_base_url=url, concurrency=concurrency,
        request_timeout_seconds=10, max_attempts=3,
    )
    bucket = RecordingBucket(rate if rate else 1e9, capacity=1 if rate else None)
    adapter = SendGridAdapter(settings, bucket=bucket)
    messages = [email(first_id + i, to=f"member{first_id + i}@example.com") for i in range(count)]
    start = time.perf_counter()
    results = adapter.send(messages)
    elapsed = time.perf_counter() - start
    accepted = sum(r.status.value == "accepted" for r in results)
    return elapsed, accepted, sorted(bucket.granted)


def bench_gate(count: int) -> None:
    import tempfile
    from datetime import datetime, timezone

    from audiences.db import make_engine, session_scope
    from channels.gate import Candidate, Send, evaluate
    from channels.models import ConsentEvent
    from flows import migrate

    now = datetime(2026, 11, 23, 17, tzinfo=timezone.utc)
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/gate.db")
        migrate.upgrade(engine)
        with session_scope(engine) as session:
            session.add_all(
                ConsentEvent(recipient_kind="member", recipient_id=i, channel="email" if i % 3 else "sms",
                             purpose="marketing", action="opt_in", source="bench", occurred_at=now)
                for i in range(0, count, 2)
            )
        candidates = [
            Candidate("member", i, "email" if i % 3 else "sms", "marketing",
                      f"member{i}@example.com" if i % 3 else f"+1201555{i % 10000:04d}", "America/New_York", "US",
                      0, i % 4)
            for i in range(count)
        ]
        with session_scope(engine) as session:
            start = time.perf_counter()
            verdicts = evaluate(session, now, candidates, ChannelSettings())
            elapsed = time.perf_counter() - start
        engine.dispose()
    sends = sum(isinstance(v, Send) for v in verdicts)
    print(f"gate: {count:,} candidates in {elapsed:.2f} s = {count / elapsed:,.0f} candidates/s "
          f"({sends:,} send, {count - sends:,} skipped or deferred; SQLite, first sight of every address)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--rate", type=float, default=250.0, help="configured rate for the limiter check")
    parser.add_argument("--rate-emails", type=int, default=1000)
    parser.add_argument("--gate", type=int, default=20000, help="candidates for the gate figure (0: skip)")
    args = parser.parse_args()
    if args.gate:
        bench_gate(args.gate)

    proc, url = start_fake(args.latency)
    try:
        run(url, 200, args.concurrency, None, first_id=10_000_000)  # warm-up: imports, connections
        before = stats(url)
        elapsed, accepted, _ = run(url, args.emails, args.concurrency, None, first_id=0)
        after = stats(url)
        throughput = accepted / elapsed
        print(f"throughput: {accepted} emails in {elapsed:.2f} s = {throughput:,.0f} emails/s "
              f"(fake SendGrid answering after {args.latency * 1000:.0f} ms, concurrency {args.concurrency})")
        print(f"  fake accepted {after['accepted'] - before['accepted']:.0f}, duplicates {after['duplicates']:.0f}; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

        before = stats(url)
        elapsed, accepted, granted = run(url, args.rate_emails, args.concurrency, args.rate, first_id=1_000_000)
        after = stats(url)
        # the limiter's rate: requests let through over the span between the first and the last
        limiter_rate = (len(granted) - 1) / (granted[-1] - granted[0])
        error = (limiter_rate - args.rate) / args.rate * 100
        verdict = "within 5%" if abs(error) <= 5 else "OUTSIDE 5%"
        # and as the provider saw it (its clock, after network and its own 20 ms)
        span = after["last"] - max(before["last"] or 0.0, after["first"] or 0.0)
        server_rate = (args.rate_emails - 1) / span if span > 0 else float("nan")
        print(f"rate limit: configured {args.rate:.0f}/s, limiter let through {limiter_rate:.1f}/s "
              f"({error:+.2f}%, {verdict}); provider saw {server_rate:.1f}/s; {accepted} accepted in {elapsed:.2f} s; "
              f"duplicates {after['duplicates']:.0f}")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()

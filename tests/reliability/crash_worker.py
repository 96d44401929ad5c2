"""The child process of the SIGKILL crash test: one run of the welcome journey at `--now`,
sending email through the real SendGrid adapter to a fake SendGrid on 127.0.0.1.

Run: python -m tests.reliability.crash_worker --db sqlite:///x.db --now 2026-11-23T15:00:00+00:00 \
        --sendgrid http://127.0.0.1:PORT --ready PATH [--chunk 100] [--timeout 2.0] [--concurrency 8]
It writes `--ready` once everything is loaded, so the parent kills it while it works, not while
it imports. Exit 0: nothing was due any more.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.orm import sessionmaker

from audiences.db import make_engine
from channels.adapters.breaker import CircuitBreaker
from channels.adapters.sendgrid import SendGridAdapter
from channels.ratelimit import TokenBucket
from channels.settings import ChannelSettings
from journeys.engine import tick
from journeys.registry import get_journey
from journeys.services import default_services

API_KEY = "SG.reliability"


def sendgrid_settings(base_url: str, **overrides: object) -> ChannelSettings:
    """Provider settings pointed at a local fake: short timeouts and backoff, as CI needs."""
    values: dict[str, object] = {
        "delivery_mode": "providers", "sendgrid_api_key": SecretStr(API_KEY), "sendgrid_base_url": base_url,
        "unsubscribe_secret": SecretStr("reliability-unsubscribe-secret"), "request_timeout_seconds": 2.0,
        "max_attempts": 3, "backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05, "concurrency": 8,
    }
    values.update(overrides)
    return ChannelSettings(_env_file=None, **values)  # type: ignore[arg-type]


def sendgrid_adapter(settings: ChannelSettings) -> SendGridAdapter:
    # a private, generous bucket: the shared one is per process and rate-limits the test itself;
    # a short cool-down, so a run that trips the circuit waits seconds, not minutes
    return SendGridAdapter(settings, bucket=TokenBucket(100_000.0, 1_000.0), breaker=CircuitBreaker(cooldown=1.0))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--now", required=True)
    parser.add_argument("--sendgrid", required=True)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    engine = make_engine(args.db)
    settings = sendgrid_settings(args.sendgrid, request_timeout_seconds=args.timeout, concurrency=args.concurrency)
    services = default_services(adapters={"email": sendgrid_adapter(settings)})
    journey = get_journey("welcome")
    Path(args.ready).write_text("ready", encoding="utf-8")
    tick(sessionmaker(engine, expire_on_commit=False), journey, datetime.fromisoformat(args.now), services,
         chunk_size=args.chunk)


if __name__ == "__main__":
    main()

"""Fake SendGrid and Twilio for the pipeline benchmark, in a process of their own on 127.0.0.1.

The test fakes keep every request (bodies included) for assertions; at a million messages that
is gigabytes, so these count instead: accepted per provider and duplicates by ledger id.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.bench.lean_fake import (
    SENDGRID_KEY,
    TWILIO_SID,
    TWILIO_TOKEN,
    provider_environment,
)
from tests.support.fake_providers import FakeSendGrid, FakeTwilio


class _Counting:
    """Replaces the fakes' request log with counters."""

    def _init_counts(self) -> None:
        self.count_received = 0
        self.count_accepted = 0
        self.seen: set[int] = set()
        self.duplicates = 0
        self.app.router.routes.append(Route("/_count", self._count, methods=["GET"]))  # type: ignore[attr-defined]
        self.app.router.routes.append(Route("/_reset", self._reset, methods=["POST"]))  # type: ignore[attr-defined]

    def record(self, path: str, headers: dict[str, str], body: Any, status: int) -> None:
        self.count_received += 1
        if 200 <= status < 300:
            self.count_accepted += 1
            ledger = self._ledger_id(body)
            if ledger is not None:
                if ledger in self.seen:
                    self.duplicates += 1
                self.seen.add(ledger)

    def _ledger_id(self, body: Any) -> int | None:  # pragma: no cover - overridden
        return None

    async def _reset(self, request: Request) -> Response:
        self.count_received = self.count_accepted = self.duplicates = 0
        self.seen.clear()
        return JSONResponse({})

    async def _count(self, request: Request) -> Response:
        return JSONResponse({"received": self.count_received, "accepted": self.count_accepted,
                             "duplicates": self.duplicates})


class CountingSendGrid(_Counting, FakeSendGrid):
    def __init__(self, latency: float) -> None:
        FakeSendGrid.__init__(self, api_key=SENDGRID_KEY, latency=latency)
        self._init_counts()

    def _ledger_id(self, body: Any) -> int | None:
        try:
            return int(body["custom_args"]["ledger_id"])
        except (KeyError, TypeError, ValueError):
            return None


class CountingTwilio(_Counting, FakeTwilio):
    def __init__(self, latency: float) -> None:
        FakeTwilio.__init__(self, account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN, latency=latency)
        self._init_counts()

    def _ledger_id(self, body: Any) -> int | None:
        try:
            return int(parse_qs(urlparse(str(body["StatusCallback"])).query)["ledger_id"][0])
        except (KeyError, TypeError, ValueError, IndexError):
            return None


def _serve(latency: float) -> None:
    sendgrid, twilio = CountingSendGrid(latency).start(), CountingTwilio(latency).start()
    print(sendgrid.port, twilio.port, flush=True)
    sys.stdin.read()  # until the parent closes our stdin (or exits)


class Fakes:
    """Start both fakes in a child process; `counts()` asks them what they accepted."""

    def __init__(self, latency: float = 0.02) -> None:
        self.latency = latency
        self.process: subprocess.Popen[str] | None = None
        self.sendgrid_url = self.twilio_url = ""

    def __enter__(self) -> Fakes:
        self.process = subprocess.Popen([sys.executable, "-m", "tests.bench.pipeline_fakes", str(self.latency)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        sendgrid, twilio = (int(p) for p in self.process.stdout.readline().split())
        self.sendgrid_url, self.twilio_url = f"http://127.0.0.1:{sendgrid}", f"http://127.0.0.1:{twilio}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)

    def reset(self) -> None:
        """Forget what was seen (a comparison run sends the same ledger ids from a copy of the data)."""
        httpx.post(f"{self.sendgrid_url}/_reset", timeout=10)
        httpx.post(f"{self.twilio_url}/_reset", timeout=10)

    def counts(self) -> dict[str, dict[str, int]]:
        return {"sendgrid": httpx.get(f"{self.sendgrid_url}/_count", timeout=10).json(),
                "twilio": httpx.get(f"{self.twilio_url}/_count", timeout=10).json()}

    def environment(self, concurrency: int) -> dict[str, str]:
        """LOYALFLOW_ settings that point the real adapters at the fakes (rates high: the fakes do not throttle)."""
        return provider_environment(self.sendgrid_url, self.twilio_url, concurrency)


if __name__ == "__main__":
    _serve(float(sys.argv[1]) if len(sys.argv) > 1 else 0.02)

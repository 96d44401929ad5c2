"""A lean fake SendGrid + Twilio for benchmarks: framework-free asyncio HTTP/1.1 on 127.0.0.1.

The Starlette fakes in tests/support/fake_providers spend 0.4-0.9 ms of CPU per request, which on a
2-core machine takes CPU away from what is being measured. This one speaks just enough of SendGrid
Mail Send (POST /v3/mail/send -> 202 + X-Message-Id) and Twilio Messages (POST
/2010-04-01/Accounts/{sid}/Messages.json -> 201 JSON with sid/status) for the official SDKs and for
loyalflow's adapters, answers after a fixed delay, counts accepted messages per provider and
duplicates by ledger id (SendGrid `custom_args.ledger_id`, Twilio `StatusCallback ...?ledger_id=N`,
as tests/bench/pipeline_fakes.py does), and reports its own CPU time per request.

    python -m tests.bench.lean_fake [latency_seconds]     # prints the port, serves until stdin closes

Control: GET /_count (counts and CPU since the last reset), POST /_reset.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any

SENDGRID_KEY = "SG.bench"
TWILIO_SID = "AC" + "b" * 32
TWILIO_TOKEN = "bench-token"


def provider_environment(sendgrid_url: str, twilio_url: str, concurrency: int) -> dict[str, str]:
    """LOYALFLOW_ settings pointing the real SendGrid/Twilio adapters at benchmark fakes (rates high:
    the fakes do not throttle); shared by the lean fake and the framework fakes (pipeline_fakes.py)."""
    return {
        "LOYALFLOW_DELIVERY_MODE": "providers",
        "LOYALFLOW_SENDGRID_API_KEY": SENDGRID_KEY,
        "LOYALFLOW_SENDGRID_BASE_URL": sendgrid_url,
        "LOYALFLOW_TWILIO_ACCOUNT_SID": TWILIO_SID,
        "LOYALFLOW_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "LOYALFLOW_TWILIO_BASE_URL": twilio_url,
        "LOYALFLOW_SMS_FROM": "+12015550100",
        "LOYALFLOW_UNSUBSCRIBE_SECRET": "bench-secret-" + "x" * 32,
        "LOYALFLOW_CONCURRENCY": str(concurrency),
        "LOYALFLOW_EMAIL_RATE_PER_SECOND": "1000000",
        "LOYALFLOW_SMS_RATE_PER_SECOND": "1000000",
        "LOYALFLOW_REQUEST_TIMEOUT_SECONDS": "30",
    }

_SENDGRID_LEDGER = re.compile(rb'"ledger_id"\s*:\s*"?(\d+)')
_TWILIO_LEDGER = re.compile(rb"ledger_id(?:%3D|=)(\d+)")
_TWILIO_PATH = re.compile(rb"^/2010-04-01/Accounts/([^/]+)/Messages\.json$")
_FORM_FIELD = re.compile(rb"(?:^|&)(To|From|Body|MessagingServiceSid)=([^&]*)")
_SENDGRID_AUTH = b"bearer " + SENDGRID_KEY.encode().lower()
_TWILIO_AUTH = b"basic " + base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).lower()


class Counter:
    """Accepted messages per provider, duplicates by ledger id, and this process's CPU since reset."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.accepted = {"sendgrid": 0, "twilio": 0}
        self.rejected = 0
        self.duplicates = {"sendgrid": 0, "twilio": 0}
        self.seen: dict[str, set[int]] = {"sendgrid": set(), "twilio": set()}
        self.without_ledger = 0
        self.cpu_start = time.process_time()

    def accept(self, provider: str, ledger: int | None) -> None:
        self.accepted[provider] += 1
        if ledger is None:
            self.without_ledger += 1
            return
        seen = self.seen[provider]
        if ledger in seen:
            self.duplicates[provider] += 1
        seen.add(ledger)

    def report(self) -> dict[str, Any]:
        cpu = time.process_time() - self.cpu_start
        return {
            "sendgrid": {"accepted": self.accepted["sendgrid"], "duplicates": self.duplicates["sendgrid"]},
            "twilio": {"accepted": self.accepted["twilio"], "duplicates": self.duplicates["twilio"]},
            "requests": self.requests, "rejected": self.rejected, "without_ledger_id": self.without_ledger,
            "cpu_s": round(cpu, 4),
            "cpu_us_per_request": round(cpu / self.requests * 1e6, 1) if self.requests else 0.0,
        }


class LeanFake:
    """One asyncio server answering both providers (and the control routes)."""

    def __init__(self, latency: float = 0.02) -> None:
        self.latency = latency
        self.counter = Counter()
        self._ids = itertools.count(1)

    async def serve(self, port: int = 0) -> asyncio.base_events.Server:
        return await asyncio.start_server(self._connection, "127.0.0.1", port, backlog=1024)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                method, path, _ = lines[0].split(b" ", 2)
                headers: dict[bytes, bytes] = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(b":")
                        headers[name.strip().lower()] = value.strip()
                if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                    body = await _read_chunked(reader)
                else:
                    body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
                status, extra, payload = await self._answer(method, path, headers, body)
                close = headers.get(b"connection", b"").lower() == b"close"
                writer.write(_response(status, extra, payload, close))
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _answer(self, method: bytes, path: bytes, headers: dict[bytes, bytes],
                      body: bytes) -> tuple[int, dict[str, str], bytes]:
        path = path.split(b"?", 1)[0]
        if method == b"POST" and path == b"/v3/mail/send":
            return await self._sendgrid(headers, body)
        twilio = _TWILIO_PATH.match(path)
        if method == b"POST" and twilio is not None:
            return await self._twilio(twilio.group(1), headers, body)
        if path == b"/_count":
            return 200, {"Content-Type": "application/json"}, json.dumps(self.counter.report()).encode()
        if method == b"POST" and path == b"/_reset":
            self.counter.reset()
            return 200, {"Content-Type": "application/json"}, b"{}"
        return 404, {"Content-Type": "application/json"}, b'{"errors":[{"message":"not found"}]}'

    async def _sendgrid(self, headers: dict[bytes, bytes], body: bytes) -> tuple[int, dict[str, str], bytes]:
        self.counter.requests += 1
        if headers.get(b"authorization", b"").lower() != _SENDGRID_AUTH:
            self.counter.rejected += 1
            return 401, {"Content-Type": "application/json"}, b'{"errors":[{"message":"unauthorized"}]}'
        if b'"personalizations"' not in body or b'"from"' not in body:
            self.counter.rejected += 1
            return 400, {"Content-Type": "application/json"}, b'{"errors":[{"message":"bad request"}]}'
        found = _SENDGRID_LEDGER.search(body)
        await asyncio.sleep(self.latency)
        self.counter.accept("sendgrid", int(found.group(1)) if found else None)
        return 202, {"X-Message-Id": f"lean{next(self._ids)}"}, b""

    async def _twilio(self, sid: bytes, headers: dict[bytes, bytes], body: bytes) -> tuple[int, dict[str, str], bytes]:
        self.counter.requests += 1
        if sid.decode() != TWILIO_SID or headers.get(b"authorization", b"").lower() != _TWILIO_AUTH:
            self.counter.rejected += 1
            return 401, {"Content-Type": "application/json"}, b'{"code":20003,"message":"Authenticate","status":401}'
        fields = {m.group(1): m.group(2) for m in _FORM_FIELD.finditer(body)}
        if not fields.get(b"To") or not fields.get(b"Body") or not (fields.get(b"From")
                                                                   or fields.get(b"MessagingServiceSid")):
            self.counter.rejected += 1
            return 400, {"Content-Type": "application/json"}, b'{"code":21604,"message":"To, From and Body are required","status":400}'
        found = _TWILIO_LEDGER.search(body)
        await asyncio.sleep(self.latency)
        self.counter.accept("twilio", int(found.group(1)) if found else None)
        message_sid = f"SM{next(self._ids):032x}"
        resource = {"sid": message_sid, "account_sid": TWILIO_SID, "status": "queued", "api_version": "2010-04-01",
                    "num_segments": "1", "direction": "outbound-api", "error_code": None, "error_message": None,
                    "uri": f"/2010-04-01/Accounts/{TWILIO_SID}/Messages/{message_sid}.json"}
        return 201, {"Content-Type": "application/json"}, json.dumps(resource).encode()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


_REASONS = {200: "OK", 201: "Created", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}


def _response(status: int, headers: dict[str, str], body: bytes, close: bool) -> bytes:
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    if close:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _serve(latency: float) -> None:
    async def main() -> None:
        server = await LeanFake(latency).serve()
        print(server.sockets[0].getsockname()[1], flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin (or exits)
        os._exit(0)  # kept-alive client connections need no goodbye

    asyncio.run(main())


class LeanFakes:
    """The lean fake in a child process of its own (its CPU is not ours); `counts()` asks it."""

    def __init__(self, latency: float = 0.02) -> None:
        self.latency = latency
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self._lock = threading.Lock()

    def __enter__(self) -> LeanFakes:
        self.process = subprocess.Popen([sys.executable, "-m", "tests.bench.lean_fake", str(self.latency)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.process.stdout.readline())}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                self.process.wait(10)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/_reset", data=b"", method="POST"), timeout=30).read()

    def counts(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_count", timeout=30) as answer:
            return json.loads(answer.read())

    def environment(self, concurrency: int) -> dict[str, str]:
        """LOYALFLOW_ settings pointing the real adapters here (rates high: the fake does not throttle)."""
        return provider_environment(self.url, self.url, concurrency)


if __name__ == "__main__":
    _serve(float(sys.argv[1]) if len(sys.argv) > 1 else 0.02)

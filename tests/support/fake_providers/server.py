"""A fake provider's plumbing: an ASGI app served by uvicorn on 127.0.0.1 in a background thread,
with latency, scripted faults and a record of every request it received.

Faults are consumed in order by the next requests (`script(...)`), or tied to a recipient
(`per_recipient[...]`) so one address always fails the same way, as real providers do.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn


@dataclass(frozen=True)
class Fault:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering (a value above the client's timeout is a timeout)."""


SLOW = 0
"""A Fault with this status handles the request normally (accepting it at once when it is valid)
and only answers after `delay`: the provider took the message, the client stopped waiting."""


def slow_answer(delay: float) -> Fault:
    return Fault(SLOW, delay=delay)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    status: int
    at: float
    accepted: bool
    """True when the fake accepted the message (2xx): what "sent" means for nothing-sent-twice."""


class FakeProvider:
    """Base of the fakes: subclasses build `self.app` (an ASGI app) and use `next_fault`/`record`."""

    app: Any

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.faults: deque[Fault] = deque()
        self.per_recipient: dict[str, Fault] = {}
        self.received: list[Received] = []
        self.accepted_count = 0
        """How many requests it accepted so far (cheap to poll, unlike `accepted`)."""
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def reset(self) -> None:
        """Forget faults and records between tests that share one running fake."""
        with self._lock:
            self.faults.clear()
            self.per_recipient.clear()
            self.received.clear()
            self.accepted_count = 0

    # --- fault injection and record ---
    def script(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def next_fault(self, recipient: str | None = None) -> Fault | None:
        with self._lock:
            if recipient is not None and recipient in self.per_recipient:
                return self.per_recipient[recipient]
            return self.faults.popleft() if self.faults else None

    def record(self, path: str, headers: dict[str, str], body: Any, status: int) -> None:
        with self._lock:
            self.received.append(Received(path, headers, body, status, time.monotonic(), 200 <= status < 300))
            self.accepted_count += 200 <= status < 300

    @property
    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.accepted]

    async def pause(self, fault: Fault | None) -> None:
        delay = self.latency + (fault.delay if fault else 0.0)
        if delay:
            await asyncio.sleep(delay)

    # --- serving ---
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeProvider:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(1024)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="error", access_log=False, lifespan="off", backlog=1024, timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{type(self).__name__} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

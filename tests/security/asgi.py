"""Calling an ASGI app directly, to control exactly how (and whether) a request body arrives."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sent:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks_read: int = 0


def call(app: Any, method: str, path: str, headers: dict[str, str], chunks: Iterator[bytes] | None = None,
         *, stall_after: int | None = None) -> Sent:
    """Send `chunks` as the body one receive() at a time; after `stall_after` chunks the client goes
    silent (a slow upload that never finishes). Returns what the app answered and how much it read."""
    sent = Sent()
    body = iter(chunks or ())

    async def receive() -> dict[str, Any]:
        if stall_after is not None and sent.chunks_read >= stall_after:
            await asyncio.Event().wait()  # never set: the client sends nothing more
        chunk = next(body, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        sent.chunks_read += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent.status = message["status"]
            sent.headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            sent.body += message.get("body", b"")

    path_only, _, query = path.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "https",
        "path": path_only, "raw_path": path_only.encode(), "query_string": query.encode(), "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000), "server": ("loyalflow.test", 443), "state": {},
    }

    async def run() -> None:
        try:  # a safety net only: a server that waits forever fails the test instead of hanging it
            await asyncio.wait_for(app(scope, receive, send), timeout=120)
        except TimeoutError:
            sent.status = sent.status or -1

    asyncio.run(run())
    return sent

"""`POST /v1/events`: member events from the loyalty systems, one or a batch per request.

    curl -H "Authorization: Bearer $LOYALFLOW_EVENTS_API_KEY" -H "Content-Type: application/json" \
         -d '{"type": "purchase", "member_id": 42, "occurred_at": "2026-11-23T10:00:00Z",
              "idempotency_key": "pos-7781-0042", "properties": {"amount": 54.9}}' \
         http://127.0.0.1:8000/v1/events

The body is one event, a JSON array of events, or {"events": [...]}. The answer lists what became
of each (accepted / duplicate / error with its field and why): 200 when none is in error, 207 when
some are (the others are kept). Refused before anything is read or stored: no key configured (503),
a missing or wrong key (401), a body over the limit (413), more events than a batch may hold (413).
Logs carry counts only, never a member id or a property.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from audiences.db import session_scope
from audiences.events import ingest, notify_stored

log = logging.getLogger("loyalflow.events")

API_KEY_ENV = "LOYALFLOW_EVENTS_API_KEY"
MAX_BODY_BYTES = 1_048_576
MAX_BATCH = 1_000

def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _authorised(request: Request, key: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), key.encode())


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None once it is over `limit` (read incrementally: a large body is never held)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _events_of(decoded: Any) -> list[Any] | str:
    if isinstance(decoded, list):
        return decoded
    if isinstance(decoded, dict) and set(decoded) == {"events"}:
        return decoded["events"] if isinstance(decoded["events"], list) else "`events` must be a JSON array"
    if isinstance(decoded, dict):
        return [decoded]
    return "expected an event object, an array of events, or {\"events\": [...]}"


def event_routes(engine: Engine, *, clock: Callable[[], datetime] | None = None,
                 max_body: int = MAX_BODY_BYTES, max_batch: int = MAX_BATCH) -> list[Route]:
    """The routes to mount in `loyalflow serve`'s app. The key is read from the environment now."""
    key = os.environ.get(API_KEY_ENV) or None
    now_of = clock or (lambda: datetime.now(timezone.utc))

    async def post_events(request: Request) -> Response:
        if key is None:
            return _problem(503, f"event ingestion is off: set {API_KEY_ENV} on the server to enable it")
        if not _authorised(request, key):
            log.warning("refused events request: missing or wrong API key")
            return JSONResponse({"error": "missing or wrong API key (Authorization: Bearer <key>)"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        body = await _read_limited(request, max_body)
        if body is None:
            return _problem(413, f"request body is larger than {max_body} bytes; send smaller batches")
        try:
            decoded = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _problem(400, "body is not valid JSON")
        events = _events_of(decoded)
        if isinstance(events, str):
            return _problem(400, events)
        if not events:
            return _problem(400, "no events in the request")
        if len(events) > max_batch:
            return _problem(413, f"{len(events)} events in one request; at most {max_batch} per batch")
        now = now_of()

        def apply() -> list[dict[str, Any]]:
            with session_scope(engine) as session:
                return [r.as_dict() for r in ingest(session, events, now, "api")]

        results = await run_in_threadpool(apply)
        counts = {s: sum(1 for r in results if r["status"] == s) for s in ("accepted", "duplicate", "error")}
        log.info("events: %d accepted, %d duplicate, %d rejected", counts["accepted"], counts["duplicate"],
                 counts["error"])
        if counts["accepted"]:
            notify_stored()
        return JSONResponse({**counts, "results": results}, status_code=207 if counts["error"] else 200)

    return [Route("/v1/events", post_events, methods=["POST"])]

"""Request bodies read with a size cap and a deadline, before any signature is checked.

Starlette's `request.body()` and `request.form()` hold whatever a client sends; a few 50 MB posts
at once would grow the server by hundreds of megabytes, and a client that sends one byte a minute
would hold a worker forever. Here the declared Content-Length is checked first, then the stream is
read chunk by chunk and abandoned the moment it passes the route's cap (413) or the deadline (408).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import anyio
from starlette.exceptions import HTTPException
from starlette.requests import Request

KIB = 1024
SENDGRID_EVENTS_LIMIT = 4 * KIB * KIB
"""SendGrid posts batches of up to a few thousand events; 4 MiB leaves room for custom args."""
TWILIO_LIMIT = 64 * KIB
"""A Twilio callback is a form of a few dozen short fields (an SMS body is at most 1,600 characters)."""
PAGE_FORM_LIMIT = 8 * KIB
"""The member pages' forms: three checkboxes and a token."""


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The whole body, or HTTPException 413 (over `limit` bytes) / 408 (not all there by `timeout` s)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body over {limit} bytes")
    parts: list[bytes] = []
    size = 0
    with anyio.move_on_after(timeout) as scope:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, f"request body over {limit} bytes")
            parts.append(chunk)
    if scope.cancelled_caught:
        raise HTTPException(408, "request body not received in time")
    return b"".join(parts)


async def read_form(request: Request, limit: int, timeout: float) -> dict[str, str]:
    """A urlencoded form (what Twilio and our pages post), bounded like `read_body`; the last value
    of a repeated field wins, as in Twilio's signature scheme each field appears once."""
    raw = await read_body(request, limit, timeout)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(400, "form is not UTF-8") from None
    return dict(parse_qsl(text, keep_blank_values=True))

"""What an endpoint reads from `request.app.state` (set by `create_app`), and how it refuses."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import NoReturn

from starlette.exceptions import HTTPException
from starlette.requests import Request

from channels.settings import ChannelSettings

log = logging.getLogger("loyalflow.webhooks")


def refuse(route: str, why: str, status_code: int = 403) -> NoReturn:
    log.warning("refused %s request: %s", route, why)
    raise HTTPException(status_code, "forbidden" if status_code == 403 else why)


def settings_of(request: Request) -> ChannelSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def now_of(request: Request) -> datetime:
    return request.app.state.clock()  # type: ignore[no-any-return]


def retention_of(request: Request) -> timedelta:
    return timedelta(days=settings_of(request).webhook_receipt_retention_days)


def timeout_of(request: Request) -> float:
    return settings_of(request).request_body_timeout_seconds

"""Which Prefect API a command talks to, and one-line errors when it is missing or does not answer.

`deploy` and `serve-flows` need a real server: without `PREFECT_API_URL` Prefect would quietly start a
temporary one, register the deployments there and throw them away when the command exits.
"""

from __future__ import annotations

import os

from audiences.errors import LoyalflowError

START_SERVER = "start one with `prefect server start`, then `export PREFECT_API_URL=http://127.0.0.1:4200/api`"


class PrefectServerMissing(LoyalflowError):
    """No Prefect server is configured, or the configured one does not answer."""


class PrefectStartFailed(LoyalflowError):
    """Prefect's temporary local API did not start in time."""


def api_url() -> str | None:
    """PREFECT_API_URL from the environment or the active Prefect profile, or None."""
    from prefect.settings import get_current_settings

    url = os.environ.get("PREFECT_API_URL") or get_current_settings().api.url
    return str(url).rstrip("/") if url else None


def require_server(command: str) -> str:
    """The API URL of a Prefect server that answers its health check; otherwise one clear error."""
    url = api_url()
    if not url:
        raise PrefectServerMissing(f"`loyalflow {command}` needs a Prefect server and PREFECT_API_URL is not set: "
                                   f"{START_SERVER}")
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        problem = client.api_healthcheck()
    if problem is not None:
        raise PrefectServerMissing(f"no Prefect server answers at PREFECT_API_URL={url} "
                                   f"({type(problem).__name__}): {START_SERVER}")
    return url


def ui_url(flow_run_id: object) -> str | None:
    """Where a person sees a flow run, when a server is set (the UI is served next to the API)."""
    from prefect.settings import get_current_settings

    url = api_url()
    if not url:
        return None
    ui = get_current_settings().ui_url or (url[:-4] if url.endswith("/api") else url)
    return f"{str(ui).rstrip('/')}/runs/flow-run/{flow_run_id}"


def is_ephemeral_timeout(exc: BaseException) -> bool:
    return "attempting to connect to ephemeral Prefect API" in str(exc)


def ephemeral_timeout_error() -> PrefectStartFailed:
    seconds = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "the default")
    return PrefectStartFailed(
        f"Prefect's local API did not start within {seconds} s (a busy machine?): retry with a longer "
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or " + START_SERVER)

"""`loyalflow serve`: the ASGI app providers and members talk to.

Routes:
- POST /webhooks/sendgrid/events   SendGrid signed Event Webhook
- POST /webhooks/twilio/status     Twilio status callbacks (X-Twilio-Signature)
- POST /webhooks/twilio/inbound    Twilio inbound SMS: STOP/START/HELP keywords
- GET|POST /unsubscribe/{id}/{token}   page, and RFC 8058 one-click POST (HEAD shows, never acts)
- GET|POST /preferences/{id}/{token}   marketing preferences per channel
- GET /survey/{token}[/{score}], POST (comment), GET /read/{token}   signed survey and bulletin-read links
- GET /healthz

Every refused request (bad or missing signature, old timestamp, replay, bad token, a form from
another site) gets 403 and changes nothing; each accepted one is applied in one transaction
together with its receipt (see receipts.py), which is how replays are recognised. Bodies are read
with a cap and a deadline before any signature is checked (bodies.py). No trailing-slash
redirects: Starlette would build their Location from the Host header. Logs carry no addresses.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from channels.settings import ChannelSettings
from channels.webhooks import endpoints, page_endpoints
from channels.webhooks.events_api import event_routes
from channels.webhooks.sendgrid_events import SendGridVerifier
from channels.webhooks.survey_endpoints import survey_routes


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def help_text(settings: ChannelSettings) -> str:
    """The SMS HELP answer: the program's name and where to get help."""
    support = settings.support_email or settings.email_from
    return f"{settings.program_name}: reply STOP to unsubscribe, START to resubscribe. Support: {support}"


def create_app(engine: Engine, settings: ChannelSettings, *, clock: Callable[[], datetime] = utc_now) -> Starlette:
    sendgrid_key = settings.sendgrid_webhook_public_key
    twilio_token = settings.twilio_auth_token
    app = Starlette(
        routes=[
            Route("/webhooks/sendgrid/events", endpoints.sendgrid_events, methods=["POST"]),
            Route("/webhooks/twilio/status", endpoints.twilio_status, methods=["POST"]),
            Route("/webhooks/twilio/inbound", endpoints.twilio_inbound, methods=["POST"]),
            Route("/unsubscribe/{recipient_id}/{token}", page_endpoints.unsubscribe, methods=["GET", "POST"]),
            Route("/preferences/{recipient_id}/{token}", page_endpoints.preferences, methods=["GET", "POST"]),
            Route("/healthz", endpoints.healthz, methods=["GET"]),
            *event_routes(engine, clock=clock),  # POST /v1/events: member events (channels/webhooks/events_api.py)
            *survey_routes(),  # GET /survey/..., /read/...: signed survey and bulletin-read links (survey_endpoints.py)
        ],
        exception_handlers={HTTPException: page_endpoints.refused_page},
    )
    app.router.redirect_slashes = False
    app.state.engine = engine
    app.state.settings = settings
    app.state.clock = clock
    app.state.sendgrid = SendGridVerifier(sendgrid_key.get_secret_value()) if sendgrid_key else None
    app.state.twilio = RequestValidator(twilio_token.get_secret_value()) if twilio_token else None
    app.state.help_text = help_text(settings)
    return app

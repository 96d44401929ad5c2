"""`loyalflow serve` (provider webhooks, unsubscribe and preference pages) and `loyalflow consent`."""

from __future__ import annotations

import typer

from audiences.db import make_engine, session_scope
from channels.consent import import_consent_csv
from channels.settings import ChannelSettings, channel_settings
from flows.cli.app import console, err_console
from flows.migrate import require_current

consent_app = typer.Typer(help="Consent records: import them, from a CSV file.", no_args_is_help=True)


MISSING_SECRET_WARNINGS = (
    ("unsubscribe_secret", "LOYALFLOW_UNSUBSCRIBE_SECRET",
     "unsubscribe and preference links cannot work (members get 503); set it to the secret the sends used"),
    ("sendgrid_webhook_public_key", "LOYALFLOW_SENDGRID_WEBHOOK_PUBLIC_KEY",
     "SendGrid events (bounces, complaints, unsubscribes) are refused with 403"),
    ("twilio_auth_token", "LOYALFLOW_TWILIO_AUTH_TOKEN",
     "Twilio status callbacks and inbound STOP/START/HELP are refused with 403"),
)


def missing_secret_warnings(settings: ChannelSettings) -> list[str]:
    """One line per secret `serve` needs and does not have: without them it runs, but fails its callers."""
    return [f"warning: {env} is not set: {consequence}"
            for name, env, consequence in MISSING_SECRET_WARNINGS if getattr(settings, name) in (None, "")]


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
) -> None:
    """Serve the SendGrid and Twilio webhooks, the unsubscribe endpoint and preference pages."""
    import uvicorn

    from channels.webhooks.app import create_app

    settings = channel_settings()
    engine = require_current(make_engine())
    app = create_app(engine, settings)
    for line in missing_secret_warnings(settings):
        err_console.print(line, highlight=False, markup=False, soft_wrap=True)
    console.print(f"loyalflow serving webhooks on http://{host}:{port} (public URL {settings.public_base_url})")
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)  # access logs would hold tokens


@consent_app.command("import")
def import_(path: str = typer.Argument(..., help="CSV with recipient_id, channel, purpose, action, occurred_at "
                                                "[, recipient_kind, source, evidence].")) -> None:
    """Append consent events from a CSV; good rows are kept, bad rows are listed by line."""
    with session_scope(require_current(make_engine())) as session:
        report = import_consent_csv(session, path)
    for error in report.errors:
        console.print(f"{report.path}:{error.line}: {error.message}", highlight=False, markup=False, soft_wrap=True)
    console.print(report.summary(), highlight=False, soft_wrap=True)
    if report.errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(consent_app, name="consent")

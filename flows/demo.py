"""`loyalflow demo`: the whole product on one machine, from nothing, in about a minute.

It builds a folder with a SQLite database of synthetic members, the consent they gave at signup,
then replays the last N days through the real Prefect flow (a task per simulated day), every
message going to the outbox, and ends with the HTML report. Besides the journeys (win-back runs an
A/B test, tier-up asks for an NPS score, staff get their store's own bulletin) a newsletter broadcast
goes out on the seventh day; NPS answers and bulletin reads are simulated after the replay, so the
report's A/B, NPS and read-rate tables have figures.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, literal, select
from sqlalchemy.orm import Session

from audiences.db import make_engine
from audiences.demo import generate
from audiences.errors import LoyalflowError
from audiences.models import Member
from channels.models import ConsentEvent
from flows import migrate, runtime
from flows.report import build_report
from flows.report_html import render_html
from journeys.surveys import demo_feedback

MARKER = ".loyalflow-demo"
# share of members who opted in at signup, per channel (marketing); transactional needs no opt-in
OPT_IN_PERCENT = {"email": 72, "sms": 41, "push": 58}


class DemoFolderInUse(LoyalflowError):
    """The demo folder exists and was not made by the demo: it is left untouched."""


@dataclass
class DemoResult:
    folder: Path
    database_url: str
    members: int
    days: int
    per_journey: dict[str, dict[str, Any]]
    seconds: dict[str, float]
    report_path: Path
    outbox: Path
    env_file: Path


def prepare_folder(folder: Path) -> None:
    if folder.exists() and any(folder.iterdir()) and not (folder / MARKER).exists():
        raise DemoFolderInUse(f"{folder} exists and is not a loyalflow demo folder; choose another with --dir")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("made by `loyalflow demo`; safe to delete\n", encoding="utf-8")


def seed_consent(engine: Engine) -> int:
    """Marketing opt-ins given at signup, for a deterministic share of members per channel."""
    total = 0
    with Session(engine) as session:
        for salt, (channel, percent) in enumerate(sorted(OPT_IN_PERCENT.items()), 1):
            chosen = (Member.id * 7919 + salt * 104729) % 100 < percent
            source = select(literal("member"), Member.id, literal(channel), literal("marketing"), literal("opt_in"),
                            literal("signup_form"), Member.enrolled_at, literal("demo: box ticked at signup")
                            ).where(chosen)
            result = session.execute(insert(ConsentEvent).from_select(
                ["recipient_kind", "recipient_id", "channel", "purpose", "action", "source", "occurred_at", "evidence"],
                source))
            total += int(result.rowcount or 0)
        session.commit()
    return total


# simulated provider feedback for the demo's outbox messages (percent of sent messages)
DEMO_ENGAGEMENT = (("delivered", 97, 2), ("open", 41, 95), ("click", 9, 180), ("unsubscribe", 1, 240))


def seed_engagement(engine: Engine) -> int:
    """Provider events the outbox cannot produce, so the demo's funnel means something: a fixed share
    of sent messages is delivered, opened, clicked (email only for opens and clicks), each a
    deterministic function of the ledger id. Marked provider 'demo-simulated'; never used outside the demo."""
    from sqlalchemy import func, literal_column, or_

    from channels.models import DeliveryEvent
    from journeys.models import Send, SendStatus

    total = 0
    with Session(engine) as session:
        for salt, (event, percent, minutes) in enumerate(DEMO_ENGAGEMENT, 1):
            hit = (Send.id * 2654435761 + salt * 97) % 100 < percent
            email_only = or_(Send.channel == "email", literal(event == "delivered"))
            at = (func.strftime("%Y-%m-%d %H:%M:%f", Send.sent_at, f"+{minutes} minutes")
                  if engine.dialect.name == "sqlite" else Send.sent_at + literal_column(f"interval '{minutes} minutes'"))
            source = select(literal("demo-simulated"), Send.id, Send.provider_message_id, literal(event), at
                            ).where(Send.status == SendStatus.sent, hit, email_only)
            result = session.execute(insert(DeliveryEvent).from_select(
                ["provider", "ledger_id", "provider_message_id", "event", "occurred_at"], source))
            total += int(result.rowcount or 0)
        # an unsubscribe is also a consent withdrawn, as the webhook would record it
        unsubscribed = (select(Send.recipient_kind, Send.recipient_id, Send.channel, literal("marketing"),
                               literal("opt_out"), literal("unsubscribe_link"), func.min(DeliveryEvent.occurred_at),
                               literal("demo: simulated unsubscribe"))
                        .join(DeliveryEvent, DeliveryEvent.ledger_id == Send.id)
                        .where(DeliveryEvent.provider == "demo-simulated", DeliveryEvent.event == "unsubscribe")
                        .group_by(Send.recipient_kind, Send.recipient_id, Send.channel))
        session.execute(insert(ConsentEvent).from_select(
            ["recipient_kind", "recipient_id", "channel", "purpose", "action", "source", "occurred_at", "evidence"],
            unsubscribed))
        session.commit()
    return total


NEWSLETTER = "newsletter"


def schedule_newsletter(engine: Engine, at: datetime) -> None:
    """The demo's program newsletter: a broadcast to every member, 10% held out, spread over two hours
    from `at`; the replayed passes deliver it through the gate like any journey step."""
    from journeys import broadcasts
    from templates.library import TemplateLibrary

    with Session(engine) as session:
        broadcasts.create(session, NEWSLETTER, templates=["broadcasts/newsletter"], holdout_percent=10, now=at,
                          library=TemplateLibrary.load())
        broadcasts.schedule(session, NEWSLETTER, at, at=at, over=timedelta(hours=2))


SECRET_ENV = "LOYALFLOW_UNSUBSCRIBE_SECRET"


def write_env(folder: Path, url: str, outbox: Path) -> Path:
    """`<folder>/.env`: the settings that point loyalflow at the demo (`source` it, or export them).

    The demo's emails carry unsubscribe and preference links signed with LOYALFLOW_UNSUBSCRIBE_SECRET;
    when none is set, the demo makes one and keeps it here (and sets it for this run before anything
    is sent), so `loyalflow serve` on the demo database accepts those links. A secret the user set
    is used as is and never written to disk."""
    lines = ["# made by `loyalflow demo`: run `source " + str(folder / ".env") + "` to point loyalflow at the demo",
             f"export LOYALFLOW_DATABASE_URL={url}",
             f"export LOYALFLOW_OUTBOX_DIR={outbox.resolve()}",
             "export LOYALFLOW_DELIVERY_MODE=outbox"]
    if os.environ.get(SECRET_ENV):
        lines.append(f"# {SECRET_ENV}: the demo used the one set in your environment")
    else:
        os.environ[SECRET_ENV] = secrets.token_hex(32)
        lines.append(f"export {SECRET_ENV}={os.environ[SECRET_ENV]}  # demo only: signs the demo emails' links")
    path = folder / ".env"
    path.touch(mode=0o600)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_demo(folder: Path, members: int, days: int, seed: int, today: datetime,
             progress: Callable[[str], None] = lambda _: None) -> DemoResult:
    """Data, then `days` simulated days through one Prefect flow run, then the report.

    `progress` hears one line per phase and per simulated day."""
    seconds: dict[str, float] = {}
    prepare_folder(folder)
    url = f"sqlite:///{(folder / 'loyalflow.db').resolve()}"
    outbox = folder / "outbox"
    os.environ["LOYALFLOW_DATABASE_URL"] = url
    os.environ["LOYALFLOW_OUTBOX_DIR"] = str(outbox.resolve())
    os.environ["LOYALFLOW_DELIVERY_MODE"] = "outbox"
    env_file = write_env(folder, url, outbox)
    runtime.reset()

    started = time.perf_counter()
    progress(f"generating {members:,} members")
    engine = make_engine(url, create=True)
    migrate.upgrade(engine)
    generate(engine, members, seed, today)
    seed_consent(engine)
    start = today - timedelta(days=days)
    schedule_newsletter(engine, start + timedelta(days=min(7, max(days - 1, 0)), hours=15))
    seconds["data"] = time.perf_counter() - started

    progress("starting Prefect's local API")
    started = time.perf_counter()
    runtime.quiet_prefect()
    with runtime.local_api():
        seconds["api"] = time.perf_counter() - started
        progress(f"replaying {days} days of all journeys through Prefect")
        started = time.perf_counter()
        from flows.journey_flows import simulate_program

        with runtime.listening(progress):
            results = simulate_program(start.isoformat(), days, replay_purchases=True)
        seconds["journeys"] = time.perf_counter() - started

    progress("writing the report")
    started = time.perf_counter()
    seed_engagement(engine)
    with Session(engine) as session:
        demo_feedback(session, today)  # NPS answers and bulletin reads, as members and staff would give them
        session.commit()
    with Session(engine) as session:
        report = build_report(session, today)
    report_path = folder / "report.html"
    report_path.write_text(render_html(report), encoding="utf-8")
    seconds["report"] = time.perf_counter() - started

    totals: dict[str, dict[str, Any]] = {}
    for day in results:
        for name, stats in day["journeys"].items():
            t = totals.setdefault(name, {"enrolled": 0, "held_out": 0, "sent": {}, "skipped": 0, "failed": 0, "exited": 0})
            t["enrolled"] += stats["enrolled"]
            t["held_out"] += stats["held_out"]
            for channel, n in stats["sent"].items():
                t["sent"][channel] = t["sent"].get(channel, 0) + n
            t["skipped"] += sum(stats["skipped"].values())
            t["failed"] += sum(stats["failed"].values())
            t["exited"] += sum(stats["exited"].values())
    with Session(engine) as session:  # a broadcast's audience enters when it is scheduled, not in a pass
        from journeys.models import Enrollment, EnrollmentStatus

        for name, t in totals.items():
            if name.startswith("broadcast_"):
                statuses = session.execute(select(Enrollment.status).where(Enrollment.journey == name)).scalars().all()
                t["enrolled"] = len(statuses)  # as the report counts it: the holdout included
                t["held_out"] = sum(1 for s in statuses if s is EnrollmentStatus.held_out)
    engine.dispose()
    return DemoResult(folder, url, members, days, totals, seconds, report_path, outbox, env_file)


def today_utc() -> datetime:
    return datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)

"""The competent hand-written sender: the baseline that matters for loyalflow's speed.

What a good engineer writes in a day, with nothing of loyalflow's engine: one SQL query for the
recipients, each (template, locale) read from templates/library as a file and compiled from MJML to
HTML once with mjml-python, Jinja per recipient, 64 threads each with its own kept-alive
`http.client.HTTPConnection` posting a plain SendGrid v3 dict (or a Twilio form), and a `sent`
table for dedupe (a row is reserved before its send and marked after; a reserved key is never sent
again). Links carry an HMAC of the recipient.

Its audience: the same tick's, so both sides send exactly the same messages. It pays for the
audience SQL (each journey's audience statement, run once: the same statements loyalflow's
enrollment runs, prepared at start-up, since a hand-written RFM query costs the same), then takes
the messages in one query from what loyalflow's tick decided on the same database (its sent ledger
rows, their enrollments' context, the members' contacts) for the members the audience returned.
It does not pay for consent, suppression, quiet hours, caps or state: its figure is an upper bound
for a hand-written sender.

    python -m tests.bench.competent_sender SQLITE_URL FAKE_URL NOW   # ready/go protocol as tick_worker
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import queue
import re
import resource
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from tests.bench.tick_worker import peak_rss_mib

LIBRARY = Path(__file__).resolve().parents[2] / "templates" / "library"
THREADS = 64
BATCH = 2_000
SENDGRID_KEY = "SG.bench"
TWILIO_SID = "AC" + "b" * 32
TWILIO_TOKEN = "bench-token"
SECRET = b"competent-bench-secret"
PROGRAM = {"name": "Loyalflow Rewards", "support_email": "support@example.com", "currency": "USD"}
BASE_URL = "https://rewards.example.com"
JOURNEYS = ("points_expiring", "win_back")

RECIPIENTS = """
SELECT s.journey, s.template, s.channel, e.occurrence_key, e.context, m.id, m.email, m.phone, m.locale, m.first_name
FROM sends s JOIN enrollments e ON e.id = s.enrollment_id JOIN members m ON m.id = s.recipient_id
WHERE s.status = 'sent' AND s.recipient_kind = 'member' AND s.channel IN ('email', 'sms') AND s.sent_at >= ?
ORDER BY s.id
"""


# --- templates: compiled once per (template, locale) -------------------------------------------

def _locale(ctx: Any) -> str:
    return str(ctx.get("locale") or "en").replace("-", "_")


def _moment(value: Any, ctx: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(_zone(ctx.get("time_zone")))


@lru_cache(maxsize=256)
def _zone(name: str | None) -> Any:
    try:
        return ZoneInfo(name) if name else timezone.utc
    except (ValueError, KeyError, OSError):
        return timezone.utc


def _environments() -> tuple[Any, Any]:
    import jinja2
    from babel import dates, numbers

    @jinja2.pass_context
    def percent(ctx: Any, value: Any) -> str:
        return numbers.format_percent(float(value) / 100, locale=_locale(ctx))

    @jinja2.pass_context
    def number(ctx: Any, value: Any) -> str:
        return numbers.format_decimal(value, locale=_locale(ctx))

    @jinja2.pass_context
    def date(ctx: Any, value: Any, fmt: str = "long") -> str:
        return dates.format_date(_moment(value, ctx).date(), format=fmt, locale=_locale(ctx))

    @jinja2.pass_context
    def time_(ctx: Any, value: Any, fmt: str = "short") -> str:
        return dates.format_time(_moment(value, ctx), format=fmt, locale=_locale(ctx))

    @jinja2.pass_context
    def datetime_(ctx: Any, value: Any, fmt: str = "medium") -> str:
        return dates.format_datetime(_moment(value, ctx), format=fmt, locale=_locale(ctx))

    html = jinja2.Environment(autoescape=True)
    text = jinja2.Environment(autoescape=False)
    for env in (html, text):
        env.filters.update(percent=percent, number=number, date=date, time=time_, datetime=datetime_)
    return html, text


@dataclass
class Template:
    subject: Any | None
    body: Any


class Templates:
    """template name + locale -> compiled Jinja template, made on first use (MJML compiled once)."""

    def __init__(self) -> None:
        self.html, self.text = _environments()
        self.cache: dict[tuple[str, str], Template] = {}
        self.lock = threading.Lock()

    def get(self, name: str, channel: str, locale: str) -> Template:
        key = (name, locale)
        found = self.cache.get(key)
        if found is None:
            with self.lock:
                found = self.cache.get(key) or self._compile(name, channel, locale)
                self.cache[key] = found
        return found

    def _compile(self, name: str, channel: str, locale: str) -> Template:
        import mjml

        suffix = ".mjml" if channel == "email" else ".sms.txt"
        for candidate in (locale, locale.split("-")[0], "en"):
            path = LIBRARY / f"{name}.{candidate}{suffix}"
            if path.is_file():
                break
        _, front, body = path.read_text(encoding="utf-8").split("---", 2)
        fields = dict(line.split(":", 1) for line in front.strip().splitlines() if ":" in line)
        if channel == "email":
            return Template(self.text.from_string(fields["subject"].strip()),
                            self.html.from_string(mjml.mjml2html(body)))
        return Template(None, self.text.from_string(body.strip()))


# --- sending ------------------------------------------------------------------------------------

@dataclass
class Job:
    sent_id: int
    channel: str
    template: str
    locale: str
    to: str
    member_id: int
    context: dict[str, Any]


def _links(member_id: int, channel: str) -> dict[str, str]:
    token = hmac.new(SECRET, f"{member_id}:{channel}".encode(), hashlib.sha256).hexdigest()[:32]
    return {"unsubscribe_url": f"{BASE_URL}/u/{member_id}/{channel}/{token}",
            "preferences_url": f"{BASE_URL}/p/{member_id}/{token}", "app_url": "loyalflow://home"}


class Sender(threading.Thread):
    """One thread, one kept-alive connection; renders and posts each job it takes."""

    def __init__(self, jobs: queue.Queue[Job | None], results: queue.Queue[tuple[int, int, str]],
                 templates: Templates, host: str, port: int) -> None:
        super().__init__(daemon=True)
        self.jobs, self.results, self.templates = jobs, results, templates
        self.host, self.port = host, port
        self.conn = http.client.HTTPConnection(host, port, timeout=30)
        self.sendgrid_headers = {"Authorization": f"Bearer {SENDGRID_KEY}", "Content-Type": "application/json"}
        basic = base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
        self.twilio_headers = {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"}
        self.twilio_path = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"

    def run(self) -> None:
        while (job := self.jobs.get()) is not None:
            try:
                self.results.put(self._send(job))
            except Exception as exc:  # a template or data error fails this message, not the run
                print(f"competent sender: sent row {job.sent_id}: {type(exc).__name__}", file=sys.stderr)
                self.results.put((job.sent_id, 0, ""))

    def _send(self, job: Job) -> tuple[int, int, str]:
        template = self.templates.get(job.template, job.channel, job.locale)
        ctx = {**job.context, "program": PROGRAM, "links": _links(job.member_id, job.channel)}
        if job.channel == "email":
            payload = {
                "personalizations": [{"to": [{"email": job.to}]}],
                "from": {"email": "rewards@example.com", "name": PROGRAM["name"]},
                "subject": template.subject.render(ctx),
                "content": [{"type": "text/html", "value": template.body.render(ctx)}],
                "custom_args": {"ledger_id": str(job.sent_id)},
            }
            return self._post("/v3/mail/send", json.dumps(payload).encode(), self.sendgrid_headers, job.sent_id)
        form = urlencode({"To": job.to, "From": "+12015550100", "Body": template.body.render(ctx),
                          "StatusCallback": f"{BASE_URL}/twilio/status?ledger_id={job.sent_id}"}).encode()
        return self._post(self.twilio_path, form, self.twilio_headers, job.sent_id)

    def _post(self, path: str, body: bytes, headers: dict[str, str], sent_id: int) -> tuple[int, int, str]:
        for attempt in range(3):
            try:
                self.conn.request("POST", path, body, headers)
                answer = self.conn.getresponse()
                data = answer.read()
                provider_id = answer.getheader("X-Message-Id") or ""
                if answer.status == 201 and data:
                    provider_id = json.loads(data).get("sid", "")
                return sent_id, answer.status, provider_id
            except (OSError, http.client.HTTPException):
                self.conn.close()  # reconnects on the next request
                if attempt == 2:
                    return sent_id, 0, ""
        return sent_id, 0, ""


SCHEMA = """
CREATE TABLE IF NOT EXISTS competent_sent (
    id INTEGER PRIMARY KEY, dedupe_key TEXT NOT NULL UNIQUE, status TEXT NOT NULL, provider_id TEXT
)"""


def audience_statements(db_url: str, now: datetime) -> list[tuple[Any, Any]]:
    """(engine, SELECT) per journey of the tick: its audience at `now`, recipient id first."""
    from sqlalchemy import create_engine

    from audiences.queries import get_audience
    from journeys.registry import get_journey

    engine = create_engine(db_url)
    out = []
    for name in JOURNEYS:
        journey = get_journey(name)
        out.append((engine, get_audience(journey.audience).query(now, **journey.audience_params).select()))
    return out


def run(db_path: str, fake_url: str, audiences: list[tuple[Any, Any]], fresh: bool = True,
        since: datetime | None = None) -> dict[str, Any]:
    """Run the audience, then send what the query finds for it and has no `sent` row yet; returns counts.
    `since`: only what loyalflow's tick sent from then on (after a warm-up tick the day before, today's)."""
    split = urlsplit(fake_url)
    db = sqlite3.connect(db_path, timeout=30, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    if fresh:
        db.execute("DROP TABLE IF EXISTS competent_sent")
    db.execute(SCHEMA)
    templates = Templates()
    jobs: queue.Queue[Job | None] = queue.Queue(maxsize=BATCH * 2)
    results: queue.Queue[tuple[int, int, str]] = queue.Queue()
    senders = [Sender(jobs, results, templates, split.hostname or "127.0.0.1", split.port or 80)
               for _ in range(THREADS)]
    for s in senders:
        s.start()
    counts = {"queued": 0, "accepted": 0, "failed": 0, "already_sent": 0}
    pending = 0

    def drain(block: bool) -> None:
        nonlocal pending
        done = []
        while pending and (block or not results.empty()):
            done.append(results.get())
            pending -= 1
            if not block and len(done) >= BATCH:
                break
        if done:
            ok = [(provider, sid) for sid, status, provider in done if 200 <= status < 300]
            counts["accepted"] += len(ok)
            counts["failed"] += len(done) - len(ok)
            db.execute("BEGIN")
            db.executemany("UPDATE competent_sent SET status = 'sent', provider_id = ? WHERE id = ?", ok)
            db.executemany("UPDATE competent_sent SET status = 'failed' WHERE id = ?",
                           [(sid,) for sid, status, _ in done if not 200 <= status < 300])
            db.execute("COMMIT")

    audience: set[int] = set()
    for statement in audiences:
        with statement[0].connect() as conn:
            audience.update(row[0] for row in conn.execute(statement[1]))
    counts["audience"] = len(audience)
    reader = sqlite3.connect(db_path, timeout=30)
    floor = since.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f") if since else ""  # as UTCDateTime stores it
    cursor = reader.execute(RECIPIENTS, (floor,))
    while fetched := cursor.fetchmany(BATCH):
        rows = [r for r in fetched if r[5] in audience]
        batch: list[Job] = []
        db.execute("BEGIN")
        for journey, template, channel, occurrence, context, member_id, email, phone, locale, first_name in rows:
            key = f"{journey}:{member_id}:{occurrence}:{template}"
            inserted = db.execute("INSERT OR IGNORE INTO competent_sent (dedupe_key, status) VALUES (?, 'reserved')",
                                  (key,))
            if inserted.rowcount != 1:
                counts["already_sent"] += 1
                continue
            ctx = json.loads(context) if context else {}
            ctx.setdefault("first_name", first_name)
            if journey == "win_back":  # the offer, sized by value (monetary quintile)
                percent = {5: 25, 4: 20, 3: 15}.get(int(ctx.get("m_score") or 0), 10)
                ctx.update(offer_percent=percent, offer_code=f"COMEBACK{percent}")
            batch.append(Job(inserted.lastrowid or 0, channel, template, locale or "en",
                             (email if channel == "email" else phone) or "", member_id, ctx))
        db.execute("COMMIT")
        for job in batch:
            jobs.put(job)
            pending += 1
            counts["queued"] += 1
        drain(block=False)
    reader.close()
    for _ in senders:
        jobs.put(None)
    drain(block=True)
    for s in senders:
        s.join()
    db.close()
    return counts


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(db_url: str, fake_url: str, now_text: str, since_text: str | None = None) -> None:
    import jinja2  # noqa: F401  (imports before `ready`, as tick_worker's)
    import mjml  # noqa: F401

    path = re.sub(r"^sqlite:///", "", db_url)
    audiences = audience_statements(db_url, datetime.fromisoformat(now_text))
    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    cpu0, wall0 = _cpu(), time.time()
    counts = run(path, fake_url, audiences, since=datetime.fromisoformat(since_text) if since_text else None)
    wall1, cpu1 = time.time(), _cpu()
    print(json.dumps({"role": "competent", "pid": os.getpid(), "messages": counts["accepted"], **counts,
                      "cpu_s": round(cpu1 - cpu0, 4), "wall_start": wall0, "wall_end": wall1,
                      "peak_rss_mib": round(peak_rss_mib(), 1)}),
          flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:5])

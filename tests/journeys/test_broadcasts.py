"""Broadcasts: a one-step journey per broadcast row, through the same gate and ledger as any journey.

Each member once (across passes, concurrent passes and a second `send`), members without consent
skipped with the reason, SMS deferred out of quiet hours, throttled due instants spread over the
window, cancel stopping what was not handed over, and bad input refused with nothing changed.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, func, insert, literal, select, text
from sqlalchemy.orm import Session, sessionmaker

from audiences.models import Member
from channels.adapters import MemoryAdapter
from channels.models import ConsentEvent
from journeys import broadcasts
from journeys.broadcast_models import Broadcast, BroadcastStatus
from journeys.models import Enrollment, EnrollmentStatus, SendStatus
from journeys.models import Send as LedgerRow
from journeys.passes import run_pass
from journeys.services import Services, services_for
from templates import TemplateLibrary

UTC = timezone.utc
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 10:00 in New York: outside SMS quiet hours (21:00-08:00)
JOINED = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def library() -> TemplateLibrary:
    return TemplateLibrary.load()


def members(engine: Engine, n: int, *, zone: str = "America/New_York", consent_every: int = 1,
            channel: str = "email", phone: bool = False) -> None:
    """`n` members with ids 1..n in one INSERT ... SELECT; every `consent_every`-th one opted in to `channel`."""
    ids = text("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :n) SELECT i FROM n")
    with Session(engine) as s:
        s.execute(text("""INSERT INTO members (id, first_name, last_name, email, phone, locale, time_zone, country,
                                               enrolled_at, status)
                          SELECT i, 'M', 'T', 'm' || i || '@example.com', """
                       + ("'+1202555' || substr('0000' || (i % 10000), -4)" if phone else "NULL")
                       + """, 'en', :zone, 'US', :joined, 'active' FROM (""" + str(ids) + ") AS seq"),
                  {"n": n, "zone": zone, "joined": JOINED.replace(tzinfo=None)})
        chosen = select(literal("member"), Member.id, literal(channel), literal("marketing"), literal("opt_in"),
                        literal("test"), literal(JOINED, ConsentEvent.occurred_at.type)).where(
            Member.id % consent_every == 0)
        s.execute(insert(ConsentEvent).from_select(
            ["recipient_kind", "recipient_id", "channel", "purpose", "action", "source", "occurred_at"], chosen))
        s.commit()


def ledger_counts(engine: Engine, journey: str) -> dict[str, int]:
    with Session(engine) as s:
        return {str(getattr(st, "value", st)): n for st, n in s.execute(
            select(LedgerRow.status, func.count()).where(LedgerRow.journey == journey).group_by(LedgerRow.status))}


def make(engine: Engine, library: TemplateLibrary, name: str = "november", **kwargs: object) -> Broadcast:
    kwargs.setdefault("templates", ["broadcasts/newsletter"])
    with Session(engine, expire_on_commit=False) as s:
        return broadcasts.create(s, name, now=NOW, library=library, **kwargs)  # type: ignore[arg-type]


def send_now(engine: Engine, name: str = "november", at: datetime | None = None,
             over: timedelta = timedelta(0)) -> Broadcast:
    with Session(engine, expire_on_commit=False) as s:
        return broadcasts.schedule(s, name, NOW, at=at, over=over)


@pytest.mark.slow
def test_a_broadcast_to_100000_members_sends_each_once_through_the_gate(sqlite_engine: Engine,
                                                                        library: TemplateLibrary) -> None:
    engine = sqlite_engine
    members(engine, 100_000, consent_every=10)  # 10,000 opted in; 90,000 never did
    make(engine, library)
    row = send_now(engine)
    assert row.enrolled == 100_000 and row.status is BroadcastStatus.sending
    journey = broadcasts.journey_name(row.id)
    recorder = MemoryAdapter()
    services = services_for(recorder)
    factory = sessionmaker(engine, expire_on_commit=False)
    first = run_pass(factory, {}, NOW, services, chunk_size=20_000)  # the pass finds the broadcast by itself
    assert first.journeys[journey].sent["email"] == 10_000
    run_pass(factory, {}, NOW + timedelta(minutes=1), services)  # and a second pass does nothing more
    counts = ledger_counts(engine, journey)
    assert counts == {"sent": 10_000, "skipped": 90_000}
    with Session(engine) as s:
        reasons = dict(s.execute(select(LedgerRow.reason, func.count()).where(
            LedgerRow.journey == journey, LedgerRow.status == SendStatus.skipped).group_by(LedgerRow.reason)).all())
        assert reasons == {"no_consent": 90_000}
        per_member = s.execute(select(func.count(), func.count(func.distinct(LedgerRow.recipient_id)))
                               .where(LedgerRow.journey == journey)).one()
        assert tuple(per_member) == (100_000, 100_000)
        assert s.scalar(select(func.count()).where(Enrollment.journey == journey,
                                                   Enrollment.status == EnrollmentStatus.completed)) == 100_000
    sent_to = [m.recipient_id for m in recorder.requests]
    assert len(sent_to) == len(set(sent_to)) == 10_000 and all(i % 10 == 0 for i in sent_to)
    with Session(engine) as s:
        [progress] = broadcasts.progress(s, NOW + timedelta(minutes=2))
    assert progress.status == "sent" and progress.sent == 10_000 and progress.skipped == {"no_consent": 90_000}


@pytest.mark.slow
def test_concurrent_passes_and_a_second_send_never_send_twice(sqlite_engine: Engine,
                                                              library: TemplateLibrary) -> None:
    engine = sqlite_engine
    members(engine, 3_000)
    make(engine, library)
    row = send_now(engine)
    with pytest.raises(broadcasts.BroadcastError, match="only a draft can be sent"):
        send_now(engine)
    recorder = MemoryAdapter()
    services = services_for(recorder)
    factory = sessionmaker(engine, expire_on_commit=False)
    errors: list[BaseException] = []

    def one_pass() -> None:
        try:
            run_pass(factory, {}, NOW, services, chunk_size=500)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one_pass) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    run_pass(factory, {}, NOW + timedelta(minutes=1), services)
    sent_to = [m.recipient_id for m in recorder.requests]
    assert len(sent_to) == len(set(sent_to)) == 3_000
    assert ledger_counts(engine, broadcasts.journey_name(row.id)) == {"sent": 3_000}


@pytest.mark.slow
def test_sms_broadcast_waits_for_the_end_of_quiet_hours(sqlite_engine: Engine, library: TemplateLibrary) -> None:
    engine = sqlite_engine
    members(engine, 50, channel="sms", phone=True)
    make(engine, library, templates=["broadcasts/newsletter_sms"])
    late = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 22:00 in New York: quiet hours for SMS
    with Session(engine, expire_on_commit=False) as s:
        row = broadcasts.schedule(s, "november", late)
    recorder = MemoryAdapter()
    services = services_for(recorder)
    factory = sessionmaker(engine, expire_on_commit=False)
    run_pass(factory, {}, late, services)
    assert recorder.requests == []
    assert ledger_counts(engine, broadcasts.journey_name(row.id)) == {"deferred": 50}
    morning = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)  # 08:00 in New York
    run_pass(factory, {}, morning - timedelta(minutes=1), services)
    assert recorder.requests == []
    run_pass(factory, {}, morning, services)
    assert len(recorder.requests) == 50 and {m.channel for m in recorder.requests} == {"sms"}
    assert ledger_counts(engine, broadcasts.journey_name(row.id)) == {"sent": 50}


@pytest.mark.slow
def test_throttle_spreads_due_instants_over_the_window_and_sends_across_passes(sqlite_engine: Engine,
                                                                               library: TemplateLibrary) -> None:
    engine = sqlite_engine
    members(engine, 1_200)
    make(engine, library)
    start = NOW + timedelta(hours=1)
    row = send_now(engine, at=start, over=timedelta(hours=2))
    assert row.status is BroadcastStatus.scheduled
    journey = broadcasts.journey_name(row.id)
    with Session(engine) as s:
        due = sorted(s.scalars(select(Enrollment.due_at).where(Enrollment.journey == journey)))
    assert due[0] == start and due[-1] < start + timedelta(hours=2)
    assert due[-1] > start + timedelta(hours=2) - timedelta(seconds=10)  # spread to the end, not bunched
    per_quarter = [sum(1 for d in due if start + timedelta(minutes=15 * q) <= d < start + timedelta(minutes=15 * (q + 1)))
                   for q in range(8)]
    assert per_quarter == [150] * 8  # evenly: 1,200 over 8 quarters of an hour

    recorder = MemoryAdapter()
    services = services_for(recorder)
    factory = sessionmaker(engine, expire_on_commit=False)
    run_pass(factory, {}, NOW, services)
    assert recorder.requests == []  # nothing before the start
    sent_by_pass = []
    for minutes in (0, 30, 60, 90, 120):
        before = len(recorder.requests)
        run_pass(factory, {}, start + timedelta(minutes=minutes), services)
        sent_by_pass.append(len(recorder.requests) - before)
    assert sent_by_pass == [1, 300, 300, 300, 299]  # one every 6 s: the first at the start, then what fell due since
    assert len({m.recipient_id for m in recorder.requests}) == 1_200


@pytest.mark.slow
def test_cancel_stops_what_was_not_handed_over(sqlite_engine: Engine, library: TemplateLibrary) -> None:
    engine = sqlite_engine
    members(engine, 400)
    make(engine, library)
    row = send_now(engine, over=timedelta(hours=1))
    recorder = MemoryAdapter()
    services = services_for(recorder)
    factory = sessionmaker(engine, expire_on_commit=False)
    run_pass(factory, {}, NOW + timedelta(minutes=15), services)
    sent = len(recorder.requests)
    assert sent == 101  # ranks 0..100 are due by a quarter of the hour
    with Session(engine) as s:
        assert broadcasts.cancel(s, "november", NOW + timedelta(minutes=16)) == 400 - sent
    run_pass(factory, {}, NOW + timedelta(hours=2), services)
    assert len(recorder.requests) == sent
    journey = broadcasts.journey_name(row.id)
    with Session(engine) as s:
        exits = dict(s.execute(select(Enrollment.exit_reason, func.count()).where(
            Enrollment.journey == journey, Enrollment.status == EnrollmentStatus.exited)
            .group_by(Enrollment.exit_reason)).all())
        assert exits == {"cancelled": 400 - sent}
        [progress] = broadcasts.progress(s, NOW + timedelta(hours=2))
        assert progress.status == "cancelled" and progress.cancelled == 400 - sent and progress.sent == sent
        with pytest.raises(broadcasts.BroadcastError, match="already cancelled"):
            broadcasts.cancel(s, "november", NOW)


def test_bad_input_is_refused_and_changes_nothing(sqlite_engine: Engine, library: TemplateLibrary) -> None:
    engine = sqlite_engine
    cases = [
        ({"templates": ["broadcasts/nope"]}, "unknown template 'broadcasts/nope'"),
        ({"templates": ["win_back/email_offer"]}, "cannot be used in a broadcast"),
        ({"audience": "nobody"}, "unknown audience 'nobody'"),
        ({"audience": "staff"}, "broadcasts go to members"),
        ({"params": {"colour": "red"}}, "has no parameter colour"),
        ({"purpose": "transactional"}, "differs from the templates' declared purpose"),
        ({"templates": ["broadcasts/newsletter", "broadcasts/newsletter"]}, "one per channel"),
    ]
    for kwargs, message in cases:
        with pytest.raises(Exception, match=message):
            make(engine, library, **kwargs)
    with pytest.raises(broadcasts.BroadcastError, match="lower-case"):
        make(engine, library, name="Big News!")
    make(engine, library)
    with pytest.raises(broadcasts.BroadcastError, match="exists"):
        make(engine, library)
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Broadcast)) == 1
        with pytest.raises(broadcasts.BroadcastError, match="unknown broadcast 'other'; known: november"):
            broadcasts.schedule(s, "other", NOW)
        with pytest.raises(broadcasts.BroadcastError, match="in the past"):
            broadcasts.schedule(s, "november", NOW, at=NOW - timedelta(days=1))
        assert s.scalar(select(func.count()).select_from(Enrollment)) == 0
    for raw, message in (("2x", "not a duration"), ("9d", "longer than 7 days")):
        with pytest.raises(broadcasts.BroadcastError, match=message):
            broadcasts.parse_over(raw)
    assert broadcasts.parse_over("90m") == timedelta(minutes=90)


def test_audience_parameters_narrow_and_preview_renders_for_a_member(sqlite_engine: Engine,
                                                                     library: TemplateLibrary) -> None:
    engine = sqlite_engine
    members(engine, 20)
    with Session(engine) as s:
        s.execute(text("UPDATE members SET locale = 'fr', first_name = 'Zoé' WHERE id <= 5"))
        s.commit()
    make(engine, library, params={"locale": "fr"})
    row = send_now(engine)
    assert row.enrolled == 5
    with Session(engine) as s:
        [(template, rendered)] = broadcasts.preview(s, "november", library, member_id=3)
        assert template == "broadcasts/newsletter"
        assert "Zoé" in rendered.html and rendered.subject.startswith("Les nouvelles")
        [(_, sample)] = broadcasts.preview(s, "november", library, locale="de")
        assert sample.subject.startswith("Neuigkeiten")
        with pytest.raises(broadcasts.BroadcastError, match="no member with id 999"):
            broadcasts.preview(s, "november", library, member_id=999)


@pytest.mark.slow
def test_a_holdout_is_enrolled_but_never_messaged(sqlite_engine: Engine, library: TemplateLibrary) -> None:
    engine = sqlite_engine
    members(engine, 2_000)
    make(engine, library, holdout_percent=10)
    row = send_now(engine)
    recorder = MemoryAdapter()
    run_pass(sessionmaker(engine, expire_on_commit=False), {}, NOW, services_for(recorder))
    with Session(engine) as s:
        held = set(s.scalars(select(Enrollment.recipient_id).where(
            Enrollment.journey == broadcasts.journey_name(row.id), Enrollment.status == EnrollmentStatus.held_out)))
    assert 140 <= len(held) <= 260  # about 10 %
    assert not held & {m.recipient_id for m in recorder.requests}
    assert len(recorder.requests) == 2_000 - len(held)


@pytest.mark.slow
def test_broadcast_on_both_databases(engine: Engine, library: TemplateLibrary) -> None:
    """The smaller variant on SQLite and PostgreSQL: throttled enrollment in SQL, once per member."""
    members(engine, 500, consent_every=2)
    make(engine, library)
    row = send_now(engine, over=timedelta(minutes=50))
    journey = broadcasts.journey_name(row.id)
    with Session(engine) as s:
        due = sorted(s.scalars(select(Enrollment.due_at).where(Enrollment.journey == journey)))
    assert len(due) == 500 and due[0] == NOW and NOW + timedelta(minutes=49) < due[-1] < NOW + timedelta(minutes=50)
    assert due[100] == NOW + timedelta(minutes=10)  # rank 101 of 500 over 50 minutes: exactly 10 minutes in
    recorder = MemoryAdapter()
    services: Services = services_for(recorder)
    factory = sessionmaker(engine, expire_on_commit=False)
    for minutes in range(0, 60, 10):
        run_pass(factory, {}, NOW + timedelta(minutes=minutes), services)
    run_pass(factory, {}, NOW + timedelta(minutes=59), services)
    assert ledger_counts(engine, journey) == {"sent": 250, "skipped": 250}
    sent_to = [m.recipient_id for m in recorder.requests]
    assert len(sent_to) == len(set(sent_to)) == 250 and all(i % 2 == 0 for i in sent_to)

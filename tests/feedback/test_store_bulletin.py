"""Staff bulletins true per store: each store's week equals SQL written independently here (window
functions instead of the module's correlated subqueries), the bulletin shows each staff member their
own store next to the program, managers see more, and "I've read it" is recorded once per staff
member, giving read rates per store."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import DateTime, Engine, bindparam, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from audiences.models import Member, ProgramUpdate, Purchase, StaffRole, Store
from channels.adapters import MemoryAdapter
from channels.survey_models import BulletinRead, SurveyAnswer
from channels.surveys import SURVEY, LinkClaim, record_answer
from journeys.bulletin import program_week, store_week_figures
from journeys.context_extras import week_figures
from journeys.engine import tick
from journeys.registry import get_journey
from journeys.services import services_for
from journeys.surveys import read_rates
from tests.audiences import builders as b
from tests.feedback.conftest import Clock, path_of

MONDAY = datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc)
START = MONDAY - timedelta(days=7)
NORTH, SOUTH, EAST = 1, 2, 3

HOME = """
WITH ranked AS (
  SELECT member_id, store_id,
         ROW_NUMBER() OVER (PARTITION BY member_id ORDER BY purchased_at DESC, id DESC) AS rn
  FROM purchases WHERE store_id IS NOT NULL AND purchased_at <= :end_at),
home AS (SELECT member_id, store_id FROM ranked WHERE rn = 1)
"""
EXPECTED_SQL = {
    "enrollments": HOME + """SELECT h.store_id, COUNT(*) FROM members m LEFT JOIN home h ON h.member_id = m.id
        WHERE m.enrolled_at > :start_at AND m.enrolled_at <= :end_at GROUP BY h.store_id""",
    "redemptions": HOME + """SELECT h.store_id, COUNT(*) FROM points_ledger p LEFT JOIN home h ON h.member_id = p.member_id
        WHERE p.kind = 'redeem' AND p.occurred_at > :start_at AND p.occurred_at <= :end_at GROUP BY h.store_id""",
    "tier_ups": HOME + """SELECT h.store_id, COUNT(*) FROM tier_changes c
        JOIN tiers t_new ON t_new.id = c.to_tier_id JOIN tiers t_old ON t_old.id = c.from_tier_id
        LEFT JOIN home h ON h.member_id = c.member_id
        WHERE t_new.rank > t_old.rank AND c.changed_at > :start_at AND c.changed_at <= :end_at GROUP BY h.store_id""",
    "nps_responses": HOME + """SELECT h.store_id, COUNT(*) FROM survey_answers a LEFT JOIN home h ON h.member_id = a.recipient_id
        WHERE a.recipient_kind = 'member' AND a.scale_max = 10 AND a.answered_at > :start_at AND a.answered_at <= :end_at
        GROUP BY h.store_id""",
    "promoters": HOME + """SELECT h.store_id, COUNT(*) FROM survey_answers a LEFT JOIN home h ON h.member_id = a.recipient_id
        WHERE a.recipient_kind = 'member' AND a.scale_max = 10 AND a.score >= 9
          AND a.answered_at > :start_at AND a.answered_at <= :end_at GROUP BY h.store_id""",
    "detractors": HOME + """SELECT h.store_id, COUNT(*) FROM survey_answers a LEFT JOIN home h ON h.member_id = a.recipient_id
        WHERE a.recipient_kind = 'member' AND a.scale_max = 10 AND a.score <= 6
          AND a.answered_at > :start_at AND a.answered_at <= :end_at GROUP BY h.store_id""",
}


def expected(session: Session, metric: str) -> dict[int | None, int]:
    query = text(EXPECTED_SQL[metric]).bindparams(bindparam("start_at", type_=DateTime()),
                                                 bindparam("end_at", type_=DateTime()))
    return {sid: int(n) for sid, n in session.execute(query, {"start_at": START.replace(tzinfo=None),
                                                               "end_at": MONDAY.replace(tzinfo=None)})}


_ids = iter(range(5000, 9000))


def buy(s: Session, member: Member, store: int, at: datetime) -> None:
    s.add(Purchase(id=next(_ids), member_id=member.id, store_id=store, amount=Decimal("10"), currency="USD",
                   purchased_at=at))


def nps(s: Session, member_id: int, score: int, at: datetime) -> None:
    record_answer(s, LinkClaim(SURVEY, next(_ids), "member", member_id, "tier_up", "nps", 0, 10), score, at, channel="web")


def build_week(s: Session) -> None:
    """Two stores with different weeks (and a third with no staff); see the comments for each member's store."""
    tiers = b.tiers(s)
    for sid, name in ((NORTH, "North"), (SOUTH, "South"), (EAST, "East")):
        b.store(s, sid, name)
    day = timedelta(days=1)
    m1 = b.member(s, 1, enrolled_at=MONDAY - 2 * day)                 # North
    buy(s, m1, NORTH, MONDAY - 2 * day)
    b.spend(s, m1, 100, MONDAY - day)
    b.tier_change(s, m1, tiers["silver"], tiers["gold"], MONDAY - day)
    nps(s, 1, 10, MONDAY - day)
    m2 = b.member(s, 2, enrolled_at=MONDAY - 3 * day)                 # South: its latest in-store purchase
    buy(s, m2, NORTH, MONDAY - 10 * day)
    buy(s, m2, SOUTH, MONDAY - day)
    b.spend(s, m2, 50, MONDAY - 2 * day)
    b.spend(s, m2, 50, MONDAY - 3 * day)
    nps(s, 2, 3, MONDAY - 2 * day)
    m3 = b.member(s, 3, enrolled_at=MONDAY - 30 * day)                # South, enrolled long ago
    buy(s, m3, SOUTH, MONDAY - 20 * day)
    b.spend(s, m3, 10, MONDAY - 8 * day)                              # last week: not counted
    b.tier_change(s, m3, tiers["bronze"], tiers["silver"], MONDAY - 2 * day)
    nps(s, 3, 8, MONDAY - 3 * day)
    nps(s, 3, 0, MONDAY - 9 * day)                                    # last week: not counted
    m4 = b.member(s, 4, enrolled_at=MONDAY - day)                     # no in-store purchase: no store
    b.spend(s, m4, 20, MONDAY - 5 * day)
    m5 = b.member(s, 5, enrolled_at=MONDAY - 4 * day)                 # North (its East purchase is after the week)
    buy(s, m5, NORTH, MONDAY - 5 * day)
    buy(s, m5, EAST, MONDAY + timedelta(hours=1))
    b.tier_change(s, m5, tiers["gold"], tiers["silver"], MONDAY - day)  # a downgrade: not a tier-up
    m6 = b.member(s, 6, enrolled_at=MONDAY - 6 * day)                 # East
    buy(s, m6, EAST, MONDAY - 6 * day)
    s.flush()


def test_each_stores_week_equals_independent_sql(engine: Engine) -> None:
    with Session(engine) as s:
        build_week(s)
        s.commit()
        figures = store_week_figures(s, START, MONDAY)
        for metric in EXPECTED_SQL:
            mine = {sid: getattr(week, metric) for sid, week in figures.items() if getattr(week, metric)}
            assert mine == expected(s, metric), metric
        # the data really differs by store (so the comparison above could fail)
        assert (figures[NORTH].enrollments, figures[NORTH].redemptions, figures[NORTH].tier_ups) == (2, 1, 1)
        assert (figures[SOUTH].enrollments, figures[SOUTH].redemptions, figures[SOUTH].tier_ups) == (1, 2, 1)
        assert (figures[NORTH].nps, figures[SOUTH].nps) == (100, -50)
        assert figures[None].enrollments == 1 and figures[None].redemptions == 1
        program = program_week(figures)
        week = week_figures(s, MONDAY)  # the program figures the bulletin already showed
        assert (program.enrollments, program.redemptions, program.tier_ups) == \
            (week["enrollments"], week["redemptions"], week["tier_ups"])


def links(html: str, kind: str) -> list[str]:
    return re.findall(rf'href="(https://loyalflow\.test/{kind}/[^"]+)"', html)


@pytest.mark.slow  # several engine ticks with real templates
def test_bulletins_per_store_with_read_links_and_read_rates(engine: Engine, serve) -> None:  # type: ignore[no-untyped-def]
    with Session(engine, expire_on_commit=False) as s:
        build_week(s)
        stores = {sid: s.get(Store, sid) for sid in (NORTH, SOUTH)}
        b.staff(s, 11, StaffRole.store_manager, stores[NORTH])
        b.staff(s, 12, StaffRole.associate, stores[NORTH])
        b.staff(s, 13, StaffRole.associate, stores[SOUTH])
        b.staff(s, 14, StaffRole.program_manager, None)
        s.add(ProgramUpdate(title="Double points weekend", body="All stores.", roles=None, store_id=None,
                            published_at=MONDAY - timedelta(days=2)))
        s.commit()
    adapter = MemoryAdapter()
    services = services_for(adapter)
    journey = get_journey("staff_bulletin")
    tick(sessionmaker(engine, expire_on_commit=False), journey, MONDAY, services)
    sent = {m.recipient_id: m for m in adapter.requests}
    assert sorted(sent) == [11, 12, 13, 14]
    north, south, office = sent[12].content.text, sent[13].content.text, sent[14].content.text
    assert "This week at North" in north and "100 (1 answers)" in north and "-50" not in north
    assert "This week at South" in south and "-50 (2 answers)" in south and "For managers" not in south
    assert "This week across" in office and "Every store this week" in office
    assert "North: New members 2 · Redemptions 1 · Tier upgrades 1 · NPS 100" in office
    assert "South: New members 1 · Redemptions 2 · Tier upgrades 1 · NPS -50" in office
    assert "For managers" in sent[11].content.text and "For managers" not in north
    assert all(len(links(m.content.html, "read")) == 1 for m in sent.values())
    assert all(len(links(m.content.html, "survey")) == 5 for m in sent.values())  # the 1-5 pulse

    clock = Clock(MONDAY + timedelta(hours=2))
    client = serve(engine, clock)
    for staff_id in (11, 12, 12, 14):  # 12 taps twice: one read
        assert client.get(path_of(links(sent[staff_id].content.html, "read")[0])).status_code == 200
    pulse = {int(u.rsplit("/", 1)[1]): u for u in links(sent[13].content.html, "survey")}
    assert client.get(path_of(pulse[2])).status_code == 200
    with Session(engine) as s:
        assert sorted(s.scalars(select(BulletinRead.staff_id))) == [11, 12, 14]
        answer = s.scalars(select(SurveyAnswer).where(SurveyAnswer.recipient_kind == "staff")).one()
        assert (answer.recipient_id, answer.score, answer.scale_min, answer.scale_max, answer.journey) == \
            (13, 2, 1, 5, "staff_bulletin")
        rates = {r.store_name: (r.sent, r.read, r.rate) for r in read_rates(s, MONDAY - timedelta(hours=1))}
        assert rates == {"North": (2, 2, 1.0), "South": (1, 0, 0.0), "Head office": (1, 1, 1.0)}
        assert read_rates(s, MONDAY + timedelta(hours=1)) == []  # nothing sent since

    tick(sessionmaker(engine, expire_on_commit=False), journey, MONDAY + timedelta(days=7), services)
    nxt = {m.recipient_id: m.content.text for m in adapter.requests[4:]}
    assert "Last week's bulletin read at your store: 100% (2/2)" in nxt[11]
    assert "South: New members 0" in nxt[14] and "Read 0%" in nxt[14] and "Read 100%" in nxt[14]
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(BulletinRead)) == 3


@pytest.mark.slow  # several engine ticks with real templates
def test_head_office_associates_see_the_program_without_a_store(sqlite_engine: Engine) -> None:
    with Session(sqlite_engine, expire_on_commit=False) as s:
        build_week(s)
        b.staff(s, 21, StaffRole.associate, None)
        s.commit()
    adapter = MemoryAdapter()
    tick(sessionmaker(sqlite_engine, expire_on_commit=False), get_journey("staff_bulletin"), MONDAY,
         services_for(adapter))
    [message] = adapter.requests
    assert "This week across" in message.content.text and "For managers" not in message.content.text
    assert "New members5" in message.content.text and "Redemptions4" in message.content.text  # every member
    assert "NPS0 (3 answers)" in message.content.text  # 1 promoter, 1 passive, 1 detractor


@pytest.mark.slow  # an engine tick with real templates
def test_demo_feedback_answers_and_reads_a_fixed_share_once(sqlite_engine: Engine) -> None:
    from journeys.surveys import demo_feedback

    with Session(sqlite_engine, expire_on_commit=False) as s:
        north = b.store(s, NORTH, "North")
        for staff_id in range(100, 140):
            b.staff(s, staff_id, StaffRole.associate, north)
        s.commit()
    tick(sessionmaker(sqlite_engine, expire_on_commit=False), get_journey("staff_bulletin"), MONDAY,
         services_for(MemoryAdapter()))
    with Session(sqlite_engine) as s:
        assert demo_feedback(s, MONDAY) == (0, 0)  # nothing is read before it could be
        answers, reads = demo_feedback(s, MONDAY + timedelta(days=3), read_share=0.5, answer_share=0.25)
        s.commit()
        assert 10 <= reads <= 30 and 3 <= answers <= 18  # about half and a quarter of 40
        assert demo_feedback(s, MONDAY + timedelta(days=3), read_share=0.5, answer_share=0.25) == (0, 0)  # once
        [rate] = read_rates(s, MONDAY - timedelta(hours=1))
        assert (rate.store_name, rate.sent, rate.read) == ("North", 40, reads)
        scores = s.scalars(select(SurveyAnswer.score)).all()
        assert len(scores) == answers and all(1 <= x <= 5 for x in scores)
        assert all(r.read_at <= MONDAY + timedelta(days=3) for r in s.scalars(select(BulletinRead)))

"""The tier-up journey's NPS step, end to end: the engine sends the survey (email, else SMS) with the
memory adapter, members answer through the real app (a tap in the email, an SMS reply on the Twilio
webhook), and only detractors get the service-recovery message."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from channels.adapters import MemoryAdapter
from channels.survey_models import SurveyAnswer, SurveyInvite
from journeys.engine import tick
from journeys.models import Send
from journeys.registry import get_journey
from journeys.services import services_for
from journeys.surveys import nps_summary
from tests.audiences import builders as b
from tests.feedback.conftest import Clock, path_of, twilio_reply

T0 = datetime(2026, 11, 2, 15, 5, tzinfo=timezone.utc)  # 10:05 in New York
SMS_ONLY = "+12015550144"


def ticks(engine: Engine, adapter: MemoryAdapter, days: range) -> None:
    services = services_for(adapter)
    journey = get_journey("tier_up")
    for day in days:
        tick(sessionmaker(engine, expire_on_commit=False), journey, T0 + timedelta(days=day), services)


def ledger(engine: Engine, step: str) -> dict[int, tuple[str | None, str]]:
    with Session(engine) as s:
        return {r.recipient_id: (r.channel, r.status.value)
                for r in s.scalars(select(Send).where(Send.journey == "tier_up", Send.step_key == step))}


def score_links(html: str) -> dict[int, str]:
    return {int(score): url for url, score in re.findall(r'href="(https://loyalflow\.test/survey/[^"/]+/(\d+))"', html)}


@pytest.mark.slow  # several engine ticks with real templates
def test_nps_after_tier_up_and_recovery_only_for_detractors(sqlite_engine: Engine, serve) -> None:  # type: ignore[no-untyped-def]
    with Session(sqlite_engine, expire_on_commit=False) as s:
        tiers = b.tiers(s)
        for member_id in (1, 2, 3, 4):
            m = b.member(s, member_id, enrolled_at=T0 - timedelta(days=300), tier=tiers["silver"])
            b.tier_change(s, m, tiers["silver"], tiers["gold"], T0 - timedelta(hours=1))
            if member_id == 4:
                m.email, m.phone = None, SMS_ONLY  # no email: the survey goes by SMS
        s.commit()
    adapter = MemoryAdapter()
    ticks(sqlite_engine, adapter, range(0, 8))  # congratulations, then the survey on day 7

    assert ledger(sqlite_engine, "nps") == {1: ("email", "sent"), 2: ("email", "sent"), 3: ("email", "sent"),
                                            4: ("sms", "sent")}
    surveys = {m.recipient_id: m for m in adapter.requests if m.step == "nps"}
    links = {rid: score_links(m.content.html) for rid, m in surveys.items() if m.channel == "email"}
    assert all(sorted(found) == list(range(11)) for found in links.values())
    assert "0 to 10" in surveys[4].content.text
    with Session(sqlite_engine) as s:
        invites = {i.recipient_id: (i.ledger_id, i.step, i.channel) for i in s.scalars(select(SurveyInvite))}
        assert invites == {rid: (m.ledger_id, "nps", m.channel) for rid, m in surveys.items()}
        assert invites[4][2] == "sms"

    client = serve(sqlite_engine, Clock(T0 + timedelta(days=7, hours=2)))
    assert client.get(path_of(links[1][3])).status_code == 200   # detractor, by a tap
    assert client.get(path_of(links[2][9])).status_code == 200   # promoter
    assert client.get(path_of(links[3][9])).status_code == 200   # member 3 taps 9, then changes to 6...
    assert client.get(path_of(links[3][6])).status_code == 200
    assert client.get(path_of(links[3][10])).status_code == 200  # ...and finally 10: not a detractor
    assert twilio_reply(client, SMS_ONLY, "5 too many emails", "SM44").status_code == 200  # detractor by SMS
    with Session(sqlite_engine) as s:
        answers = {a.recipient_id: (a.score, a.channel, a.ledger_id, a.journey, a.step)
                   for a in s.scalars(select(SurveyAnswer))}
    assert answers == {1: (3, "web", surveys[1].ledger_id, "tier_up", "nps"),
                       2: (9, "web", surveys[2].ledger_id, "tier_up", "nps"),
                       3: (10, "web", surveys[3].ledger_id, "tier_up", "nps"),
                       4: (5, "sms", surveys[4].ledger_id, "tier_up", "nps")}

    ticks(sqlite_engine, adapter, range(8, 16))
    assert ledger(sqlite_engine, "recovery") == {1: ("email", "sent"), 4: (None, "skipped")}  # member 4 has no email
    recovery = [m for m in adapter.requests if m.step == "recovery"]
    assert [m.recipient_id for m in recovery] == [1]
    assert "sorry" in recovery[0].content.subject.lower()
    assert sorted(ledger(sqlite_engine, "email_benefits")) == [1, 2, 3, 4]  # everyone goes on to the reminder

    [row] = nps_summary(Session(sqlite_engine), T0, T0 + timedelta(days=30))
    assert (row.journey, row.step, row.sent, row.responses, row.promoters, row.passives, row.detractors) == \
        ("tier_up", "nps", 4, 4, 2, 0, 2)
    assert row.nps == 0.0 and row.response_rate == 1.0


@pytest.mark.slow  # several engine ticks with real templates
def test_no_answer_means_no_recovery(sqlite_engine: Engine) -> None:
    with Session(sqlite_engine, expire_on_commit=False) as s:
        tiers = b.tiers(s)
        m = b.member(s, 1, enrolled_at=T0 - timedelta(days=300), tier=tiers["silver"])
        b.tier_change(s, m, tiers["silver"], tiers["gold"], T0 - timedelta(hours=1))
        s.commit()
    adapter = MemoryAdapter()
    ticks(sqlite_engine, adapter, range(0, 16))
    assert [m.step for m in adapter.requests] == ["congrats", "nps", "email_benefits"]
    assert ledger(sqlite_engine, "recovery") == {}


@pytest.mark.slow  # several engine ticks with real templates
def test_survey_score_below_counts_only_answers_within_the_window(sqlite_engine: Engine, serve) -> None:  # type: ignore[no-untyped-def]
    """branch(survey_score_below(7, within=7 days)) ten days after the survey: an early low answer is too
    old, a recent one counts, a high one never does."""
    from journeys.conditions import survey_score_below
    from journeys.dsl import Journey, branch, email, send, wait
    from journeys.surveys import NPS, survey_links

    journey = Journey(
        name="nps_window", description="test", version=1, purpose="transactional", audience="tier_ups",
        audience_params={"within_days": 3}, occurrence_key="tier_change_id", schedule="30 * * * *",
        steps=[send(email("tier_up/email_nps"), key="nps"), wait(days=10),
               branch(survey_score_below(7, within=timedelta(days=7)),
                      then=[send(email("tier_up/email_recovery"), key="recovery")])],
        enrich=survey_links("nps_window", surveys={"nps": NPS}),
    )
    with Session(sqlite_engine, expire_on_commit=False) as s:
        tiers = b.tiers(s)
        for member_id in (1, 2, 3):
            m = b.member(s, member_id, enrolled_at=T0 - timedelta(days=300), tier=tiers["silver"])
            b.tier_change(s, m, tiers["silver"], tiers["gold"], T0 - timedelta(hours=1))
        s.commit()
    adapter = MemoryAdapter()
    services = services_for(adapter)
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    tick(factory, journey, T0, services)
    links = {m.recipient_id: score_links(m.content.html) for m in adapter.requests}
    clock = Clock(T0 + timedelta(days=1))
    client = serve(sqlite_engine, clock)
    client.get(path_of(links[1][2]))                          # day 1: low, but 9 days old at the branch
    clock.now = T0 + timedelta(days=5)
    client.get(path_of(links[2][4]))                          # day 5: low and recent
    client.get(path_of(links[3][9]))                          # high
    tick(factory, journey, T0 + timedelta(days=10, minutes=1), services)
    assert [m.recipient_id for m in adapter.requests if m.step == "recovery"] == [2]
    with Session(sqlite_engine) as s:
        assert {r.recipient_id for r in s.scalars(select(Send).where(Send.step_key == "recovery"))} == {2}

"""Survey and read links through the real `loyalflow serve` app: one tap records a score, a second tap
updates it (and says so), a comment needs the page's own form, tampered/foreign/expired links are
refused with a page and record nothing, and a read is recorded once."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from audiences.db import session_scope
from audiences.models import Member
from channels.survey_models import BulletinRead, SurveyAnswer
from channels.surveys import (
    READ,
    SURVEY,
    InvalidSurveyLink,
    LinkClaim,
    make_token,
    parse_reply,
    read_token,
)
from tests.channels.people import add_members, add_staff
from tests.feedback.conftest import NOW, SECRET, Clock

NPS_CLAIM = LinkClaim(SURVEY, 501, "member", 1, "tier_up", "nps", 0, 10)
READ_CLAIM = LinkClaim(READ, 601, "staff", 7, "staff_bulletin", "email_weekly")


@pytest.fixture()
def people(engine: Engine) -> Engine:
    with session_scope(engine) as s:
        add_members(s, 2)
        s.get(Member, 1).locale = "fr-CA"  # type: ignore[union-attr]
        add_staff(s, 7)
    return engine


def answers(engine: Engine) -> list[SurveyAnswer]:
    with session_scope(engine) as s:
        rows = s.scalars(select(SurveyAnswer).order_by(SurveyAnswer.ledger_id)).all()
        s.expunge_all()
        return list(rows)


def count(engine: Engine, model: type) -> int:
    with session_scope(engine) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_one_tap_records_and_a_second_tap_updates_the_same_answer(people: Engine, serve) -> None:  # type: ignore[no-untyped-def]
    clock = Clock(NOW)
    client = serve(people, clock)
    token = make_token(SECRET, NPS_CLAIM, NOW)

    page = client.get(f"/survey/{token}/3")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert 'lang="fr-CA"' in page.text and "Merci" in page.text  # the member's language
    [first] = answers(people)
    assert (first.ledger_id, first.recipient_kind, first.recipient_id, first.journey, first.step) == \
        (501, "member", 1, "tier_up", "nps")
    assert (first.score, first.channel, first.revisions, first.previous_score) == (3, "web", 0, None)

    clock.now = NOW + timedelta(minutes=5)
    assert client.get(f"/survey/{token}/3").status_code == 200  # the same tap again (a reload): no change
    assert answers(people)[0].revisions == 0
    assert client.get(f"/survey/{token}/8").status_code == 200
    [again] = answers(people)
    assert (again.score, again.previous_score, again.revisions) == (8, 3, 1)
    assert again.first_answered_at == NOW and again.answered_at == NOW + timedelta(minutes=5)
    assert client.head(f"/survey/{token}/0").status_code == 200  # scanners' HEAD shows, never records
    assert answers(people)[0].score == 8


def test_the_comment_form_needs_this_links_form_token_and_our_site(people: Engine, serve) -> None:  # type: ignore[no-untyped-def]
    client = serve(people, Clock(NOW))
    token = make_token(SECRET, NPS_CLAIM, NOW)
    page = client.get(f"/survey/{token}/9")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]

    other = make_token(SECRET, LinkClaim(SURVEY, 502, "member", 2, "tier_up", "nps", 0, 10), NOW)
    refused = client.post(f"/survey/{other}/9", data={"csrf": csrf, "comment": "forged"})
    assert refused.status_code == 403
    cross_site = client.post(f"/survey/{token}/9", data={"csrf": csrf, "comment": "x"},
                             headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 403
    assert answers(people)[0].comment is None

    saved = client.post(f"/survey/{token}/9", data={"csrf": csrf, "comment": "Friendly staff\x07 <b>"})
    assert saved.status_code == 200 and "&lt;b&gt;" in saved.text and "<b>" not in saved.text.split("<textarea")[1]
    [answer] = answers(people)
    assert (answer.score, answer.comment, answer.revisions) == (9, "Friendly staff <b>", 1)


@pytest.mark.parametrize("mangle", ["payload", "signature", "other_key", "truncated", "garbage"])
def test_tampered_links_are_refused_with_a_page_and_record_nothing(people: Engine, serve, mangle: str) -> None:  # type: ignore[no-untyped-def]
    client = serve(people, Clock(NOW))
    token = make_token(SECRET, NPS_CLAIM, NOW)
    payload, signature = token.split(".")
    bad = {
        "payload": make_token(SECRET, LinkClaim(SURVEY, 999, "member", 2, "tier_up", "nps", 0, 10), NOW).split(".")[0]
        + "." + signature,
        "signature": payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:],
        "other_key": make_token("another-secret", NPS_CLAIM, NOW),
        "truncated": token[:-3],
        "garbage": "not-a-token",
    }[mangle]
    for path in (f"/survey/{bad}/5", f"/survey/{bad}", f"/read/{bad}"):
        refused = client.get(path)
        assert refused.status_code == 403, path
        assert "This link cannot be used" in refused.text and "not valid" in refused.text
    assert count(people, SurveyAnswer) == 0 and count(people, BulletinRead) == 0


def test_expired_links_out_of_scale_scores_and_the_wrong_kind_of_link_are_refused(people: Engine, serve) -> None:  # type: ignore[no-untyped-def]
    client = serve(people, Clock(NOW))
    old = make_token(SECRET, NPS_CLAIM, NOW - timedelta(days=91))
    expired = client.get(f"/survey/{old}/5")
    assert expired.status_code == 403 and "expired" in expired.text
    token = make_token(SECRET, NPS_CLAIM, NOW)
    assert client.get(f"/survey/{token}/11").status_code == 400
    assert client.get(f"/survey/{token}/-1").status_code == 400
    pulse = make_token(SECRET, LinkClaim(SURVEY, 700, "staff", 7, "staff_bulletin", "email_weekly", 1, 5), NOW)
    assert client.get(f"/survey/{pulse}/0").status_code == 400  # a 1-5 pulse has no 0
    assert client.get(f"/read/{token}").status_code == 403  # a survey token is not a read link
    assert client.get(f"/survey/{make_token(SECRET, READ_CLAIM, NOW)}/1").status_code == 403
    assert count(people, SurveyAnswer) == 0 and count(people, BulletinRead) == 0
    with pytest.raises(InvalidSurveyLink):
        read_token(SECRET, old, NOW)


def test_the_scale_page_links_every_score(people: Engine, serve) -> None:  # type: ignore[no-untyped-def]
    client = serve(people, Clock(NOW))
    token = make_token(SECRET, LinkClaim(SURVEY, 700, "staff", 7, "staff_bulletin", "email_weekly", 1, 5), NOW)
    page = client.get(f"/survey/{token}")
    assert page.status_code == 200 and "How useful was this bulletin?" in page.text
    assert re.findall(rf'href="/survey/{re.escape(token)}/(\d+)"', page.text) == ["1", "2", "3", "4", "5"]
    assert count(people, SurveyAnswer) == 0


def test_a_read_is_recorded_once_per_message(people: Engine, serve) -> None:  # type: ignore[no-untyped-def]
    clock = Clock(NOW)
    client = serve(people, clock)
    token = make_token(SECRET, READ_CLAIM, NOW)
    assert client.head(f"/read/{token}").status_code == 200
    assert count(people, BulletinRead) == 0
    assert "Thanks for reading" in client.get(f"/read/{token}").text
    clock.now = NOW + timedelta(hours=3)
    assert client.get(f"/read/{token}").status_code == 200
    with session_scope(people) as s:
        [read] = s.scalars(select(BulletinRead)).all()
        assert (read.ledger_id, read.staff_id, read.read_at) == (601, 7, NOW)


def test_sms_reply_parsing() -> None:
    assert parse_reply("8") == (8, None)
    assert parse_reply(" 10 ") == (10, None)
    assert parse_reply("9/10") == (9, None)
    assert parse_reply("7. slow checkout") == (7, "slow checkout")
    assert parse_reply("0 - never again") == (0, "never again")
    for body in ("STOP", "yes", "", "8am tomorrow", "123", "call me"):
        assert parse_reply(body) is None, body

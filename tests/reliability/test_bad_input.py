"""Bad input: malformed member data, broken templates and journeys, and a consent CSV with bad
rows. Each gets a clear error naming the place (member id on the ledger row, file:line for
templates and journeys, CSV line) and nothing is wrongly sent."""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from audiences.models import Member
from channels.consent import current_consent, import_consent_csv, record_consent
from channels.policy import ConsentState
from journeys.check import check_journeys
from journeys.engine import tick
from journeys.models import Send, SendStatus
from journeys.registry import get_journey
from journeys.services import default_services
from templates import TemplateLibrary
from templates.checks import check_templates
from tests.journeys.recording import RecordingAdapter
from tests.reliability.support import NOW, populate

LIBRARY = Path(TemplateLibrary.load().root)

# member id -> (changes, expected outcome of the welcome email, of the day-7 SMS)
MEMBERS: dict[int, tuple[dict[str, object], str, str]] = {
    1: ({}, "sent", "sent"),
    2: ({"email": "not-an-email", "phone": "12345"}, "invalid_contact", "invalid_contact"),
    3: ({"email": "a@@example.com", "phone": "call me"}, "invalid_contact", "invalid_contact"),
    4: ({"email": None, "phone": None}, "no_contact", "no_contact"),
    5: ({"email": "x@localhost", "phone": "+33123456789"}, "invalid_contact", "invalid_contact"),  # no TLD; landline
    6: ({"time_zone": "Mars/Olympus"}, "invalid_time_zone", "invalid_time_zone"),
    7: ({"locale": "xx-INVALID"}, "sent", "sent"),  # falls back to the default locale
    8: ({"locale": "../../etc/passwd"}, "sent", "sent"),
    9: ({"first_name": None, "last_name": None}, "sent", "sent"),
    10: ({"first_name": "<script>alert(1)</script><b>Bo</b>"}, "sent", "sent"),
    11: ({"first_name": "Zoë 😀🎉"}, "sent", "sent"),
    12: ({"first_name": "مريم \u202eevil"}, "sent", "sent"),
    13: ({"first_name": "N" * 200}, "sent", "sent"),  # the longest name the column holds
    14: ({"first_name": "😀" * 150}, "sent", "sms_segment_budget"),  # over the SMS's 3-segment budget
}


def _prepare(engine: Engine) -> None:
    populate(engine, len(MEMBERS))
    with Session(engine) as s:
        for member_id, (changes, _, _) in MEMBERS.items():
            member = s.get(Member, member_id)
            member.phone = "+12015550123"
            for name, value in changes.items():
                setattr(member, name, value)
            record_consent(s, recipient_kind="member", recipient_id=member_id, channel="sms", purpose="marketing",
                           action="opt_in", source="test", occurred_at=NOW - timedelta(days=30))
        s.commit()


def _outcomes(engine: Engine, step: str) -> dict[int, str]:
    with Session(engine) as s:
        rows = s.execute(select(Send.recipient_id, Send.status, Send.reason).where(Send.step_key == step)).all()
    return {rid: "sent" if status == SendStatus.sent else str(reason) for rid, status, reason in rows}


def test_malformed_member_data_is_skipped_with_a_reason_and_never_sent(sqlite_engine: Engine,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    _prepare(sqlite_engine)
    email, sms = RecordingAdapter(), RecordingAdapter()
    services = default_services(adapters={"email": email, "sms": sms, "push": RecordingAdapter()})
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    journey = get_journey("welcome")
    with caplog.at_level(logging.DEBUG):
        tick(factory, journey, NOW, services)
        tick(factory, journey, NOW + timedelta(days=8), services)  # past both waits: the tips SMS
        # a late pass moves a wait's `at` to its next local wall time (12:00 in each member's zone, UTC
        # for the unusable one), so the SMS goes on the pass after that
        tick(factory, journey, NOW + timedelta(days=9, hours=3), services)
    steps = sorted({k for k in _step_keys(sqlite_engine)})
    email_step, sms_step = steps[0], steps[-1]
    assert _outcomes(sqlite_engine, email_step) == {i: e for i, (_, e, _) in MEMBERS.items()}
    assert _outcomes(sqlite_engine, sms_step) == {i: s for i, (_, _, s) in MEMBERS.items()}
    # nothing went to an address that was refused, and each sent message went once
    assert sorted(m.recipient_id for m in email.messages) == [i for i, (_, e, _) in MEMBERS.items() if e == "sent"]
    assert sorted(m.recipient_id for m in sms.messages) == [i for i, (_, _, s) in MEMBERS.items() if s == "sent"]
    html = {m.recipient_id: m.content.html for m in email.messages}
    assert "<script>" not in html[10] and "&lt;script&gt;alert(1)&lt;/script&gt;" in html[10]
    assert "Zoë 😀🎉" in html[11] and "مريم" in html[12] and "N" * 200 in html[13]
    texts = {m.recipient_id: m.content.text for m in sms.messages}
    assert "Zoë 😀🎉" in texts[11]
    # the failed render is logged by ledger row and template place, never with the name in it
    assert any("sms_tips" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert not any("😀😀" in r.getMessage() for r in caplog.records)


def _step_keys(engine: Engine) -> list[str]:
    with Session(engine) as s:
        return list(s.scalars(select(Send.step_key).distinct().order_by(Send.id)))


def _copy_library(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    shutil.copytree(LIBRARY, root)
    return root


def test_broken_templates_are_reported_at_file_and_line(tmp_path: Path) -> None:
    root = _copy_library(tmp_path)
    welcome = root / "welcome" / "email_welcome.en.mjml"
    text = welcome.read_text(encoding="utf-8")
    welcome.write_text(text.replace("{{ program.name }} on", "{{ program.name } on", 1), encoding="utf-8")
    sms = root / "welcome" / "sms_tips.en.sms.txt"
    sms.write_text(sms.read_text(encoding="utf-8").replace("{{ links.app_url }}", "{{ no_such_variable }}"),
                   encoding="utf-8")
    tier = next((root / "tier_up").glob("email_*.en.mjml"))
    tier.write_text(tier.read_text(encoding="utf-8").replace("<mj-column>", "<mj-colum>", 1), encoding="utf-8")
    problems = check_templates(root)
    where = {(Path(str(p.path)).name, p.line) for p in problems}
    text_of = " | ".join(str(p) for p in problems)
    syntax_line = text.splitlines().index(next(l for l in text.splitlines() if "{{ program.name }} on" in l)) + 1
    assert ("email_welcome.en.mjml", syntax_line) in where, text_of
    assert any(Path(str(p.path)).name == "sms_tips.en.sms.txt" and "no_such_variable" in p.message for p in problems), text_of
    assert any(Path(str(p.path)).name == tier.name and p.line for p in problems), text_of
    assert all(p.line for p in problems if Path(str(p.path)).name in {"email_welcome.en.mjml", tier.name}), text_of


def test_a_template_missing_a_variable_fails_its_sends_with_a_reason_and_sends_nothing(
        sqlite_engine: Engine, tmp_path: Path) -> None:
    root = _copy_library(tmp_path)
    for path in (root / "welcome").glob("email_welcome.*.mjml"):
        path.write_text(path.read_text(encoding="utf-8").replace("{{ program.name }} on", "{{ program.nope }} on"),
                        encoding="utf-8")
    populate(sqlite_engine, 20)
    email = RecordingAdapter()
    services = default_services(adapters={"email": email})
    services.renderer = TemplateLibrary.load(root)
    stats = tick(sessionmaker(sqlite_engine, expire_on_commit=False), get_journey("welcome"), NOW, services)
    assert email.messages == []
    assert stats.failed == Counter({"render_error": 20})
    with Session(sqlite_engine) as s:
        assert s.scalar(select(func.count()).select_from(Send).where(Send.reason == "render_error")) == 20


def test_bad_cron_and_unknown_channel_name_the_journey_file_and_line(tmp_path: Path) -> None:
    header = "from journeys.dsl import *\n"
    (tmp_path / "cron.py").write_text(header + 'JOURNEY = Journey(name="r_cron", description="", version=1,\n'
                                      '    purpose="transactional", audience="new_members", schedule="every day",\n'
                                      '    steps=[send(email("welcome/email_welcome"))])\n', encoding="utf-8")
    (tmp_path / "channel.py").write_text(header + 'JOURNEY = Journey(name="r_channel", description="", version=1,\n'
                                         '    purpose="transactional", audience="new_members", steps=[\n'
                                         '        send(Message("pigeon", "welcome/email_welcome")),\n'
                                         '    ])\n', encoding="utf-8")
    problems = {(Path(p.path).name, p.line, p.message) for p in check_journeys(sorted(tmp_path.glob("*.py")))}
    assert any(n == "cron.py" and line == 2 and "'every day' is not a valid cron" in m for n, line, m in problems), problems
    assert any(n == "channel.py" and line == 4 and "unknown channel 'pigeon'" in m for n, line, m in problems), problems


CSV_HEADER = "recipient_kind,recipient_id,channel,purpose,action,source,occurred_at,evidence\n"


def test_consent_csv_keeps_good_rows_and_reports_each_bad_one(engine: Engine, tmp_path: Path) -> None:
    populate(engine, 3)
    path = tmp_path / "consent.csv"
    path.write_text(CSV_HEADER +
                    "member,1,email,marketing,opt_in,form,2026-01-02T10:00:00Z,<script>x</script> 😀\n"  # 2 good
                    "member,,email,marketing,opt_in,,2026-01-02T10:00:00Z,\n"  # 3 NULL id
                    "member,2,EMAIL,Marketing,OPT-OUT,,2026-01-02T10:00:00+01:00,\n"  # 4 good, any case
                    "robot,2,email,marketing,opt_in,,2026-01-02T10:00:00Z,\n"  # 5 kind
                    "member,3,email,marketing,opt_in,,,\n"  # 6 no time
                    "member,3,email,marketing,opt_in,,2026-13-45T10:00:00Z,\n"  # 7 bad date
                    "member,3,email,marketing,opt_in,,2026-01-02T10:00:00Z,x,extra\n"  # 8 extra field
                    "member,3,sms,marketing,opt_in,,2026-01-02T10:00:00Z,\n",  # 9 good
                    encoding="utf-8")
    with Session(engine) as s:
        report = import_consent_csv(s, path)
        s.commit()
    assert report.imported == 3
    assert [e.line for e in report.errors] == [3, 5, 6, 7, 8]
    assert all(e.message for e in report.errors)
    with Session(engine) as s:
        assert current_consent(s, "member", [1], "email", "marketing")[1] is ConsentState.opted_in
        assert current_consent(s, "member", [2], "email", "marketing")[2] is ConsentState.opted_out
        assert current_consent(s, "member", [3], "email", "marketing")[3] is ConsentState.unknown


def test_consent_csv_with_an_out_of_range_id_reports_the_row(engine: Engine, tmp_path: Path) -> None:
    populate(engine, 1)
    path = tmp_path / "consent.csv"
    path.write_text(CSV_HEADER + "member,1,email,marketing,opt_in,,2026-01-02T10:00:00Z,\n"
                    "member,99999999999999999999999,email,marketing,opt_in,,2026-01-02T10:00:00Z,\n", encoding="utf-8")
    with Session(engine) as s:
        report = import_consent_csv(s, path)
    assert report.imported == 1 and [e.line for e in report.errors] == [3]


def test_a_future_dated_consent_row_cannot_outrank_a_later_opt_out(sqlite_engine: Engine, tmp_path: Path) -> None:
    populate(sqlite_engine, 1)
    path = tmp_path / "consent.csv"
    path.write_text(CSV_HEADER + "member,1,sms,marketing,opt_in,,2099-01-01T00:00:00Z,\n", encoding="utf-8")
    with Session(sqlite_engine) as s:
        import_consent_csv(s, path)
        record_consent(s, recipient_kind="member", recipient_id=1, channel="sms", purpose="marketing",
                       action="opt_out", source="twilio_stop", occurred_at=NOW)  # the member replies STOP
        s.commit()
        assert current_consent(s, "member", [1], "sms", "marketing")[1] is ConsentState.opted_out

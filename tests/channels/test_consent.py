"""Consent history, current state, suppression and CSV import, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from channels.consent import current_consent, import_consent_csv, record_consent, suppress, suppressed_addresses
from channels.errors import ConsentImportError
from channels.models import ConsentEvent
from channels.policy import ConsentState
from tests.channels.people import T0, add_members, add_staff


def test_latest_event_wins_per_person_channel_and_purpose(any_session: Session) -> None:
    ids = add_members(any_session, 4)
    common = {"recipient_kind": "member", "source": "test", "purpose": "marketing"}
    record_consent(any_session, recipient_id=1, channel="email", action="opt_in", occurred_at=T0, **common)
    record_consent(any_session, recipient_id=2, channel="email", action="opt_in", occurred_at=T0, **common)
    record_consent(any_session, recipient_id=2, channel="email", action="opt_out", occurred_at=T0 + timedelta(days=1), **common)
    # an older event recorded later does not override the newer one
    record_consent(any_session, recipient_id=3, channel="email", action="opt_out", occurred_at=T0 + timedelta(days=2), **common)
    record_consent(any_session, recipient_id=3, channel="email", action="opt_in", occurred_at=T0, **common)
    record_consent(any_session, recipient_id=4, channel="sms", action="opt_in", occurred_at=T0, **common)

    states = current_consent(any_session, "member", ids, "email", "marketing")
    assert states == {
        1: ConsentState.opted_in,
        2: ConsentState.opted_out,
        3: ConsentState.opted_out,
        4: ConsentState.unknown,  # opted in for SMS, not email
    }
    assert current_consent(any_session, "member", [4], "sms", "marketing") == {4: ConsentState.opted_in}
    assert current_consent(any_session, "member", [1], "email", "transactional") == {1: ConsentState.unknown}
    assert current_consent(any_session, "staff", [1], "email", "marketing") == {1: ConsentState.unknown}
    # history is kept: nothing was overwritten
    assert any_session.scalar(select(func.count()).select_from(ConsentEvent)) == 6


def test_suppression_is_unique_and_matched_on_normalised_address(any_session: Session) -> None:
    assert suppress(any_session, channel="email", address="Ana@Example.com", reason="hard_bounce", source="sendgrid", at=T0)
    assert not suppress(any_session, channel="email", address="ana@example.com", reason="spam_complaint", source="x", at=T0)
    assert suppress(any_session, channel="sms", address="+1 201-555-0123", reason="stop", source="twilio", at=T0)
    found = suppressed_addresses(any_session, "email", ["ANA@example.com", "bob@example.com"])
    assert found == {"ANA@example.com"}
    assert suppressed_addresses(any_session, "sms", ["+12015550123", "+12015550124"]) == {"+12015550123"}
    assert suppressed_addresses(any_session, "push", ["+12015550123"]) == set()


def test_csv_import_keeps_good_rows_and_reports_bad_ones_by_line(session: Session, tmp_path: Path) -> None:
    add_members(session, 3)
    add_staff(session, 7)
    path = tmp_path / "consent.csv"
    path.write_text(
        "recipient_kind,recipient_id,channel,purpose,action,source,occurred_at,evidence\n"
        "member,1,email,marketing,opt_in,signup_form,2026-01-02T10:00:00+00:00,form v3 ip 203.0.113.9\n"
        "member,2,sms,marketing,opt-in,,2026-01-02T10:00:00Z,\n"
        "member,x,email,marketing,opt_in,,2026-01-02T10:00:00Z,\n"
        "member,3,fax,marketing,opt_in,,2026-01-02T10:00:00Z,\n"
        "member,3,email,marketing,maybe,,2026-01-02T10:00:00Z,\n"
        "member,3,email,marketing,opt_in,,2026-01-02 10:00,\n"
        "member,99,email,marketing,opt_in,,2026-01-02T10:00:00Z,\n"
        "staff,7,email,staff,opt_out,,2026-01-02T10:00:00Z,\n",
        encoding="utf-8",
    )
    report = import_consent_csv(session, path)
    assert report.imported == 3
    assert [(e.line, e.message.split(" ")[0]) for e in report.errors] == [
        (4, "recipient_id"), (5, "channel"), (6, "action"), (7, "occurred_at"), (8, "no"),
    ]
    assert "no member with id 99" in report.errors[-1].message
    assert current_consent(session, "member", [1, 2, 3], "email", "marketing")[1] is ConsentState.opted_in
    assert current_consent(session, "member", [2], "sms", "marketing")[2] is ConsentState.opted_in
    assert current_consent(session, "staff", [7], "email", "staff")[7] is ConsentState.opted_out
    evidence = session.scalars(select(ConsentEvent.evidence).order_by(ConsentEvent.id)).all()
    assert evidence == ["form v3 ip 203.0.113.9", "consent.csv:3", "consent.csv:9"]


def test_csv_without_required_columns_or_file_is_refused_and_changes_nothing(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("recipient_id,channel\n1,email\n", encoding="utf-8")
    with pytest.raises(ConsentImportError, match=r"bad.csv:1: missing columns purpose, action, occurred_at"):
        import_consent_csv(session, path)
    with pytest.raises(ConsentImportError, match="cannot read consent file"):
        import_consent_csv(session, tmp_path / "missing.csv")
    assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 0

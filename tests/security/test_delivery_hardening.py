"""Member data on its way into mail: one recipient's bad data is that recipient's problem only.

Through the engine and the outbox adapter (the default delivery), as `loyalflow run` sends:
- a first name with \\x1c/\\x1d/\\x1e (the "line separators" str.splitlines folds on) or a NUL is
  cleaned: the subject and preheader stay what the template says, no control character reaches a
  header, and the rest of the batch goes;
- an international address gets its domain in IDNA, a UTF-8 local part is written SMTPUTF8
  (RFC 6532), a malformed one fails that recipient with `invalid_contact`;
- the .eml Date is the engine's (simulated) instant, not the wall clock;
- and no name or address reaches an exception message or the log.
Each of these failed on the tree before this change (the batch ended, every row `outcome_unknown`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from audiences.models import Member, Tier
from channels.adapters.outbox import OutboxAdapter
from channels.settings import ChannelSettings
from journeys.engine import tick
from journeys.models import Send, SendStatus
from journeys.registry import get_journey
from journeys.services import services_for

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc)  # 10:00 in New York
NAMES = {
    1: "Ana\x1cMaria",
    2: "Bo\x1d",
    3: "Cy\x1eSubject: pwned\x1epre",
    4: "Di\x00na",
    5: "Émile",
    6: "Fay\r\nBcc: attacker@evil.example",
}
ADDRESSES = {5: "émile@bücher.example", 7: "josé@example.com", 8: "not an address@example.com"}


def _members(engine: Engine) -> None:
    with Session(engine) as s:
        s.add(Tier(id=1, code="bronze", name="Bronze", rank=1, threshold_spend=0, benefits=[]))
        s.flush()
        for i in range(1, 10):
            s.add(Member(id=i, first_name=NAMES.get(i, f"Name{i}"), last_name="Test",
                         email=ADDRESSES.get(i, f"m{i}@example.com"), phone=None, locale="en-US",
                         time_zone="America/New_York", country="US", enrolled_at=NOW.replace(hour=14), tier_id=1))
        s.commit()


@pytest.fixture
def outbox_run(sqlite_engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> tuple[Path, dict[int, tuple[str, str | None]]]:
    _members(sqlite_engine)
    settings = ChannelSettings(_env_file=None, delivery_mode="outbox", outbox_dir=tmp_path / "outbox",  # type: ignore[call-arg]
                               unsubscribe_secret=SecretStr("hardening-secret"))
    adapter = OutboxAdapter(settings)  # the wall clock: the Date must not come from it
    with caplog.at_level(logging.DEBUG):
        tick(sessionmaker(sqlite_engine, expire_on_commit=False), get_journey("welcome"), NOW,
             services_for(adapter))
    with Session(sqlite_engine) as s:
        rows = {rid: (SendStatus(st).value, reason) for rid, st, reason in s.execute(
            select(Send.recipient_id, Send.status, Send.reason).where(Send.template == "welcome/email_welcome"))}
    return tmp_path / "outbox" / "email", rows


def test_one_member_s_control_characters_do_not_end_the_batch_or_rewrite_headers(outbox_run) -> None:  # type: ignore[no-untyped-def]
    folder, rows = outbox_run
    assert {rid for rid, (st, _) in rows.items() if st == "sent"} == {1, 2, 3, 4, 5, 6, 7, 9}
    assert rows[8][1] == "invalid_contact" and rows[8][0] in ("skipped", "failed")  # that recipient only
    for path in folder.glob("*.eml"):
        raw = path.read_bytes()
        head = raw.split(b"\n\n", 1)[0]
        assert not any(b in head for b in (b"\x00", b"\x1c", b"\x1d", b"\x1e")), path.name
        parsed = message_from_bytes(raw, policy=policy.default)
        subject = str(parsed["Subject"])
        assert subject.startswith("Welcome to Loyalflow Rewards, ") and subject.endswith("!"), subject
        assert "pwned" not in str(parsed.get("Subject-Extra", "")) and parsed["Bcc"] is None
        assert parsed["Date"] == "Mon, 23 Nov 2026 15:00:00 +0000", "the Date must be the engine's instant"
    subjects = {str(message_from_bytes(p.read_bytes(), policy=policy.default)["Subject"]) for p in folder.glob("*.eml")}
    assert "Welcome to Loyalflow Rewards, AnaMaria!" in subjects
    assert "Welcome to Loyalflow Rewards, CySubject: pwnedpre!" in subjects  # text, not a header
    assert "Welcome to Loyalflow Rewards, Fay Bcc: attacker@evil.example!" in subjects
    assert "Welcome to Loyalflow Rewards, Dina!" in subjects


def test_international_addresses_are_encoded_not_broken(outbox_run) -> None:  # type: ignore[no-untyped-def]
    folder, rows = outbox_run
    to = set()
    for path in folder.glob("*.eml"):
        raw = path.read_bytes()
        parsed = message_from_bytes(raw, policy=policy.SMTPUTF8)
        to.add(str(parsed["To"]))
    assert "émile@xn--bcher-kva.example" in to  # IDNA domain; the local part as written (SMTPUTF8)
    assert "josé@example.com" in to
    assert "Welcome to Loyalflow Rewards, Émile!" in {
        str(message_from_bytes(p.read_bytes(), policy=policy.default)["Subject"]) for p in folder.glob("*.eml")}


def test_no_member_data_in_the_log(outbox_run, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    text = caplog.text
    for needle in ("not an address", "josé", "bücher", "attacker@evil", "Ana", "pwned"):
        assert needle not in text, needle

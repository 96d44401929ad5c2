"""The outbox adapter: files a person can open, safe under concurrent writers."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from email import message_from_bytes, policy
from pathlib import Path

from channels.adapters.base import DeliveryStatus
from channels.adapters.outbox import OutboxAdapter
from channels.settings import ChannelSettings
from tests.channels.messages import email, push, sms

FIXED = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def outbox(settings: ChannelSettings) -> OutboxAdapter:
    return OutboxAdapter(settings, clock=lambda: FIXED)


def test_marketing_email_is_a_real_eml_with_both_parts_and_one_click_unsubscribe(settings: ChannelSettings) -> None:
    results = outbox(settings).send([email(42), email(43, purpose="transactional")])
    assert [r.status for r in results] == [DeliveryStatus.accepted] * 2
    path = Path(settings.outbox_dir) / "email" / "000000000042.eml"
    parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert parsed["To"] == "ana@example.com"
    assert parsed["Subject"] == "We miss you, Ana"
    assert parsed["From"] == "Loyalflow Rewards <rewards@loyalflow.example>"
    assert parsed["Date"] == "Mon, 23 Nov 2026 12:00:00 +0000"
    assert parsed["List-Unsubscribe"] == "<https://loyalflow.test/u/tok42>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["X-Loyalflow-Ledger-Id"] == "42" and parsed["X-Loyalflow-Journey"] == "win_back"
    assert results[0].provider_message_id == parsed["Message-ID"].strip().strip("<>")
    assert parsed.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p.get_content() for p in parsed.iter_parts()}
    assert parts["text/plain"].strip() == "Hello Ana"
    assert "<p>Hello Ana</p>" in parts["text/html"]

    transactional = message_from_bytes((Path(settings.outbox_dir) / "email" / "000000000043.eml").read_bytes(), policy=policy.default)
    assert transactional["List-Unsubscribe"] is None and transactional["List-Unsubscribe-Post"] is None


def test_same_ledger_id_twice_leaves_one_file(settings: ChannelSettings) -> None:
    adapter = outbox(settings)
    adapter.send([email(7)])
    adapter.send([email(7)])
    assert [p.name for p in (Path(settings.outbox_dir) / "email").iterdir()] == ["000000000007.eml"]


def test_sms_and_push_are_json_lines(settings: ChannelSettings) -> None:
    outbox(settings).send([sms(1), push(2)])
    [line] = (Path(settings.outbox_dir) / "sms.jsonl").read_text().splitlines()
    assert json.loads(line) == {
        "ledger_id": 1, "at": "2026-11-23T12:00:00+00:00", "to": "+12015550123", "journey": "win_back",
        "step": "sms_offer", "purpose": "marketing", "from": None,
        "text": "Loyalflow: 20% off this week. Reply STOP to opt out.", "encoding": "GSM-7", "segments": 1,
    }
    [line] = (Path(settings.outbox_dir) / "push.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert (record["title"], record["deep_link"], record["data"]) == ("Points expire tomorrow", "loyalflow://points", {"points": "120"})


def _write_many(outbox_dir: str, start: int) -> None:
    adapter = OutboxAdapter(ChannelSettings(outbox_dir=Path(outbox_dir)), clock=lambda: FIXED)
    for i in range(start, start + 100):
        adapter.send([sms(i, to="+1201555" + f"{i:04d}")])


def test_concurrent_writers_never_interleave_lines(settings: ChannelSettings) -> None:
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda s: _write_many(str(settings.outbox_dir), s), [0, 100, 200, 300]))
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_write_many, args=(str(settings.outbox_dir), s)) for s in (400, 500)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    lines = (Path(settings.outbox_dir) / "sms.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["ledger_id"] for line in lines) == list(range(600))


def test_one_bad_message_fails_alone_with_its_reason_and_the_date_is_the_engine_s(settings: ChannelSettings) -> None:
    sent_at = datetime(2027, 3, 1, 9, 30, tzinfo=timezone.utc)  # a simulated instant, not the wall clock
    bad_subject = dataclasses.replace(email(2).content, subject="Hi Ana\x1e\x00\r\nBcc: x@evil.example")
    batch = [
        dataclasses.replace(email(1), created_at=sent_at),
        dataclasses.replace(email(2), content=bad_subject),
        email(3, to="ana maria@example.com"),
        dataclasses.replace(email(4), content=sms(4).content),
        email(5, to="zoë@例え.jp"),
    ]
    results = OutboxAdapter(settings).send(batch)
    assert [(r.ledger_id, r.status.value, r.error_code) for r in results] == [
        (1, "accepted", None), (2, "accepted", None), (3, "permanent", "invalid_contact"),
        (4, "permanent", "wrong_content"), (5, "accepted", None)]
    folder = Path(settings.outbox_dir) / "email"
    first = message_from_bytes((folder / "000000000001.eml").read_bytes(), policy=policy.default)
    assert first["Date"] == "Mon, 01 Mar 2027 09:30:00 +0000"
    second = message_from_bytes((folder / "000000000002.eml").read_bytes(), policy=policy.default)
    assert second["Subject"] == "Hi Ana Bcc: x@evil.example" and second["Bcc"] is None
    fifth = message_from_bytes((folder / "000000000005.eml").read_bytes(), policy=policy.SMTPUTF8)
    assert fifth["To"] == "zoë@xn--r8jz45g.jp"
    assert sorted(p.name for p in folder.iterdir()) == ["000000000001.eml", "000000000002.eml", "000000000005.eml"]


def test_the_written_eml_is_the_message_build_email_describes(settings: ChannelSettings) -> None:
    """The .eml is written without the email package's re-folding; a mail reader sees the same message."""
    adapter = outbox(settings)
    subjects = ["We miss you, Ana", "Zoë, 20 % de réduction 🎉 — جديد", "A long ASCII subject " * 6]
    for n, subject in enumerate(subjects, start=1):
        base = email(100 + n)
        message = dataclasses.replace(base, content=dataclasses.replace(base.content, subject=subject,
                                                                        text="Hallo Zoë\n" * 40,
                                                                        html="<p>Zoë</p>" * 200))
        fast, message_id = adapter.email_bytes(message)
        slow = adapter.build_email(message).as_bytes()
        a, b = (message_from_bytes(x, policy=policy.default) for x in (fast, slow))
        assert max(len(line) for line in fast.split(b"\n")) <= 998  # RFC 5322's hard limit
        assert all(len(line) <= 78 for line in fast.split(b"\n") if line.startswith((b"Subject:", b" =?")))
        for name in ("From", "To", "Subject", "Date", "List-Unsubscribe", "List-Unsubscribe-Post",
                     "X-Loyalflow-Ledger-Id", "X-Loyalflow-Journey", "X-Loyalflow-Step", "X-Loyalflow-Purpose",
                     "X-Loyalflow-Categories", "MIME-Version"):
            assert a[name] == b[name], name
        assert a["Subject"] == subject.strip() and a["Message-ID"].strip("<>") == message_id
        assert a.get_content_type() == b.get_content_type() == "multipart/alternative"
        assert [(p.get_content_type(), p.get_content()) for p in a.iter_parts()] == \
            [(p.get_content_type(), p.get_content()) for p in b.iter_parts()]


def test_a_non_ascii_header_value_takes_the_long_way_and_still_goes(settings: ChannelSettings) -> None:
    message = dataclasses.replace(email(201), step="rappel_été")
    data, _ = outbox(settings).email_bytes(message)
    parsed = message_from_bytes(data, policy=policy.default)
    assert parsed["X-Loyalflow-Step"] == "rappel_été" and parsed["Subject"] == "We miss you, Ana"

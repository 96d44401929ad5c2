"""Consent CSV import: hostile lines (bytes that are not UTF-8, dates out of range, NUL, ids that
Python's int() would bend into other members) are refused by line and the good rows kept; a
duplicated header column refuses the file; the file is streamed, never held whole."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audiences.models import Member
from channels.consent import current_consent, import_consent_csv
from channels.errors import ConsentImportError
from channels.models import ConsentEvent
from channels.policy import ConsentState
from tests.security.people import NOW, add_member

HEADER = b"recipient_id,channel,purpose,action,occurred_at\n"


def test_hostile_lines_are_reported_by_line_and_the_good_rows_kept(any_session: Session, tmp_path: Path) -> None:
    for member_id in (1, 2, 6, 7, 10):
        add_member(any_session, member_id)
    rows = [
        b"1,email,marketing,opt_in,2026-01-02T10:00:00Z",        # 2 good
        b"2,email,marketing,opt_in\xe9,2026-01-02T10:00:00Z",     # 3 a Latin-1 byte
        b"2,sms,marketing,opt_in,0001-01-01T00:00:00+05:00",     # 4 year 1, east of UTC: overflows
        b"2,sms,marketing,opt_in,0001-01-01T00:00:00Z",          # 5 year 1
        b"2,push,marketing,opt_in,2026-01-02T10:00:00Z\x00",     # 6 NUL (PostgreSQL refuses it in text)
        b"1_0,email,marketing,opt_in,2026-01-02T10:00:00Z",      # 7 int() would read member 10
        "\u0666,email,marketing,opt_in,2026-01-02T10:00:00Z".encode(),  # 8 Arabic-Indic six: member 6
        b"+7,email,marketing,opt_in,2026-01-02T10:00:00Z",       # 9 member 7
        b"2,email,marketing,opt_in,2026-01-03T10:00:00Z",        # 10 good
        b"2,sms\xff,marketing,opt_in,2026-01-03T10:00:00Z",      # 11 invalid UTF-8
        b"7,email,marketing,opt_in,2026-01-03T10:00:00Z",        # 12 good
    ]
    path = tmp_path / "consent.csv"
    path.write_bytes(HEADER + b"\n".join(rows) + b"\n")
    report = import_consent_csv(any_session, path, now=NOW)
    assert report.imported == 3
    assert [e.line for e in report.errors] == [3, 4, 5, 6, 7, 8, 9, 11], report.errors
    messages = {e.line: e.message for e in report.errors}
    assert "UTF-8" in messages[3] and "UTF-8" in messages[11]
    assert "NUL" in messages[6]
    assert all("occurred_at" in messages[line] for line in (4, 5))
    assert all("recipient_id" in messages[line] for line in (7, 8, 9))
    assert any_session.scalar(select(func.count()).select_from(ConsentEvent)) == 3
    states = current_consent(any_session, "member", [1, 2, 6, 7, 10], "email", "marketing")
    assert states == {1: ConsentState.opted_in, 2: ConsentState.opted_in, 6: ConsentState.unknown,
                      7: ConsentState.opted_in, 10: ConsentState.unknown}


def test_a_duplicated_header_column_refuses_the_file_naming_it(session_with_member: Session, tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("recipient_id,channel,purpose,action,occurred_at,action\n"
                    "1,email,marketing,opt_in,2026-01-02T10:00:00Z,opt_out\n", encoding="utf-8")
    with pytest.raises(ConsentImportError, match=r"dup.csv:1: .*column 'action'.*more than once"):
        import_consent_csv(session_with_member, path, now=NOW)
    assert session_with_member.scalar(select(func.count()).select_from(ConsentEvent)) == 0


@pytest.fixture()
def session_with_member(session: Session) -> Session:
    add_member(session, 1)
    return session


@pytest.fixture()
def session(sqlite_engine):  # type: ignore[no-untyped-def]
    from audiences.db import session_scope

    with session_scope(sqlite_engine) as s:
        yield s


@pytest.fixture()
def any_session(engine):  # type: ignore[no-untyped-def]
    from audiences.db import session_scope

    with session_scope(engine) as s:
        yield s


def test_the_import_streams_instead_of_holding_the_file(session: Session, tmp_path: Path) -> None:
    count = 10_000
    session.add_all(Member(id=i, first_name="M", email=f"m{i}@example.com", locale="en", time_zone="UTC",
                           country="US", enrolled_at=NOW) for i in range(1, 1001))
    session.flush()
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write("recipient_id,channel,purpose,action,occurred_at,source,evidence\n")
        for i in range(count):
            out.write(f"{i % 1000 + 1},email,marketing,opt_in,2026-01-02T10:{i % 60:02d}:00Z,import,row {i}\n")
    tracemalloc.start()
    try:
        report = import_consent_csv(session, path, now=NOW)
        _, peak = tracemalloc.get_traced_memory()
        print(f"import peak (tracemalloc): {peak / 2**20:.1f} MiB")  # shown with -s
    finally:
        tracemalloc.stop()
    assert report.imported == count and not report.errors
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB for {count} rows: the file is held, not streamed"

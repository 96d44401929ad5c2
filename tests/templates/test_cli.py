"""`loyalflow preview`, `loyalflow gallery` and `loyalflow check-templates`."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine

from audiences.db import session_scope
from audiences.models import Member
from flows.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_preview_email_with_sample_data(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    html = tmp_path / "mail.html"
    code, out, _ = run(["preview", "points_expiring", "email_7d", "--locale", "de", "--html", str(html)], capsys)
    assert code == 0
    assert "Subject:   Letzte Woche für Ihre 1.250 Punkte" in out
    assert "points_expiring/email_7d.de.mjml" in out
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_preview_sms_and_push(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["preview", "win_back", "sms_offer", "--locale", "fr-CA"], capsys)
    assert code == 0 and "Répondez STOP" in out and "GSM-7, 1 segment(s)" in out
    assert "sms_offer.fr.sms.txt" in out  # fr-CA falls back to fr
    code, out, _ = run(["preview", "tier_up", "push_congrats"], capsys)
    assert code == 0 and '"deep_link": "loyalflow://tier/gold"' in out


def test_preview_for_a_real_member(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    with session_scope(sqlite_engine) as session:
        member = Member(first_name="Anaïs <b>", locale="fr-CA", time_zone="America/Toronto",
                        enrolled_at=datetime(2026, 1, 5, tzinfo=timezone.utc))
        session.add(member)
        session.flush()
        member_id = member.id
    monkeypatch.setenv("LOYALFLOW_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    code, out, _ = run(["preview", "welcome", "email_welcome", "--member", str(member_id)], capsys)
    assert code == 0
    assert "email_welcome.fr-CA.mjml" in out and "Bienvenue chez Loyalflow Rewards, Anaïs <b>!" in out

    code, _, err = run(["preview", "welcome", "email_welcome", "--member", "999999"], capsys)
    assert code == 2 and "no member with id 999999" in err and "Traceback" not in err


def test_preview_unknown_template_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["preview", "welcome", "email_nope"], capsys)
    assert code == 2 and "no template welcome/email_nope" in err and "Traceback" not in err


def test_gallery_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["gallery", str(tmp_path / "g")], capsys)
    assert code == 0 and (tmp_path / "g" / "index.html").is_file() and "gallery written to" in out


def test_check_templates_command(capsys: pytest.CaptureFixture[str]) -> None:
    from templates.library import TemplateLibrary

    code, out, _ = run(["check-templates"], capsys)
    shipped = len(TemplateLibrary.load(eager=False).templates())  # every template the library ships (it grows)
    assert shipped >= 16 and code == 0 and f"{shipped} templates OK in every locale" in out


def test_check_templates_command_lists_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "lib" / "points_expiring"
    folder.mkdir(parents=True)
    (folder / "sms_x.en.sms.txt").write_text("---\npurpose: transactional\n---\nYou have {{ pointz }} points\n")
    code, out, _ = run(["check-templates", "--root", str(tmp_path / "lib")], capsys)
    assert code == 1
    assert f"{folder / 'sms_x.en.sms.txt'}:4: missing variable: 'pointz' is undefined" in out

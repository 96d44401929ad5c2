"""Listings for people and machines: tables never truncate identifiers (piped or at 80 columns),
timestamps carry no microseconds, `--format json` on every listing, the demo's export hint unbroken."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from audiences.db import make_engine
from channels.consent import record_consent
from flows import migrate
from journeys.engine import tick
from journeys.registry import get_journey, journeys
from journeys.services import services_for
from tests.audiences import builders as b
from tests.cli.running import run_cli
from tests.journeys.recording import RecordingAdapter

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc)


@pytest.fixture()
def database(tmp_path: Path) -> str:
    """Members of which some have no email: win-back sends and skips with reasons."""
    url = f"sqlite:///{tmp_path / 'loyalflow.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    b.reset_ids()
    with Session(engine, expire_on_commit=False) as s:
        b.tiers(s)
        for i in range(1, 41):
            m = b.member(s, i, enrolled_at=T0 - timedelta(days=600))
            if i % 4 == 0:
                m.email = None
            b.buy(s, m, "50.00", T0 - timedelta(days=200))
            if i % 3:
                record_consent(s, recipient_kind="member", recipient_id=i, channel="email", purpose="marketing",
                               action="opt_in", source="test", occurred_at=T0 - timedelta(days=300))
        s.commit()
    rec = RecordingAdapter()
    tick(sessionmaker(engine, expire_on_commit=False),
         replace(get_journey("win_back"), audience_params={"lapsed_days": 90}), T0,
         services_for(rec))
    engine.dispose()
    return url


def _no_truncation(output: str, *identifiers: str) -> None:
    assert "…" not in output
    for name in identifiers:
        assert name in output, name


@pytest.mark.slow
def test_piped_tables_at_80_columns_keep_every_identifier(entry_point: str, tmp_path: Path, database: str) -> None:
    listed = run_cli(entry_point, "journeys", cwd=tmp_path, columns=80)
    assert listed.returncode == 0, listed.stderr
    _no_truncation(listed.stdout, *journeys(), "points_expiring", "0 6 * * *")
    report = run_cli(entry_point, "report", "--at", "2026-11-24T00:00:00.123456", cwd=tmp_path, url=database,
                     columns=80)
    assert report.returncode == 0, report.stderr
    _no_truncation(report.stdout, "win_back", "no usable contact: no address", "no consent: never opted in",
                   "2026-11-24T00:00:00+00:00")
    assert ".123456" not in report.stdout
    simulated = run_cli(entry_point, "simulate", "win_back", "--start", "2026-11-20", "--days", "3", cwd=tmp_path,
                        url=database, columns=80)
    assert simulated.returncode == 0, simulated.stderr
    header = next(line for line in simulated.stdout.splitlines() if "sent_email" in line)
    assert "sent_push" in header and "completed" in header and "…" not in simulated.stdout


def test_a_table_at_80_columns_on_a_terminal_wraps_and_never_truncates() -> None:
    from flows.cli.output import print_table

    table = Table("journey", "channel", "sent", "skip reason", "count", "failed")
    table.add_row("points_expiring", "email", "12,345", "no usable contact: no address / invalid address", "1,234",
                  "outcome unknown: the process stopped inside the provider call 3")
    table.add_row("staff_bulletin", "email", "3,141", "frequency cap: enough marketing messages this week", "7", "")
    out = io.StringIO()
    print_table(table, Console(file=out, width=80, force_terminal=True, color_system=None))
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    assert "points_expiring" in text and "staff_bulletin" in text  # identifiers kept whole where they fit
    words = " ".join(text.replace("│", " ").split())
    for word in ("unknown:", "provider", "marketing", "invalid", "12,345"):
        assert word in words


@pytest.mark.slow
def test_every_listing_has_json(entry_point: str, tmp_path: Path, database: str) -> None:
    def as_json(*args: str) -> object:
        result = run_cli(entry_point, *args, "--format", "json", cwd=tmp_path, url=database)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    listed = as_json("journeys")
    assert {j["name"] for j in listed} == set(journeys())
    audiences = as_json("audience", "list")
    assert {"points_expiring", "lapsed"} <= {a["name"] for a in audiences}
    counted = as_json("audience", "count", "lapsed", "--at", "2026-11-23T15:00:00.5")
    assert counted["at"] == "2026-11-23T15:00:00+00:00" and isinstance(counted["count"], int)
    templates = as_json("check-templates")
    assert templates["ok"] is True and "points_expiring/email_30d" in templates["templates"]
    checked = as_json("check")
    assert checked == {"ok": True, "problems": [], "warnings": []}
    report = as_json("report", "--at", "2026-11-24")
    [win_back] = [j for j in report["journeys"] if j["journey"] == "win_back"]
    assert win_back["enrolled"] > 0 and "no_contact" in win_back["skipped"]
    assert report["program"]["members_opted_out"] == sum(c["opted_out"] for j in report["journeys"]
                                                         for c in j["channels"])


def test_the_demo_export_hint_is_never_wrapped(tmp_path: Path) -> None:
    from flows.cli.output import plain

    long = "export LOYALFLOW_DATABASE_URL=sqlite:///" + "/very-long-folder-name" * 8 + "/loyalflow.db"
    out = io.StringIO()
    plain(long, Console(file=out, width=80, force_terminal=True))
    assert long in out.getvalue()


@pytest.mark.slow
def test_audience_show_has_json_and_keeps_names_whole_when_narrow(entry_point: str, tmp_path: Path,
                                                                   database: str) -> None:
    shown = run_cli(entry_point, "audience", "show", "lapsed", "--member", "5", "--at", "2026-11-23T15:00:00",
                    "--format", "json", cwd=tmp_path, url=database)
    assert shown.returncode == 0, shown.stderr
    why = json.loads(shown.stdout)
    assert why["audience"] == "lapsed" and why["member"] == 5 and isinstance(why["included"], bool)
    assert why["rows"] and {"name", "meaning", "passed"} <= set(why["rows"][0]["criteria"][0])
    assert "first_name" not in why["rows"][0]["fields"]
    names = [c["name"] for c in why["rows"][0]["criteria"]]
    narrow = run_cli(entry_point, "audience", "show", "lapsed", "--member", "5", "--at", "2026-11-23T15:00:00",
                     cwd=tmp_path, url=database, columns=40)
    assert narrow.returncode == 0, narrow.stderr
    _no_truncation(narrow.stdout, *names)
    listed = run_cli(entry_point, "audience", "list", cwd=tmp_path, url=database, columns=40)
    _no_truncation(listed.stdout, "points_expiring", "new_members", "tier_ups")

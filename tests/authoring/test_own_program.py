"""A program outside the repository, found by convention, run through the real CLI: check, audience
count/show, simulate, preview (samples and a real member), run (a dry-run tick), gallery; and a real
tick through the engine delivering to a memory adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from flows import migrate
from tests.authoring.program_builder import NOW, fill, loyalflow, write_program

pytestmark = pytest.mark.slow  # child processes


@pytest.fixture()
def setup(tmp_path: Path, sqlite_engine):  # type: ignore[no-untyped-def]
    program = write_program(tmp_path / "my-program")
    fill(sqlite_engine)
    work = tmp_path / "work"
    work.mkdir()
    return program, str(sqlite_engine.url), work, sqlite_engine


def test_check_count_show_simulate_preview_run_gallery(setup) -> None:  # type: ignore[no-untyped-def]
    program, url, work, _ = setup

    def cli(*args: str):  # type: ignore[no-untyped-def]
        result = loyalflow(*args, program=program, url=url, cwd=work)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    checked = cli("check")
    assert checked.returncode == 0, checked.stderr + checked.stdout
    assert "every journey and template is fine" in checked.stdout

    listed = cli("journeys", "--format", "json")
    assert [j["name"] for j in json.loads(listed.stdout)] == ["balance_news"]  # the shipped ones are not there

    counted = cli("audience", "count", "points_balance", "--at", NOW.isoformat(), "-p", "min_points=500")
    assert counted.returncode == 0, counted.stderr
    assert "points_balance: 1 members" in counted.stdout  # 42 only: 43 has 300, 44 is closed
    assert "points_balance: 2 members" in cli("audience", "count", "points_balance", "--at", NOW.isoformat(),
                                              "-p", "min_points=100").stdout
    shown = cli("audience", "show", "points_balance", "--member", "42", "--at", NOW.isoformat())
    assert "is IN" in shown.stdout and "balance=978" in shown.stdout, shown.stdout

    simulated = cli("simulate", "balance_news", "--start", NOW.date().isoformat(), "--days", "2", "--format", "json")
    assert simulated.returncode == 0, simulated.stderr
    days = json.loads(simulated.stdout)["days"]
    assert sum(d["enrolled"] for d in days) == 1
    assert sum(d["sent"].get("email", 0) for d in days) == 1

    sample = cli("preview", "balance_news", "email_balance")
    assert sample.returncode == 0, sample.stderr
    # samples come from the contract (a curated figure where one exists by that name): no samples.py edit
    assert "points as a member member" in sample.stdout, sample.stdout
    assert "sample data from the context contract of journey 'balance_news'" in sample.stdout

    real = cli("preview", "balance_news", "email_balance", "--member", "42", "--at", NOW.isoformat(),
               "--locale", "en")
    assert real.returncode == 0, real.stderr
    assert "You hold 978 points as a gold member" in real.stdout, real.stdout
    assert "from samples: ledger_id, links, program" in real.stdout, real.stdout  # a preview sends nothing: no ledger row

    ran = cli("run", "balance_news", "--dry-run", "--at", NOW.isoformat())
    assert ran.returncode == 0, ran.stderr
    assert '"enrolled": 1' in ran.stdout, ran.stdout

    gallery = cli("gallery", str(work / "gallery"))
    assert gallery.returncode == 0, gallery.stderr
    index = (work / "gallery" / "index.html").read_text(encoding="utf-8")
    assert "balance_news" in index and "welcome" not in index


def test_a_real_tick_sends_from_the_program(setup, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    program, _, _, engine = setup
    monkeypatch.setenv("LOYALFLOW_PROGRAM_DIR", str(program))
    from audiences.db import session_factory
    from channels.adapters import MemoryAdapter
    from journeys.engine import tick
    from journeys.models import Enrollment
    from journeys.registry import get_journey
    from journeys.services import services_for

    adapter = MemoryAdapter()
    tick(session_factory(engine), get_journey("balance_news"), NOW, services_for(adapter))
    assert len(adapter.requests) == 1
    message = adapter.requests[0]
    assert message.recipient_id == 42 and message.journey == "balance_news"
    assert "978" in message.content.text and "gold" in message.content.text
    with engine.connect() as c:
        assert c.execute(select(Enrollment.context)).scalar_one()["balance"] == 978
    assert migrate.is_up_to_date(engine)


def test_the_program_option_and_a_bad_program_folder(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    program, url, work, _ = setup
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # --program wins over the environment (which here points at an empty folder)
    listed = loyalflow("--program", str(program), "audience", "list", "--format", "json", program=elsewhere,
                       url=url, cwd=work)
    assert listed.returncode == 0, listed.stderr
    found = {a["name"]: a for a in json.loads(listed.stdout)}
    assert found["points_balance"]["parameters"] == {"min_points": 100}
    assert "new_members" in found  # the built-ins stay available
    bad = loyalflow("journeys", program=elsewhere, url=url, cwd=work)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "has none of journeys/, templates/, audiences/" in bad.stderr
    made = loyalflow("new", "journey", "birthday", "--audience", "points_balance", program=program, url=url, cwd=work)
    assert made.returncode == 0, made.stderr
    assert (program / "journeys" / "birthday.py").is_file()
    again = loyalflow("new", "journey", "birthday", "--audience", "points_balance", program=program, url=url, cwd=work)
    assert again.returncode == 2 and "already exists" in again.stderr and "nothing was written" in again.stderr

"""The render-context contract in `loyalflow check`, SQL audience files on both databases, scaffolding a
journey, and the check that refuses to strand in-flight enrollments."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from audiences.db import session_scope
from audiences.errors import InvalidParameter, UnknownAudience
from audiences.queries import get_audience
from audiences.sql_files import AudienceFileError, parse_sql_file
from journeys.check import check_journeys
from journeys.contract import context_factory
from journeys.models import Enrollment, EnrollmentStatus
from journeys.registry import load_all
from journeys.versions import migrate_version, stranded_problems
from templates import TemplateLibrary, check_templates
from tests.authoring.program_builder import EMAIL, NOW, fill, write_program


@pytest.fixture()
def program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = write_program(tmp_path / "prog")
    monkeypatch.setenv("LOYALFLOW_PROGRAM_DIR", str(root))
    monkeypatch.delenv("LOYALFLOW_JOURNEYS_PATH", raising=False)
    return root


def _check(root: Path) -> list[str]:
    library = TemplateLibrary.load(eager=False)
    loaded = load_all()
    found = check_templates(library, context_for=context_factory(loaded.journeys.values()))
    return [str(p) for p in found + check_journeys(library=library) if not p.warning]


def test_a_declared_audience_column_passes_without_a_samples_edit(program: Path) -> None:
    # tier_code, balance and last_earned_at exist only in the SQL file's header: no sample was written for them
    assert _check(program) == []


def test_an_undeclared_variable_fails_check_at_its_file_and_line(program: Path) -> None:
    template = program / "templates" / "balance_news" / "email_balance.en.mjml"
    template.write_text(EMAIL.replace("{{ extra }}", " ({{ favourite_store }})"), encoding="utf-8")
    problems = _check(program)
    at_template = [p for p in problems if p.startswith(f"{_shown(template)}:10:")]
    assert at_template and "favourite_store" in at_template[0], problems
    # the journey half names the journey's send and where the names may come from
    assert any("uses favourite_store, which journey 'balance_news' does not provide" in p for p in problems), problems


def test_an_enricher_declares_its_keys(program: Path) -> None:
    journey = program / "journeys" / "balance_news.py"
    journey.write_text(journey.read_text(encoding="utf-8").replace(
        'from journeys.dsl import Journey, email, send\n',
        'from journeys.dsl import Journey, email, send\n\n'
        'def favourite(session, now, contexts):\n'
        '    for c in contexts:\n'
        '        c["favourite_store"] = "Downtown"\n'
        '    return contexts\n\n'
        'favourite.provides = {"favourite_store": "str"}\n').replace(
        "    steps=[", "    enrich=favourite,\n    steps=["), encoding="utf-8")
    for file in (program / "templates" / "balance_news").iterdir():
        file.write_text(EMAIL.replace("{{ extra }}", " ({{ favourite_store }})"), encoding="utf-8")
    assert _check(program) == []


def _shown(path: Path) -> str:
    from templates.files import display_path

    return display_path(path)


def test_sql_audience_runs_on_both_databases(program: Path, engine) -> None:  # type: ignore[no-untyped-def]
    fill(engine)
    audience = get_audience("points_balance")
    with session_scope(engine) as s:
        rows = s.execute(audience.query(NOW, min_points=100).select()).mappings().all()
        assert [(r["recipient_id"], r["tier_code"], r["balance"]) for r in rows] == [(42, "gold", 978),
                                                                                     (43, "silver", 300)]
        assert rows[0]["last_earned_at"] == NOW - timedelta(days=10)  # typed: an aware datetime on both
        assert audience.count(s, NOW, min_points=500) == 1
        assert audience.count(s, NOW - timedelta(days=30), min_points=500) == 1  # :now binds: the spend is later
        assert s.execute(audience.query(NOW - timedelta(days=30), min_points=100).select()).mappings().all()[0][
            "balance"] == 1200
        out = audience.explain(s, NOW, 43, min_points=500)
        assert out.exists and not out.included
        assert audience.explain(s, NOW, 42, min_points=500).included


def test_sql_file_mistakes_name_their_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sql"
    bad.write_text("-- column balance: money\nSELECT 1 AS recipient_id\n", encoding="utf-8")
    with pytest.raises(AudienceFileError, match="unknown type 'money'") as err:
        parse_sql_file(bad)
    assert err.value.line == 1
    bad.write_text("-- column balance: int\n\nSELECT 1 AS recipient_id, 2 AS balance\nWHERE 1 < :limit\n",
                   encoding="utf-8")
    with pytest.raises(AudienceFileError, match=":limit, which no") as err:
        parse_sql_file(bad)
    assert err.value.line == 4
    bad.write_text("-- param unused: int = 3\n-- column balance: int\nSELECT 1 AS recipient_id, 2 AS balance\n",
                   encoding="utf-8")
    with pytest.raises(AudienceFileError, match="never uses :unused"):
        parse_sql_file(bad)


def test_a_broken_audience_file_is_a_check_problem(program: Path) -> None:
    (program / "audiences" / "broken.sql").write_text("-- description: x\nSELECT 1 AS recipient_id\n",
                                                      encoding="utf-8")
    problems = _check(program)
    assert any("broken.sql:1: declares no output column" in p for p in problems), problems


def test_new_journey_scaffolds_a_checked_journey(program: Path) -> None:
    from flows.cli.new_cmd import scaffold_journey
    from templates.locales import SUPPORTED_LOCALES

    written = scaffold_journey("birthday", "points_balance")
    assert (program / "journeys" / "birthday.py") in written
    assert {p.name for p in (program / "templates" / "birthday").iterdir()} == {
        f"email_hello.{locale}.mjml" for locale in SUPPORTED_LOCALES}
    assert _check(program) == []
    before = sorted(p.relative_to(program) for p in program.rglob("*"))
    with pytest.raises(InvalidParameter, match="already exists"):
        scaffold_journey("birthday", "points_balance")
    with pytest.raises(InvalidParameter, match="must be lower-case"):
        scaffold_journey("Birthday!", "points_balance")
    with pytest.raises(UnknownAudience, match="points_balance"):
        scaffold_journey("anniversary", "no_such_audience")
    assert sorted(p.relative_to(program) for p in program.rglob("*")) == before  # nothing changed


def test_check_refuses_to_strand_enrollments_and_migrate_moves_them(program: Path, sqlite_engine) -> None:  # type: ignore[no-untyped-def]
    from audiences.db import session_factory
    from channels.adapters import MemoryAdapter
    from journeys.engine import tick
    from journeys.services import services_for

    fill(sqlite_engine)
    journey_file = program / "journeys" / "balance_news.py"
    two_steps = 'steps=[wait(days=3), send(email("balance_news/email_balance"))]'
    journey_file.write_text(journey_file.read_text(encoding="utf-8").replace(
        "import Journey, email, send", "import Journey, email, send, wait").replace(
        'steps=[send(email("balance_news/email_balance"))]', two_steps), encoding="utf-8")
    tick(session_factory(sqlite_engine), load_all().journeys["balance_news"], NOW, services_for(MemoryAdapter()))
    assert stranded_problems(load_all().journeys, sqlite_engine) == []

    # version 2 without version 1's steps: the one member waiting on v1 would fail
    journey_file.write_text(journey_file.read_text(encoding="utf-8").replace("version=1", "version=2"),
                            encoding="utf-8")
    problems = stranded_problems(load_all().journeys, sqlite_engine)
    assert len(problems) == 1
    text = str(problems[0])
    assert text.startswith(f"{_shown(journey_file)}:")
    assert "journey 'balance_news': 1 active enrollment(s) are on version 1" in text
    assert "earlier_versions={1:" in text and "loyalflow migrate-version balance_news --from 1 --to 2" in text

    with session_scope(sqlite_engine) as s:
        assert migrate_version(s, load_all().journeys["balance_news"], 1, 2, NOW) == 1
    assert stranded_problems(load_all().journeys, sqlite_engine) == []
    with sqlite_engine.connect() as c:
        assert c.execute(select(Enrollment.journey_version, Enrollment.step_index, Enrollment.status)).one() == (
            2, 0, EnrollmentStatus.active)


def test_check_asks_the_database_about_sql_audiences(program: Path, sqlite_engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from journeys.check import database_checks

    monkeypatch.setenv("LOYALFLOW_DATABASE_URL", str(sqlite_engine.url))
    assert database_checks(load_all().journeys) == []
    (program / "audiences" / "wrong_columns.sql").write_text(
        "-- column balance: int\n-- column tier: str\nSELECT id AS recipient_id, 1 AS balance FROM members\n",
        encoding="utf-8")
    (program / "audiences" / "bad_table.sql").write_text(
        "-- column balance: int\nSELECT id AS recipient_id, 1 AS balance FROM no_such_table\n", encoding="utf-8")
    found = sorted(str(p) for p in database_checks(load_all().journeys))
    assert len(found) == 2, found
    assert "bad_table.sql: audience 'bad_table': the database refuses the query: no such table: no_such_table" in found[0]
    assert found[1].endswith("wrong_columns.sql:1: audience 'wrong_columns': the query returns no column tier "
                             "(declared in the header)")

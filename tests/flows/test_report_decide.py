"""The report that decides: lift with its interval and test (known answers), revenue attribution equal to
SQL written independently here, breakdowns that add up to the total, slots for A/B and NPS that work
before and after their tables exist, and CSV export that no spreadsheet can turn into a formula."""

from __future__ import annotations

import csv
import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, Table, func, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from audiences.models import Member, Purchase, Store
from channels.adapters import MemoryAdapter
from flows.report import build_report
from flows.report_csv import report_tables, safe_cell, write_csv
from flows.report_decide import Table as ReportTable
from flows.report_decide import nps, totals
from flows.report_html import render_html
from flows.report_stats import lift, normal_quantile
from journeys import broadcasts
from journeys.models import Enrollment, EnrollmentStatus, Send, SendStatus
from journeys.passes import run_pass
from journeys.services import services_for
from templates import TemplateLibrary
from tests.audiences import builders as b
from tests.journeys.test_broadcasts import members

UTC = timezone.utc
T0 = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in New York
NOW = T0 + timedelta(days=30)


# --- statistics with known answers ----------------------------------------------------------------------

def test_lift_interval_and_z_test_match_the_textbook() -> None:
    assert normal_quantile(0.975) == pytest.approx(1.959964, abs=1e-6)
    result = lift(60, 200, 40, 200)
    assert result is not None
    # by hand: p1 .30, p2 .20; SE = sqrt(.3*.7/200 + .2*.8/200) = .0430116; pooled .25, SE0 = .0433013
    assert result.lift == pytest.approx(0.10)
    assert result.low == pytest.approx(0.10 - 1.959964 * math.sqrt(0.00185), abs=1e-6)
    assert result.high == pytest.approx(0.10 + 1.959964 * math.sqrt(0.00185), abs=1e-6)
    assert result.z == pytest.approx(2.309401, abs=1e-6)
    assert result.p_value == pytest.approx(0.020921, abs=1e-5)  # statsmodels proportions_ztest([60,40],[200,200])
    assert result.significant and result.verdict == "significant lift"

    unclear = lift(22, 200, 20, 200)
    assert unclear is not None and not unclear.significant and unclear.low < 0 < unclear.high
    assert unclear.verdict == "not significant"
    harm = lift(100, 1000, 150, 1000)
    assert harm is not None and harm.significant and harm.verdict == "significant harm" and harm.high < 0
    assert lift(5, 10, 0, 0) is None  # no holdout, no lift
    same = lift(0, 50, 0, 50)
    assert same is not None and same.p_value is None and not same.significant
    with pytest.raises(ValueError, match="11 converted out of 10"):
        lift(11, 10, 1, 10)


# --- a program with two broadcasts and purchases around them --------------------------------------------

def _program(engine: Engine, library: TemplateLibrary) -> None:
    """60 members (1..20 French, tiers by id), consent to email; broadcast `autumn` (20 % holdout) to
    everyone at T0, `fr` to the French at T0 + 3 days; purchases before, inside and outside the windows,
    in two stores, without a store, and in two currencies."""
    b.reset_ids()
    members(engine, 60)
    with Session(engine) as s:
        tiers = b.tiers(s)
        s.execute(update(Member).where(Member.id <= 20).values(locale="fr"))
        s.execute(update(Member).where(Member.id % 3 == 0).values(tier_id=tiers["gold"].id))
        s.execute(update(Member).where(Member.id % 3 == 1).values(tier_id=tiers["silver"].id))
        b.store(s, 1, "Downtown")
        b.store(s, 2, "=HYPERLINK(\"http://evil.example\",\"x\")")
        s.commit()
    recorder = MemoryAdapter()
    services = services_for(recorder)
    factory = sessionmaker(engine, expire_on_commit=False)
    with Session(engine, expire_on_commit=False) as s:
        broadcasts.create(s, "autumn", templates=["broadcasts/newsletter"], holdout_percent=20, now=T0, library=library)
        broadcasts.schedule(s, "autumn", T0)
    run_pass(factory, {}, T0, services)
    fr_at = T0 + timedelta(days=3)
    with Session(engine, expire_on_commit=False) as s:
        broadcasts.create(s, "fr", templates=["broadcasts/newsletter"], params={"locale": "fr"}, now=fr_at,
                          library=library)
        broadcasts.schedule(s, "fr", fr_at)
    run_pass(factory, {}, fr_at, services)
    with Session(engine) as s:
        rows = []
        for m in range(1, 61):
            store = (1, 2, None)[m % 3]
            currency = "EUR" if m <= 20 else "USD"
            for days, amount in ((-1, "11.00"), (1, "20.00"), (4, "7.50"), (9, "30.25"), (20, "99.00")):
                if (m + days) % 4 == 0:  # not everyone buys every time
                    continue
                rows.append({"id": 10_000 + m * 100 + days + 1, "member_id": m, "store_id": store,
                             "amount": Decimal(amount), "currency": currency,
                             "purchased_at": T0 + timedelta(days=days, hours=m % 5)})
        s.execute(insert(Purchase), rows)
        s.commit()


def _independent_attribution(engine: Engine, window_days: int) -> dict[tuple[str, str], tuple[int, Decimal]]:
    """(journey, currency) -> (purchases, revenue), written without the report's code: for each purchase the
    latest sent message before it (NOT EXISTS a later one, ties by id), kept when within the window."""
    sql = text("""
        SELECT p.id, p.amount, p.currency, p.purchased_at, s.journey, s.sent_at
        FROM purchases p JOIN sends s ON s.recipient_kind = 'member' AND s.recipient_id = p.member_id
                                     AND s.status = 'sent' AND s.sent_at < p.purchased_at
        WHERE NOT EXISTS (SELECT 1 FROM sends s2
                          WHERE s2.recipient_kind = 'member' AND s2.recipient_id = p.member_id AND s2.status = 'sent'
                            AND s2.sent_at < p.purchased_at
                            AND (s2.sent_at > s.sent_at OR (s2.sent_at = s.sent_at AND s2.id > s.id)))""")
    out: dict[tuple[str, str], tuple[int, Decimal]] = {}
    with engine.connect() as conn:
        for _, amount, currency, purchased_at, journey, sent_at in conn.execute(sql):
            purchased_at, sent_at = (v if isinstance(v, datetime) else datetime.fromisoformat(v)
                                     for v in (purchased_at, sent_at))
            if purchased_at - sent_at <= timedelta(days=window_days):
                n, total = out.get((journey, currency), (0, Decimal("0")))
                out[(journey, currency)] = (n + 1, total + Decimal(str(amount)))
    return out


def _table(report: object, key: str) -> ReportTable:
    return next(t for t in report.tables if t.key == key)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def library() -> TemplateLibrary:
    return TemplateLibrary.load()


@pytest.mark.slow
def test_attributed_revenue_equals_independent_sql_and_breakdowns_add_up(engine: Engine,
                                                                         library: TemplateLibrary) -> None:
    _program(engine, library)
    with Session(engine) as s:
        report = build_report(s, NOW, window_days=7)
        names = {broadcasts.journey_name(r.id): r.name for r in s.scalars(select(broadcasts.Broadcast))}
    expected = _independent_attribution(engine, 7)
    assert expected  # the data has attributed purchases in both currencies and both journeys
    assert {c for _, c in expected} == {"EUR", "USD"} and {j for j, _ in expected} == set(names)

    by_journey = _table(report, "by_journey")
    for row in by_journey.rows:
        journey = row[0]
        for currency in ("EUR", "USD"):
            n, revenue = expected.get((journey, currency), (0, Decimal("0")))
            assert row[by_journey.columns.index(f"revenue {currency}")] == revenue, (journey, currency)
    assert sum(row[3] for row in by_journey.rows) == sum(n for n, _ in expected.values())

    total = {c: sum((r for (_, cur), (_, r) in expected.items() if cur == c), Decimal("0")) for c in ("EUR", "USD")}
    purchases = sum(n for n, _ in expected.values())
    for key in ("trends_weekly", "by_journey", "by_store", "by_tier"):
        table = _table(report, key)
        sums = totals(table, ["attributed purchases", "revenue EUR", "revenue USD"])
        assert sums == {"attributed purchases": purchases, "revenue EUR": total["EUR"], "revenue USD": total["USD"]}, key
    # the messages sent add up too: per week, per journey and per tier, to the ledger's count
    with Session(engine) as s:
        sent = s.scalar(select(func.count()).where(Send.status == SendStatus.sent))
    for key in ("trends_weekly", "by_journey", "by_tier"):
        assert totals(_table(report, key), ["sent"]) == {"sent": sent}, key
    listed = _table(report, "broadcasts").rows
    assert [(r[0], r[1], r[2]) for r in listed] == [(j, names[j], "sent") for j in sorted(names)]
    with Session(engine) as s:  # the report only reads: `broadcast list` is what records a status
        assert set(s.scalars(select(broadcasts.Broadcast.status))) == {broadcasts.BroadcastStatus.sending}
    stores = {row[0] for row in _table(report, "by_store").rows}
    assert stores == {"Downtown", "=HYPERLINK(\"http://evil.example\",\"x\")", "(no store)"}
    weeks = [row[0] for row in _table(report, "trends_weekly").rows]
    assert weeks == sorted(weeks) and all(w.weekday() == 0 for w in weeks)


@pytest.mark.slow
def test_lift_table_from_a_holdout_with_a_known_answer(sqlite_engine: Engine, library: TemplateLibrary) -> None:
    engine = sqlite_engine
    members(engine, 2_000)
    with Session(engine, expire_on_commit=False) as s:
        broadcasts.create(s, "news", templates=["broadcasts/newsletter"], holdout_percent=25, now=T0, library=library)
        row = broadcasts.schedule(s, "news", T0)
    run_pass(sessionmaker(engine, expire_on_commit=False), {}, T0, services_for(MemoryAdapter()))
    journey = broadcasts.journey_name(row.id)
    with Session(engine) as s:
        statuses = dict(s.execute(select(Enrollment.recipient_id, Enrollment.status)
                                  .where(Enrollment.journey == journey)).all())
        treated = sorted(i for i, st in statuses.items() if st == EnrollmentStatus.completed)
        held = sorted(i for i, st in statuses.items() if st == EnrollmentStatus.held_out)
        buyers = treated[::4] + held[::6]  # 25 % of the messaged buy within the week, 16.7 % of the holdout
        s.execute(insert(Purchase), [{"member_id": m, "amount": Decimal("10.00"), "currency": "USD",
                                      "purchased_at": T0 + timedelta(days=2)} for m in buyers])
        s.commit()
        report = build_report(s, NOW, window_days=7)
    table = _table(report, "lift")
    [found] = [r for r in table.rows if r[0] == journey]
    want = lift(len(treated[::4]), len(treated), len(held[::6]), len(held))
    assert want is not None and want.significant
    values = dict(zip(table.columns, found))
    assert (values["messaged members"], values["converted"]) == (len(treated), len(treated[::4]))
    assert (values["holdout"], values["holdout converted"]) == (len(held), len(held[::6]))
    assert values["lift (points)"] == round(100 * want.lift, 2)
    assert values["ci low (points)"] == round(100 * want.low, 2) and values["ci low (points)"] > 0
    assert values["p value"] == round(want.p_value, 4) and values["verdict"] == "significant lift"
    html = render_html(report)
    assert "Lift against the holdout" in html and "significant lift" in html and "Trends per week" in html


def test_slots_are_empty_without_data_and_filled_with_it(sqlite_engine: Engine) -> None:
    engine = sqlite_engine
    with Session(engine) as s:
        report = build_report(s, NOW)
    for key in ("ab_results", "nps", "bulletin_reads", "trends_weekly", "by_store", "lift"):
        assert _table(report, key).rows == [], key
    assert "No data yet." in render_html(report)

    answers = Table("survey_answers", MetaData(), autoload_with=engine)
    scores = [10, 9, 9, 10, 9, 8, 7, 3, 6, 0]  # 5 promoters, 2 passives, 3 detractors: NPS 20
    with engine.begin() as conn:
        conn.execute(insert(answers), [{
            "ledger_id": i, "recipient_kind": "member", "recipient_id": i, "journey": "tier_up", "step": "nps",
            "scale_min": 0, "scale_max": 10, "score": score, "comment": None, "channel": "email",
            "first_answered_at": T0.replace(tzinfo=None), "answered_at": T0.replace(tzinfo=None), "revisions": 0,
            "previous_score": None} for i, score in enumerate(scores, 1)])
        if engine.dialect.has_table(conn, "survey_invites"):
            invites = Table("survey_invites", MetaData(), autoload_with=engine)
            conn.execute(insert(invites), [{
                "ledger_id": i, "recipient_kind": "member", "recipient_id": i, "journey": "tier_up", "step": "nps",
                "scale_min": 0, "scale_max": 10, "channel": "email", "sent_at": (T0 - timedelta(days=1)).replace(tzinfo=None)}
                for i in range(1, 41)])
    with Session(engine) as s:
        table = nps(s, NOW, since=None)
    [row] = table.rows
    values = dict(zip(table.columns, row))
    assert (values["answers"], values["promoters"], values["passives"], values["detractors"]) == (10, 5, 2, 3)
    assert values["nps"] == 20.0 and values["average score"] == 7.1
    assert values["invited"] == 40 and values["response rate"] == 0.25

    with engine.begin() as conn:  # before the survey feature's tables land: the slot is empty, not an error
        conn.execute(text("DROP TABLE survey_answers"))
    with Session(engine) as s:
        assert nps(s, NOW, since=None).rows == []


def test_csv_cells_that_would_be_formulas_are_quoted(tmp_path: Path) -> None:
    hostile = ["=1+1", "+33 1 23", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd", "=HYPERLINK(\"http://x\")"]
    for value in hostile:
        assert safe_cell(value) == "'" + value
    assert safe_cell("Downtown") == "Downtown" and safe_cell("a=b") == "a=b"
    assert safe_cell(-0.25) == -0.25 and safe_cell(Decimal("-3.10")) == Decimal("-3.10")  # computed numbers
    assert safe_cell(None) == ""
    table = ReportTable("by_store", "t", ["store", "=revenue"], [[v, -1.5] for v in hostile])
    [path] = write_csv([table], tmp_path / "out")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["store", "'=revenue"]
    assert [r[0] for r in rows[1:]] == ["'" + v for v in hostile]
    assert all(r[1] == "-1.5" for r in rows[1:])


@pytest.mark.slow
def test_every_table_is_exported(sqlite_engine: Engine, library: TemplateLibrary, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from flows.cli import main

    _program(sqlite_engine, library)
    with Session(sqlite_engine) as s:
        report = build_report(s, NOW)
    tables = report_tables(report)
    monkeypatch.setenv("LOYALFLOW_DATABASE_URL", str(sqlite_engine.url))
    main(["report", "--at", NOW.isoformat(), "--csv", str(tmp_path / "csv")])  # `loyalflow report --csv DIR`
    assert f"wrote {len(tables)} CSV files to {tmp_path / 'csv'}" in capsys.readouterr().out
    paths = sorted((tmp_path / "csv").glob("*.csv"))
    assert {p.name for p in paths} == {f"{t.key}.csv" for t in tables}
    assert {"journeys.csv", "channels.csv", "skipped.csv", "lift.csv", "trends_weekly.csv", "by_store.csv",
            "by_tier.csv", "by_journey.csv", "response_rates.csv", "ab_results.csv", "nps.csv"} <= {p.name for p in paths}
    with (tmp_path / "csv" / "by_store.csv").open(encoding="utf-8", newline="") as handle:
        stores = [r[0] for r in csv.reader(handle)][1:]
    assert "'=HYPERLINK(\"http://evil.example\",\"x\")" in stores and "Downtown" in stores
    with Session(sqlite_engine) as s:  # the store's name is kept as it is in the database
        assert s.scalar(select(Store.name).where(Store.id == 2)).startswith("=")


def test_send_time_lift_compares_the_best_hour_with_its_holdout(sqlite_engine: Engine) -> None:
    """Members sent at their best hour against those held to the fallback hour: counts, conversion and
    the lift with its interval as the two-proportion test gives them; "fallback" is listed, not compared."""
    from flows.report_decide import send_time_lift

    engine = sqlite_engine
    members(engine, 700)
    rules = {**{i: "best" for i in range(1, 401)}, **{i: "holdout" for i in range(401, 601)},
             **{i: "fallback" for i in range(601, 701)}}
    buyers = [i for i in range(1, 401) if i % 4 == 0] + [i for i in range(401, 601) if i % 10 == 0]
    with Session(engine) as s:
        for mid, rule in rules.items():
            e = Enrollment(journey="evening", journey_version=1, recipient_kind="member", recipient_id=mid,
                           occurrence_key="x", enrolled_at=T0, status=EnrollmentStatus.completed, step_index=2,
                           due_at=None, context={"send_time_rule": rule}, updated_at=T0)
            s.add(e)
            s.flush()
            s.add(Send(enrollment_id=e.id, step_key="offer", journey="evening", recipient_kind="member",
                       recipient_id=mid, purpose="marketing", channel="email", template="win_back/email_offer",
                       status=SendStatus.sent, attempts=1, reserved_at=T0, sent_at=T0, updated_at=T0))
        s.add_all(Purchase(member_id=m, amount=Decimal("10.00"), currency="USD", purchased_at=T0 + timedelta(days=2))
                  for m in buyers)
        s.commit()
        table = send_time_lift(s, NOW, since=None, window_days=7)
    rows = {r[1]: dict(zip(table.columns, r)) for r in table.rows if r[0] == "evening"}
    assert set(rows) == {"best", "holdout", "fallback"}
    assert (rows["best"]["messaged members"], rows["best"]["converted"]) == (400, 100)
    assert (rows["holdout"]["messaged members"], rows["holdout"]["converted"]) == (200, 20)
    want = lift(100, 400, 20, 200)
    assert want is not None and want.significant
    assert rows["best"]["lift (points)"] == round(100 * want.lift, 2) == 15.0
    assert rows["best"]["ci low (points)"] == round(100 * want.low, 2) > 0
    assert rows["best"]["verdict"] == "significant lift" and rows["holdout"]["verdict"] is None

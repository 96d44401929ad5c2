"""A/B variants: stable hash assignment on the split, the variant's template sent, a winner promoted
only past the significance threshold (synthetic outcomes with a known answer), and `simulate`'s split."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta, timezone
from statistics import NormalDist

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from channels.consent import record_consent
from journeys.check import check_journeys
from journeys.context_extras import win_back_offer
from journeys.dsl import Journey, Variant, WinnerRule, email, send, sms
from journeys.engine import tick
from journeys.models import AbDecision, Enrollment
from journeys.models import Send as LedgerRow
from journeys.registry import get_journey
from journeys.services import services_for
from journeys.simulate import simulate
from journeys.variants import assign, judge, two_proportion_p
from tests.audiences import builders as b
from tests.journeys.recording import RecordingAdapter

UTC = timezone.utc
T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 10:00 in New York: outside quiet hours
ARMS = (Variant("miss_you", weight=50), Variant("ends_soon", template="win_back/email_offer_urgent", weight=50))
RULE = WinnerRule(metric="conversion", within=timedelta(days=14), min_sample=50, alpha=0.05)
TEMPLATE = {"miss_you": "win_back/email_offer", "ends_soon": "win_back/email_offer_urgent"}


def ab_journey(rule: WinnerRule | None = RULE) -> Journey:
    return Journey(name="ab_win_back", description="test", version=1, purpose="marketing", audience="lapsed",
                   audience_params={"lapsed_days": 90}, occurrence_key="last_purchase_at", enrich=win_back_offer,
                   steps=[send(email("win_back/email_offer"), variants=list(ARMS), winner=rule)])


# --- assignment --------------------------------------------------------------------------------------

@pytest.mark.parametrize("weights", [(50, 50), (70, 30), (20, 30, 50), (1, 99)])
def test_assignment_is_stable_and_within_one_point_of_the_split_on_100000_members(weights: tuple[int, ...]) -> None:
    arms = [Variant(f"v{i}", weight=w) for i, w in enumerate(weights)]
    first = [assign(i, "win_back", arms) for i in range(1, 100_001)]
    counts = Counter(first)
    for arm in arms:
        share = 100 * counts[arm.name] / 100_000
        assert abs(share - arm.weight * 100 / sum(weights)) < 1.0, (arm, share)
    assert [assign(i, "win_back", arms) for i in range(1, 100_001, 97)] == first[::97]  # same answer again
    # another journey's test splits the same members independently (a different salt): they land in
    # different variants as often as two independent draws do (1 - sum of squared shares)
    other = [assign(i, "welcome", arms) for i in range(1, 100_001)]
    independent = 1 - sum((w / sum(weights)) ** 2 for w in weights)
    assert abs(sum(a != b_ for a, b_ in zip(first, other)) / 100_000 - independent) < 0.01


# --- the winner rule on synthetic outcomes with a known answer -------------------------------------

def reference_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """The pooled two-proportion z-test, with the standard library's normal distribution."""
    pooled = (x1 + x2) / (n1 + n2)
    z = (x1 / n1 - x2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return 2 * (1 - NormalDist().cdf(abs(z)))


def test_p_value_matches_the_textbook() -> None:
    # 14% vs 10% on 5,000 each: z = 0.04 / sqrt(0.12 * 0.88 * 2 / 5000) = 6.155
    assert two_proportion_p(700, 5000, 500, 5000) == pytest.approx(reference_p(700, 5000, 500, 5000), rel=1e-6)
    assert reference_p(700, 5000, 500, 5000) < 1e-8
    # |z| = 1.96 is p = 0.05
    assert two_proportion_p(0, 1, 0, 1) == 1.0
    for x1 in range(100, 180, 7):
        assert two_proportion_p(x1, 1000, 100, 1000) == pytest.approx(reference_p(x1, 1000, 100, 1000), abs=1e-9)


def test_no_winner_at_a_small_difference() -> None:
    verdict = judge({"a": (2000, 200), "b": (2000, 210)}, RULE)  # 10.0% vs 10.5%
    assert verdict.winner is None and verdict.p_value is not None and verdict.p_value > 0.05


def test_no_winner_below_the_minimum_sample_however_large_the_difference() -> None:
    verdict = judge({"a": (49, 40), "b": (500, 50)}, RULE)
    assert verdict.winner is None and "min_sample" in verdict.reason and "a" in verdict.reason


def test_a_clear_difference_promotes_the_better_variant() -> None:
    verdict = judge({"miss_you": (5000, 500), "ends_soon": (5000, 700)}, RULE)
    assert verdict.winner == "ends_soon"
    assert verdict.arms["ends_soon"].rate == 0.14 and verdict.p_value is not None and verdict.p_value < 1e-8


def test_promotion_happens_exactly_past_the_threshold() -> None:
    """b fixed at 100/1000; a rises: the winner appears exactly when the reference p drops below alpha."""
    seen = []
    for x in range(100, 161):
        verdict = judge({"a": (1000, x), "b": (1000, 100)}, RULE)
        expected = reference_p(x, 1000, 100, 1000) < RULE.alpha
        assert (verdict.winner == "a") is expected, (x, verdict)
        seen.append(expected)
    assert seen[0] is False and seen[-1] is True and seen == sorted(seen)  # one crossing, none before it


def test_three_variants_need_the_corrected_threshold_against_each_other() -> None:
    # best vs second has p ~ 0.035: below 0.05, not below 0.05 / 2 (two comparisons)
    counts = {"a": (1000, 136), "b": (1000, 105), "c": (1000, 60)}
    p_second = reference_p(136, 1000, 105, 1000)
    assert 0.025 < p_second < 0.05
    assert judge(counts, RULE).winner is None
    assert judge({"a": (1000, 136), "b": (1000, 105)}, RULE).winner == "a"


# --- end to end: enrollment, the variant's template, promotion for new enrollments ----------------

def lapsed_members(engine: Engine, ids: range) -> None:
    with Session(engine, expire_on_commit=False) as s:
        if ids.start == 1:
            b.tiers(s)
        for i in ids:
            m = b.member(s, i, enrolled_at=T0 - timedelta(days=700))
            b.buy(s, m, "80.00", T0 - timedelta(days=200))
            record_consent(s, recipient_kind="member", recipient_id=i, channel="email", purpose="marketing",
                           action="opt_in", source="form", occurred_at=T0 - timedelta(days=300))
        s.commit()


def variants_of(engine: Engine) -> dict[int, str | None]:
    with Session(engine) as s:
        return dict(s.execute(select(Enrollment.recipient_id, Enrollment.variant)).all())


@pytest.mark.slow
def test_variants_are_sent_and_the_winner_is_promoted_for_new_enrollments_only(engine: Engine) -> None:
    b.reset_ids()
    lapsed_members(engine, range(1, 201))
    journey = ab_journey()
    factory = sessionmaker(engine, expire_on_commit=False)
    rec = RecordingAdapter()
    services = services_for(rec)
    tick(factory, journey, T0, services)

    first = variants_of(engine)
    assert first == {i: assign(i, journey.name, ARMS) for i in range(1, 201)}  # SQL agrees with Python
    split = Counter(first.values())
    assert split["miss_you"] >= RULE.min_sample and split["ends_soon"] >= RULE.min_sample
    with Session(engine) as s:
        sent = s.execute(select(LedgerRow.recipient_id, LedgerRow.template, LedgerRow.status)).all()
    assert len(sent) == 200 and {st.value for _, _, st in sent} == {"sent"}
    assert all(template == TEMPLATE[first[rid]] for rid, template, _ in sent)  # each got its variant's email
    subjects = {m.recipient_id: m.content.subject for m in rec.messages}  # type: ignore[union-attr]
    assert all(("this week only" in subjects[i]) is (first[i] == "ends_soon") for i in range(1, 201))

    # synthetic outcomes: ends_soon converts 60%, miss_you 10% within 14 days; more miss_you buyers
    # come after the window (day 14 + 6 h), which must not count
    by_arm: dict[str, list[int]] = {"miss_you": [], "ends_soon": []}
    for rid in sorted(first):
        by_arm[first[rid]].append(rid)
    within = by_arm["ends_soon"][: len(by_arm["ends_soon"]) * 6 // 10] + by_arm["miss_you"][: len(by_arm["miss_you"]) // 10]
    late = by_arm["miss_you"][len(by_arm["miss_you"]) // 10:][:40]
    with Session(engine, expire_on_commit=False) as s:
        from audiences.models import Member
        for rid in within:
            b.buy(s, s.get(Member, rid), "30.00", T0 + timedelta(days=3))
        for rid in late:
            b.buy(s, s.get(Member, rid), "30.00", T0 + timedelta(days=14, hours=6))
        s.commit()

    # day 10: the sends have not had their 14 days yet: nothing is decided
    tick(factory, journey, T0 + timedelta(days=10), services)
    with Session(engine) as s:
        assert s.scalars(select(AbDecision)).all() == []

    # day 15: new lapsed members enter after the rule is met: the decision comes first, they all get the winner
    lapsed_members(engine, range(201, 241))
    decided = T0 + timedelta(days=15)
    tick(factory, journey, decided, services)
    with Session(engine) as s:
        row = s.scalars(select(AbDecision)).one()
    converted = Counter(first[rid] for rid in within)
    assert (row.journey, row.step_key, row.winner, row.metric) == ("ab_win_back", "email_offer", "ends_soon", "conversion")
    assert row.decided_at == decided and row.within_days == 14 and row.alpha == 0.05
    for arm in ("miss_you", "ends_soon"):
        assert row.rates[arm]["sends"] == split[arm] and row.rates[arm]["successes"] == converted[arm]
    expected_p = reference_p(converted["ends_soon"], split["ends_soon"], converted["miss_you"], split["miss_you"])
    assert row.p_value == pytest.approx(expected_p, rel=1e-6) and row.p_value < 0.05

    after = variants_of(engine)
    assert {after[i] for i in range(201, 241)} == {"ends_soon"}  # new enrollments: the winner
    assert {i: after[i] for i in range(1, 201)} == first  # running ones keep their variant
    with Session(engine) as s:
        new_templates = set(s.scalars(select(LedgerRow.template).where(LedgerRow.recipient_id > 200)))
    assert new_templates == {"win_back/email_offer_urgent"}


@pytest.mark.slow
def test_no_promotion_when_the_difference_is_not_significant(sqlite_engine: Engine) -> None:
    b.reset_ids()
    lapsed_members(sqlite_engine, range(1, 201))
    journey = ab_journey()
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    services = services_for(RecordingAdapter())
    tick(factory, journey, T0, services)
    first = variants_of(sqlite_engine)
    with Session(sqlite_engine, expire_on_commit=False) as s:
        from audiences.models import Member
        for arm in ("miss_you", "ends_soon"):  # the same 20% in both
            ids = sorted(i for i, v in first.items() if v == arm)
            for rid in ids[: len(ids) // 5]:
                b.buy(s, s.get(Member, rid), "30.00", T0 + timedelta(days=2))
        s.commit()
    lapsed_members(sqlite_engine, range(201, 241))
    tick(factory, journey, T0 + timedelta(days=20), services)
    with Session(sqlite_engine) as s:
        assert s.scalars(select(AbDecision)).all() == []
    after = variants_of(sqlite_engine)
    assert {after[i] for i in range(201, 241)} == {"miss_you", "ends_soon"}  # still split by hash


def test_an_enrollment_without_a_variant_gets_its_hash_at_the_send_and_keeps_it(sqlite_engine: Engine) -> None:
    b.reset_ids()
    lapsed_members(sqlite_engine, range(1, 21))
    journey = ab_journey()
    journey = Journey(**{**journey.__dict__, "steps": (journey.steps[0],)})
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    from journeys.enroll import enroll
    with factory() as s:
        enroll(s, journey, T0)
        s.execute(update(Enrollment).values(variant=None))  # as an event-triggered entry arrives
        s.commit()
    tick(factory, journey, T0, services_for(RecordingAdapter()))
    assert variants_of(sqlite_engine) == {i: assign(i, journey.name, ARMS) for i in range(1, 21)}


def test_an_entry_after_the_promotion_without_a_variant_gets_the_winner(sqlite_engine: Engine) -> None:
    b.reset_ids()
    lapsed_members(sqlite_engine, range(1, 21))
    journey = ab_journey()
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    from journeys.enroll import enroll
    with factory() as s:
        enroll(s, journey, T0)
        s.execute(update(Enrollment).values(variant=None))  # entered by an event, after the decision below
        s.add(AbDecision(journey=journey.name, step_key="email_offer", winner="ends_soon", metric="conversion",
                         within_days=14, alpha=0.05, p_value=0.001, rates={}, decided_at=T0 - timedelta(hours=1)))
        s.commit()
    tick(factory, journey, T0, services_for(RecordingAdapter()))
    assert set(variants_of(sqlite_engine).values()) == {"ends_soon"}
    with Session(sqlite_engine) as s:
        assert set(s.scalars(select(LedgerRow.template))) == {"win_back/email_offer_urgent"}


def test_simulate_shows_the_split(sqlite_engine: Engine) -> None:
    b.reset_ids()
    lapsed_members(sqlite_engine, range(1, 81))
    days = simulate(sqlite_engine, ab_journey(), T0.replace(hour=0), 3, lambda a: services_for(a))
    rows = [d.row() for d in days]
    split = Counter()
    for row in rows:
        split.update(row["variants"])
    expected = Counter(assign(i, "ab_win_back", ARMS) for i in range(1, 81))
    assert split == expected and sum(sum(r["sent"].values()) for r in rows) == 80
    assert "variants" not in simulate(sqlite_engine, get_journey("welcome"), T0.replace(hour=0), 1, lambda a: services_for(a))[0].row()


# --- definition errors name the place --------------------------------------------------------------

def test_bad_variants_are_refused_with_file_and_line() -> None:
    with pytest.raises(ValueError, match=r"test_ab_variants\.py:\d+: variants need at least two"):
        send(email("win_back/email_offer"), variants={"only": 100})
    with pytest.raises(ValueError, match=r"test_ab_variants\.py:\d+: variant 'B' needs a name"):
        send(email("win_back/email_offer"), variants={"a": 50, "B": 50})
    with pytest.raises(ValueError, match="positive weight"):
        send(email("win_back/email_offer"), variants={"a": 50, "b": 0})
    with pytest.raises(ValueError, match="fallback chain needs template="):
        send(sms("win_back/sms_offer"), email("win_back/email_offer"),
             variants=[Variant("a"), Variant("b", template="win_back/email_offer_urgent")])
    with pytest.raises(ValueError, match="winner metric 'opens'"):
        send(email("win_back/email_offer"), variants={"a": 50, "b": 50}, winner=WinnerRule(metric="opens"))
    with pytest.raises(ValueError, match="journey 'two_tests'.*same names and weights"):
        Journey(name="two_tests", description="", version=1, purpose="marketing", audience="lapsed",
                steps=[send(email("win_back/email_offer"), variants={"a": 50, "b": 50}),
                       send(sms("win_back/sms_offer"), variants={"a": 70, "b": 30})])


def test_check_verifies_every_variant_template(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from templates.library import TemplateLibrary

    path = tmp_path / "ab.py"
    path.write_text(
        "from journeys.dsl import Journey, Variant, email, send\n"
        "JOURNEY = Journey(name='ab', description='', version=1, purpose='marketing', audience='lapsed',\n"
        "    occurrence_key='last_purchase_at', enrich=__import__('journeys.context_extras').context_extras.win_back_offer,\n"
        "    steps=[send(email('win_back/email_offer'), variants=[Variant('a'), Variant('b', template='win_back/nope')])])\n")
    problems = check_journeys([path], library=TemplateLibrary.load(eager=False))
    assert any(p.line == 4 and "win_back/nope" in p.message for p in problems), problems
    assert check_journeys(library=TemplateLibrary.load(eager=False)) == []  # the shipped win_back test is clean

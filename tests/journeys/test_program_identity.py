"""The program's identity comes from settings into every render: real sends, samples (preview,
gallery, check) and the channels' sender; a bad currency or locale is refused naming the variable."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from audiences.settings import ProgramSettings
from channels.adapters import MemoryAdapter
from channels.settings import ChannelSettings
from journeys.engine import tick
from journeys.registry import get_journey
from journeys.services import Services, services_for
from templates.samples import sample_context
from tests.audiences import builders

NOW = datetime(2027, 3, 26, 9, 0, tzinfo=timezone.utc)


@pytest.fixture()
def acme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOYALFLOW_PROGRAM_NAME", "Acme Club")
    monkeypatch.setenv("LOYALFLOW_SUPPORT_EMAIL", "help@acme.example")
    monkeypatch.setenv("LOYALFLOW_CURRENCY", "eur")
    monkeypatch.setenv("LOYALFLOW_EMAIL_FROM", "club@acme.example")


def test_a_real_send_shows_the_program_of_the_settings(acme: None, sqlite_engine: Engine) -> None:
    recorder = MemoryAdapter()
    services: Services = services_for(recorder)
    assert services.program["name"] == "Acme Club" and services.program["currency"] == "EUR"
    factory = sessionmaker(sqlite_engine, expire_on_commit=False)
    with factory() as s:
        builders.member(s, 1, enrolled_at=NOW - timedelta(hours=5), zone="Europe/Berlin", locale="de-DE")
        builders.member(s, 2, enrolled_at=NOW - timedelta(hours=5), zone="Europe/London", locale="en-GB")
        s.commit()
    tick(factory, get_journey("welcome"), NOW, services)
    by_member = {m.recipient_id: m.content for m in recorder.requests}
    assert "Acme Club" in by_member[1].subject and "1,00\xa0€" in by_member[1].text
    assert "€1.00" in by_member[2].text and "help@acme.example" in by_member[2].text
    assert "Loyalflow Rewards" not in by_member[1].html + by_member[2].html


def test_samples_for_preview_and_gallery_use_the_same_program(acme: None) -> None:
    program = sample_context("welcome", "fr")["program"]
    assert (program["name"], program["support_email"], program["currency"]) == ("Acme Club", "help@acme.example", "EUR")


def test_channels_take_the_sender_and_name_from_the_program(acme: None) -> None:
    settings = ChannelSettings()
    assert (settings.program_name, settings.email_from, settings.email_from_name, settings.support_email) == (
        "Acme Club", "club@acme.example", "Acme Club", "help@acme.example")
    assert ChannelSettings(email_from_name="Acme Team").email_from_name == "Acme Team"


def test_defaults_live_in_one_place() -> None:
    program = ProgramSettings()
    assert program.render_context()["support_email"] == program.email_from  # support falls back to the sender


@pytest.mark.parametrize(("variable", "value"), [("LOYALFLOW_CURRENCY", "EURO"), ("LOYALFLOW_DEFAULT_LOCALE", "xx-??")])
def test_a_bad_currency_or_locale_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str,
                                                                 value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=variable):
        ProgramSettings()


def test_tier_benefits_come_in_the_member_language(sqlite_engine: Engine) -> None:
    from audiences.models import Tier
    from journeys.context_extras import tier_benefits

    with sessionmaker(sqlite_engine)() as s:
        s.add(Tier(id=9, code="gold", name="Gold", rank=3, threshold_spend=1500,
                   benefits=[{"en": "Free express shipping", "fr": "Livraison express offerte",
                              "fr-CA": "Livraison express gratuite"}, "Concierge"]))
        s.commit()
        contexts = [{"tier_code": "gold", "locale": loc} for loc in ("fr-CA", "fr-FR", "ja-JP", "en-GB", None)]
        got = [c["benefits"] for c in tier_benefits(s, NOW, contexts)]
    assert got == [["Livraison express gratuite", "Concierge"], ["Livraison express offerte", "Concierge"],
                   ["Free express shipping", "Concierge"], ["Free express shipping", "Concierge"],
                   ["Free express shipping", "Concierge"]]

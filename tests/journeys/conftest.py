"""Journeys test fixtures: a recording adapter and Services wired to it (real templates and gate)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from channels.adapters.base import DeliveryResult, DeliveryStatus, OutgoingMessage
from journeys.services import Services, default_services


class Recorder:
    """An adapter that accepts everything and remembers what it was given, in order."""

    provider = "recorder"

    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []

    def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        self.sent.extend(messages)
        return [DeliveryResult(m.ledger_id, DeliveryStatus.accepted, f"id-{m.ledger_id}") for m in messages]


@pytest.fixture()
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture()
def services(recorder: Recorder) -> Services:
    """The real renderer and gate; every channel delivers to `recorder`."""
    return default_services(adapters={"email": recorder, "sms": recorder, "push": recorder})

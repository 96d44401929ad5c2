"""Settling unknown outcomes in the engine (journeys/settle.py), on SQLite and PostgreSQL.

A scripted adapter answers `unknown` for chosen ledger ids (a request sent, no answer) and can
carry a provider lookup; events are stored as the webhooks store them. Each evidence path is
checked: an event settles `sent` at once; without one the row waits out the hold as `unknown`
(a new SendStatus: the column is a non-native enum without a CHECK constraint, so PostgreSQL takes
it with no migration); then the lookup's `accepted` -> sent, `absent` -> sent again, nothing ->
failed `outcome_unknown`; a late event upgrades that failure; a row left `sending` by a crash
follows the same path. Nothing is ever requested twice unless the provider proved it absent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from channels.adapters import MemoryAdapter
from channels.adapters.base import DeliveryResult, DeliveryStatus, Evidence, OutgoingMessage, ProviderEvidence
from channels.feedback import record_delivery_event
from channels.settlement import fingerprint
from journeys.engine import tick
from journeys.models import Send, SendStatus
from journeys.registry import get_journey
from journeys.services import default_services
from journeys.settle import SETTLE_HOLD
from tests.reliability.support import NOW, populate

WELCOME_EMAIL = "welcome/email_welcome"


class ScriptedAdapter(MemoryAdapter):
    """The in-memory adapter answering `unknown` the first time for the ledger ids in `unknown`;
    `lookup` answers from what it "really" took (`taken`), as a provider's records would."""

    def __init__(self, unknown: set[int], taken_anyway: set[int], lookup: bool) -> None:
        super().__init__(self._answer, provider="scripted")
        self.unknown, self.taken_anyway = set(unknown), set(taken_anyway)
        self.taken: dict[int, OutgoingMessage] = {}
        self.lookups: list[str] = []
        if lookup:
            self.lookup = self._lookup  # only an adapter with a lookup has the attribute

    @property
    def requested(self) -> list[int]:
        return self.ledger_ids()

    def _answer(self, m: OutgoingMessage) -> DeliveryResult | None:
        if m.ledger_id in self.unknown:
            self.unknown.discard(m.ledger_id)
            if m.ledger_id in self.taken_anyway:
                self.taken[m.ledger_id] = m
            return DeliveryResult(m.ledger_id, DeliveryStatus.unknown, None, "timeout", "no answer")
        self.taken[m.ledger_id] = m
        return DeliveryResult(m.ledger_id, DeliveryStatus.accepted, f"id-{m.ledger_id}")

    def _lookup(self, to: str, mark: str, since: datetime) -> ProviderEvidence:
        self.lookups.append(to)
        for ledger_id, m in self.taken.items():
            if m.to == to and fingerprint(m.content) == mark:
                return ProviderEvidence(Evidence.accepted, f"id-{ledger_id}", "scripted")
        return ProviderEvidence(Evidence.absent, source="scripted")


def _statuses(engine: Engine) -> dict[int, tuple[str, str | None]]:
    with Session(engine) as s:
        return {i: (SendStatus(st).value, r) for i, st, r in
                s.execute(select(Send.id, Send.status, Send.reason).where(Send.template == WELCOME_EMAIL))}


def _run(engine: Engine, adapter: ScriptedAdapter, at: datetime) -> None:
    tick(sessionmaker(engine, expire_on_commit=False), get_journey("welcome"), at, default_services(
        adapters={"email": adapter}), chunk_size=50)


def test_each_kind_of_evidence_settles_an_unknown_outcome(engine: Engine) -> None:
    populate(engine, 12)
    # ledger ids follow enrollment order here: 1..12. 1,2: taken and evented; 3,4: taken, no event
    # (found by the lookup); 5,6: never taken (absent: sent again)
    adapter = ScriptedAdapter(unknown={1, 2, 3, 4, 5, 6}, taken_anyway={1, 2, 3, 4}, lookup=True)
    _run(engine, adapter, NOW)
    first = _statuses(engine)
    assert {i for i, (st, _) in first.items() if st == "unknown"} == {1, 2, 3, 4, 5, 6}
    assert all(reason.startswith("timeout:fp:") for st, reason in first.values() if st == "unknown")
    with Session(engine) as s:
        for ledger_id in (1, 2):
            record_delivery_event(s, provider="sendgrid", event="delivered", occurred_at=NOW, ledger_id=ledger_id,
                                  provider_message_id=f"sg-{ledger_id}", provider_event_id=f"e{ledger_id}")
        s.commit()
    _run(engine, adapter, NOW + timedelta(minutes=1))  # within the hold: events only, no lookup yet
    mid = _statuses(engine)
    assert mid[1][0] == mid[2][0] == "sent" and {mid[i][0] for i in (3, 4, 5, 6)} == {"unknown"}
    assert adapter.lookups == []
    _run(engine, adapter, NOW + SETTLE_HOLD + timedelta(minutes=1))
    final = _statuses(engine)
    assert Counter(st for st, _ in final.values()) == Counter({"sent": 12})
    assert len(adapter.lookups) == 4
    requests = Counter(adapter.requested)
    assert {i for i, n in requests.items() if n == 2} == {5, 6}, "only what the provider proved absent goes again"
    assert max(requests.values()) == 2 and len(adapter.taken) == 12
    with Session(engine) as s:
        ids = dict(s.execute(select(Send.id, Send.provider_message_id).where(Send.id.in_([1, 3]))).all())
    assert ids == {1: "sg-1", 3: "id-3"}


def test_without_a_lookup_no_evidence_fails_outcome_unknown_and_a_late_event_upgrades_it(engine: Engine) -> None:
    populate(engine, 6)
    adapter = ScriptedAdapter(unknown={2, 3}, taken_anyway={2}, lookup=False)  # SendGrid: no lookup
    _run(engine, adapter, NOW)
    _run(engine, adapter, NOW + SETTLE_HOLD + timedelta(minutes=1))
    after = _statuses(engine)
    assert after[2] == after[3] == ("failed", "outcome_unknown")
    assert Counter(adapter.requested) == Counter({i: 1 for i in range(1, 7)}), "an unknown outcome was resent"
    with Session(engine) as s:  # the webhook delivers the late event of the one SendGrid did take
        record_delivery_event(s, provider="sendgrid", event="delivered", occurred_at=NOW, ledger_id=2,
                              provider_message_id="sg-2", provider_event_id="late-2")
        s.commit()
    _run(engine, adapter, NOW + 2 * SETTLE_HOLD)
    final = _statuses(engine)
    assert final[2] == ("sent", None) and final[3] == ("failed", "outcome_unknown")


class Crash(Exception):
    """Stands in for the process dying inside the provider call."""


def test_rows_left_sending_by_a_crash_are_settled_from_the_provider_s_records(engine: Engine) -> None:
    populate(engine, 4)
    adapter = ScriptedAdapter(unknown=set(), taken_anyway=set(), lookup=True)
    real_send = adapter.send

    def dies_after_two(messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        adapter.send = real_send  # type: ignore[method-assign]
        real_send(messages[:2])  # the provider took two, then the worker died before recording anything
        raise Crash()

    adapter.send = dies_after_two  # type: ignore[method-assign]
    try:
        _run(engine, adapter, NOW)
    except Crash:
        pass
    assert Counter(st for st, _ in _statuses(engine).values()) == Counter({"sending": 4})
    _run(engine, adapter, NOW + timedelta(minutes=20))  # the lease ran out; the hold too
    final = _statuses(engine)
    assert Counter(st for st, _ in final.values()) == Counter({"sent": 4})
    assert sorted(Counter(adapter.requested).values()) == [1, 1, 1, 1], "a message the provider had went again"
    assert len(adapter.lookups) == 4

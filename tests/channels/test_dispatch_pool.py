"""The dispatcher's thread pool (channels/adapters/dispatch.py): all `concurrency` threads start together,
the first time a batch needs them, and every later batch reuses them (no thread started per send)."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

from channels.adapters.dispatch import Attempt, AttemptKind, Dispatcher, RetryPolicy
from channels.ratelimit import TokenBucket


def _messages(n: int, first: int = 1) -> list[Any]:
    return [SimpleNamespace(ledger_id=first + i) for i in range(n)]


def test_the_pool_starts_all_its_threads_before_the_first_send_and_keeps_them() -> None:
    dispatcher = Dispatcher("fake", TokenBucket(1e9, capacity=1e9), RetryPolicy(), concurrency=16)
    seen: list[tuple[int, int]] = []  # (ledger id, threads alive in the pool when it was sent)
    threads: set[int | None] = set()
    lock = threading.Lock()

    def attempt(message: Any) -> Attempt:
        with lock:
            threads.add(threading.get_ident())
            seen.append((message.ledger_id, sum(t.name.startswith("fake") for t in threading.enumerate())))
        return Attempt(AttemptKind.accepted, provider_message_id=f"m{message.ledger_id}")

    first = dispatcher.run(_messages(40), attempt)
    assert [r.provider_message_id for r in first] == [f"m{i}" for i in range(1, 41)]  # in order, all of them
    assert {alive for _, alive in seen} == {16}  # every thread was up before the first message left
    pool = {t.ident for t in threading.enumerate() if t.name.startswith("fake")}
    second = dispatcher.run(_messages(40, first=41), attempt)
    assert [r.ledger_id for r in second] == list(range(41, 81))
    assert threads <= pool == {t.ident for t in threading.enumerate() if t.name.startswith("fake")}  # the same 16

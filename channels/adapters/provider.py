"""What every provider adapter shares: construction (settings, rate bucket, retry policy, breaker,
thread pool) and the batch loop in which one recipient's bad message is that recipient's failure.

A subclass names its provider, its sender and rate settings, and writes two methods:
`prepare(message)` builds the request body (raising MessageRejected for this recipient only) and
`attempt(message, body)` makes one request and says what it did (an `Attempt`; the shared HTTP
ladder is `dispatch.classify_http`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from channels.adapters.base import DeliveryResult, DeliveryStatus, OutgoingMessage
from channels.adapters.breaker import CircuitBreaker
from channels.adapters.dispatch import Attempt, Dispatcher, RetryPolicy
from channels.errors import MessageRejected, ProviderConfigError
from channels.ratelimit import TokenBucket, bucket_for
from channels.settings import ChannelSettings

log = logging.getLogger("loyalflow.channels")


class ProviderAdapter:
    provider: ClassVar[str]
    required: ClassVar[tuple[str, ...]] = ()
    """Settings that must be present; missing ones fail construction with their names."""

    def __init__(
        self,
        settings: ChannelSettings,
        *,
        bucket: TokenBucket | None = None,
        sleep: Callable[[float], None] | None = None,
        wall_clock: Callable[[], float] = time.time,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        if self.required:
            settings.require(*self.required)
        self.settings = settings
        self._local = threading.local()
        self._wall = wall_clock
        self.dispatcher = Dispatcher(
            self.provider,
            bucket or bucket_for(self.provider, self.sender(), self.rate()),
            RetryPolicy(settings.max_attempts, settings.backoff_base_seconds, settings.backoff_max_seconds),
            settings.concurrency,
            sleep,
            breaker,
        )

    @property
    def breaker(self) -> CircuitBreaker:
        return self.dispatcher.breaker

    def sender(self) -> str:
        raise NotImplementedError

    def rate(self) -> float:
        raise NotImplementedError

    def prepare(self, message: OutgoingMessage) -> Any:
        raise NotImplementedError

    def attempt(self, message: OutgoingMessage, body: Any) -> Attempt:
        raise NotImplementedError

    def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        """One result per message, in order; bodies are built first, and a message whose body cannot
        be built fails alone (permanent, its code as the reason) while the others go."""
        bodies: dict[int, Any] = {}
        refused: dict[int, DeliveryResult] = {}
        for message in messages:
            try:
                bodies[message.ledger_id] = self.prepare(message)
            except MessageRejected as exc:
                refused[message.ledger_id] = DeliveryResult(message.ledger_id, DeliveryStatus.permanent, None,
                                                            exc.code, exc.code)
            except Exception as exc:  # a bug for one recipient is that recipient's failure
                log.error("%s: ledger %s: %s while building the request", self.provider, message.ledger_id,
                          type(exc).__name__)
                refused[message.ledger_id] = DeliveryResult(message.ledger_id, DeliveryStatus.permanent, None,
                                                            "build_error", type(exc).__name__)
        sendable = [m for m in messages if m.ledger_id in bodies]
        try:
            results = self.dispatcher.run(sendable, lambda m: self.attempt(m, bodies[m.ledger_id]))
        except ProviderConfigError as exc:
            exc.results = list(refused.values()) + exc.results
            raise
        by_id = {r.ledger_id: r for r in results} | refused
        return [by_id[m.ledger_id] for m in messages if m.ledger_id in by_id]

"""A circuit breaker per provider adapter: a provider that is down costs a few requests, not one per message.

closed: requests go; `threshold` consecutive transport failures (refused or lost connections,
timeouts) open it. An HTTP answer of any status is a success (the provider is there) and resets
the count; a failure of a request that started before the latest success says nothing new (the
provider answered since: it is slow, not down) and is not counted, so the slow tail of a batch on a
loaded host does not trip it, while a provider that stops answering does within `threshold` requests.
open: no request goes for `cooldown` seconds; the adapter answers retryable for every message.
half-open: after the cool-down one trial request goes while the other senders wait for its answer
(at most `trial_wait` seconds); its success closes the circuit and they all go, its failure opens it
for another cool-down. The clock is injectable for tests.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable


class CircuitState(str, enum.Enum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


class CircuitBreaker:
    def __init__(self, threshold: int = 3, cooldown: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 trial_wait: float = 30.0) -> None:
        if threshold < 1 or cooldown < 0:
            raise ValueError(f"threshold must be >= 1 and cooldown >= 0, got {threshold}, {cooldown}")
        self.threshold = threshold
        self.cooldown = cooldown
        self.trial_wait = trial_wait
        self._clock = clock
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._state = CircuitState.closed
        self._failures = 0
        self._last_success = float("-inf")
        self._opened_at = 0.0
        self._trial = False
        self.opened = 0
        """How many times it opened (for tests and reports)."""

    def now(self) -> float:
        return self._clock()

    @property
    def state(self) -> CircuitState:
        with self._lock:
            return self._state

    def allow(self) -> bool:
        """May a request go now? In half-open the one trial goes; the others wait for its answer."""
        with self._lock:
            waited = False
            while True:
                if self._state is CircuitState.closed:
                    return True
                if self._state is CircuitState.open:
                    if waited or self._clock() - self._opened_at < self.cooldown:
                        return False
                    self._state, self._trial = CircuitState.half_open, False
                if not self._trial:
                    self._trial = True
                    return True
                if waited:
                    return False
                self._settled.wait(self.trial_wait)
                waited = True

    def succeeded(self) -> None:
        """An answer came (whatever its status): the provider is reachable."""
        with self._lock:
            self._state, self._failures, self._trial = CircuitState.closed, 0, False
            self._last_success = self._clock()
            self._settled.notify_all()

    def abandon(self) -> None:
        """A request allowed through was not made after all: a half-open trial slot is free again."""
        with self._lock:
            if self._state is CircuitState.half_open and self._trial:
                self._trial = False
                self._settled.notify_all()

    def failed(self, started_at: float | None = None) -> None:
        """No answer (refused, reset or timed out) to a request that started at `started_at`."""
        with self._lock:
            if started_at is not None and started_at < self._last_success and self._state is CircuitState.closed:
                return  # the provider answered another request since this one started
            self._failures += 1
            if self._state is CircuitState.half_open or (
                self._state is CircuitState.closed and self._failures >= self.threshold
            ):
                self._state, self._opened_at, self._trial = CircuitState.open, self._clock(), False
                self._failures = 0
                self.opened += 1
                self._settled.notify_all()

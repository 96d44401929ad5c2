"""A token bucket per (provider, sender): providers throttle per account and per sending number.

Thread-safe and fair: each caller reserves the next token under the lock (the balance may go
negative) and sleeps outside it for exactly as long as its reservation needs, so N threads share
the configured rate without busy-waiting or bursts. Clock and sleep are injectable for tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = float(rate)
        self.capacity = float(capacity) if capacity is not None else max(1.0, self.rate / 10)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def reserve(self, tokens: float = 1.0) -> float:
        """Take `tokens` now; return how many seconds the caller must wait before using them."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= tokens
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self, tokens: float = 1.0) -> float:
        """Block until `tokens` may be used; returns the time waited."""
        wait = self.reserve(tokens)
        if wait > 0:
            self._sleep(wait)
        return wait


_buckets: dict[tuple[str, str], TokenBucket] = {}
_buckets_lock = threading.Lock()


def bucket_for(provider: str, sender: str, rate: float) -> TokenBucket:
    """The process-wide bucket of one provider and sender, so every adapter instance shares it."""
    with _buckets_lock:
        bucket = _buckets.get((provider, sender))
        if bucket is None or bucket.rate != rate:
            bucket = _buckets[(provider, sender)] = TokenBucket(rate)
        return bucket

"""Sending a batch: bounded concurrency, the rate limit, retries with backoff, and the stop on 401/403.

Each provider adapter only says what one attempt did (an `Attempt`); this module decides what
happens next, the same way for every provider:
- accepted / permanent: done;
- unknown (the request went out and no answer came back): done, never retried here; the engine
  settles it from evidence (channels.settlement) before anything is sent again;
- retry: wait (the provider's reset header when given, else exponential backoff with jitter) and
  try again, up to `max_attempts`; a reset longer than `max_delay` ends the tries at once;
- config (401/403): set the stop flag so no thread starts another request, then raise
  ProviderConfigError carrying the results settled so far;
- a circuit breaker per adapter (channels.adapters.breaker): while a provider is unreachable the
  remaining messages come back retryable with `handed_over=False`, without a request each.
An exception raised for one message is that message's failure, never the batch's.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum

from channels.adapters.base import DeliveryResult, DeliveryStatus, OutgoingMessage
from channels.adapters.breaker import CircuitBreaker
from channels.errors import MessageRejected, ProviderConfigError
from channels.ratelimit import TokenBucket


log = logging.getLogger("loyalflow.channels")


class AttemptKind(str, Enum):
    accepted = "accepted"
    permanent = "permanent"
    retry = "retry"
    config = "config"
    unknown = "unknown"


@dataclass(frozen=True, slots=True)
class Attempt:
    kind: AttemptKind
    provider_message_id: str | None = None
    error_code: str | None = None
    reason: str | None = None
    retry_after: float | None = None
    http_status: int | None = None
    suppression: str | None = None
    revoke_token: bool = False
    transport: bool = False
    """No HTTP answer came (refused, reset, timed out): counts towards opening the circuit."""


def not_sent(exc: BaseException) -> Attempt:
    """The request never (completely) left: refused, unreachable, connect timeout. Safe to retry."""
    return Attempt(AttemptKind.retry, error_code="network", reason=f"network error: {type(exc).__name__}", transport=True)


def answer_lost(exc: BaseException) -> Attempt:
    """The request went out and the answer did not come: the provider may have taken it."""
    code = "timeout" if isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower() else "connection_lost"
    return Attempt(AttemptKind.unknown, error_code=code, reason=f"no answer: {type(exc).__name__}", transport=True)


def classify_http(status: int, code: str, reason: str, retry_after: float | None = None) -> Attempt:
    """The ladder every provider shares for an HTTP error answer: 401/403 -> configuration failure,
    429 and 5xx -> retry (honouring the reset), any other 4xx -> permanent."""
    if status in (401, 403):
        return Attempt(AttemptKind.config, error_code=code, reason=reason, http_status=status)
    if status == 429 or status >= 500:
        return Attempt(AttemptKind.retry, error_code=code, reason=f"HTTP {status}", retry_after=retry_after,
                       http_status=status)
    return Attempt(AttemptKind.permanent, error_code=code, reason=reason, http_status=status)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before the next try, or None to give up now."""
        if attempt >= self.max_attempts:
            return None
        if retry_after is not None:
            return max(0.0, retry_after) if retry_after <= self.max_delay else None
        return min(self.max_delay, self.base_delay * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


def reset_delay(headers: Mapping[str, str] | None, now: float) -> float | None:
    """Seconds until the provider says to come back: Retry-After (seconds or HTTP date) or
    X-RateLimit-Reset (a Unix time, as SendGrid sends it; small values are read as seconds)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get("retry-after")
    if value is not None:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return max(0.0, when.timestamp() - now)
    value = lowered.get("x-ratelimit-reset")
    if value is not None:
        try:
            reset = float(value.strip())
        except ValueError:
            return None
        return max(0.0, reset - now) if reset > 1_000_000_000 else max(0.0, reset)
    return None


class Dispatcher:
    def __init__(
        self,
        provider: str,
        bucket: TokenBucket,
        policy: RetryPolicy,
        concurrency: int,
        sleep: Callable[[float], None] | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.provider = provider
        self.breaker = breaker or CircuitBreaker()
        self.bucket = bucket
        self.policy = policy
        self.concurrency = max(1, concurrency)
        self._sleep = sleep
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()

    def _pool(self) -> ThreadPoolExecutor:
        """One pool for the adapter's life: starting `concurrency` threads per batch cost more than the
        batch's own CPU, and kept threads keep their HTTP connections. All its threads start at once, the
        first time it is needed: started one by one as sends arrive, each start waited for the new thread
        to get the GIL from threads already sending (up to a switch interval each: 8% of a busy worker's
        main thread with 128 threads)."""
        with self._executor_lock:
            if self._executor is None:
                pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=self.provider)
                started = threading.Barrier(self.concurrency + 1)
                try:
                    for _ in range(self.concurrency):  # each waits at the barrier: the next submit needs a new thread
                        pool.submit(started.wait)
                except BaseException:  # no thread to be had: free the ones waiting, then say so
                    started.abort()
                    pool.shutdown(wait=False)
                    raise
                started.wait()
                self._executor = pool
            return self._executor

    def _fan_out(self, messages: Sequence[OutgoingMessage],
                 one: Callable[[OutgoingMessage], DeliveryResult | None]) -> list[DeliveryResult | None]:
        """`one` over every message on up to `concurrency` pool threads, results in order. Each thread
        takes the next index until none is left: one task per thread rather than a Future per message
        (a Future, its Condition and a queue hand-off per message cost ~6% of a tick's CPU)."""
        results: list[DeliveryResult | None] = [None] * len(messages)
        indexes = iter(range(len(messages)))
        take = threading.Lock()

        def drain() -> None:
            while True:
                with take:
                    i = next(indexes, None)
                if i is None:
                    return
                results[i] = one(messages[i])

        pool = self._pool()
        for task in [pool.submit(drain) for _ in range(min(self.concurrency, len(messages)))]:
            task.result()  # re-raises what escaped `one` (it catches the attempt's own errors)
        return results

    def run(self, messages: Sequence[OutgoingMessage], attempt: Callable[[OutgoingMessage], Attempt]) -> list[DeliveryResult]:
        """One result per message in order, unless a configuration failure stopped the run."""
        stop = threading.Event()
        failure: list[Attempt] = []

        def wait(seconds: float) -> None:
            if self._sleep is not None:
                self._sleep(seconds)
            else:
                stop.wait(seconds)

        def one(message: OutgoingMessage) -> DeliveryResult | None:
            tries = 0
            while True:
                if stop.is_set():
                    return None  # never sent: the caller sees it missing from the results
                if not self.breaker.allow():
                    return DeliveryResult(message.ledger_id, DeliveryStatus.retryable, None, "circuit_open",
                                          f"{self.provider} unreachable: circuit open", handed_over=tries > 0)
                self.bucket.acquire()
                if stop.is_set():
                    self.breaker.abandon()  # if this was the half-open trial, let another go
                    return None
                tries += 1
                started = self.breaker.now()
                try:
                    outcome = attempt(message)
                except MessageRejected as exc:  # this recipient's message cannot be built: its failure only
                    outcome = Attempt(AttemptKind.permanent, error_code=exc.code, reason=exc.code)
                except Exception as exc:  # a bug here must not lose the other messages' results
                    log.error("%s: ledger %s: unexpected %s while sending", self.provider, message.ledger_id,
                              type(exc).__name__)
                    # unknown, not retryable: the provider may have taken it before the error
                    outcome = Attempt(AttemptKind.unknown, error_code="adapter_error", reason=type(exc).__name__)
                if outcome.transport:
                    self.breaker.failed(started)
                else:  # an answer came, or a bug that says nothing against the provider
                    self.breaker.succeeded()
                if outcome.kind is AttemptKind.config:
                    failure.append(outcome)
                    stop.set()
                    return None
                if outcome.kind is AttemptKind.accepted:
                    return DeliveryResult(message.ledger_id, DeliveryStatus.accepted, outcome.provider_message_id)
                if outcome.kind in (AttemptKind.permanent, AttemptKind.unknown):
                    status = DeliveryStatus.permanent if outcome.kind is AttemptKind.permanent else DeliveryStatus.unknown
                    return DeliveryResult(
                        message.ledger_id,
                        status,
                        outcome.provider_message_id,
                        outcome.error_code,
                        outcome.reason,
                        outcome.suppression,
                        outcome.revoke_token,
                    )
                delay = self.policy.delay(tries, outcome.retry_after)
                if delay is None:
                    return DeliveryResult(
                        message.ledger_id,
                        DeliveryStatus.retryable,
                        None,
                        outcome.error_code,
                        f"{outcome.reason} (gave up after {tries} attempts)",
                    )
                wait(delay)

        if self.concurrency == 1 or len(messages) <= 1:
            results = [one(m) for m in messages]
        else:
            results = self._fan_out(messages, one)
        if failure:
            first = failure[0]
            raise ProviderConfigError(
                self.provider,
                first.http_status or 0,
                first.reason or "unauthorised",
                [r for r in results if r is not None],
                [m.ledger_id for m, r in zip(messages, results) if r is None],
            )
        return [r for r in results if r is not None]

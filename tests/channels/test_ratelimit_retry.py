"""Token bucket and retry timing, on an injected clock (no real waiting)."""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from channels.adapters.dispatch import RetryPolicy, reset_delay
from channels.ratelimit import TokenBucket, bucket_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_spaces_requests_at_the_rate_after_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, capacity=2, clock=clock)
    waits = [bucket.reserve() for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.0, 0.1, 0.2, 0.3])
    clock.now = 1.0  # a second later: the debt of 3 tokens is repaid and 2 are banked (capacity)
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.0, 0.0, 0.1])


def test_bucket_over_a_long_run_holds_the_rate_exactly() -> None:
    clock = FakeClock()
    bucket = TokenBucket(50, capacity=1, clock=clock)
    last = 0.0
    for _ in range(1000):
        wait = bucket.reserve()
        last = clock.now + wait
    assert last == pytest.approx(999 / 50)


def test_bucket_is_shared_per_provider_and_sender_and_rejects_bad_rates() -> None:
    assert bucket_for("sendgrid", "a@x", 5) is bucket_for("sendgrid", "a@x", 5)
    assert bucket_for("sendgrid", "a@x", 5) is not bucket_for("sendgrid", "b@x", 5)
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0)


def test_reset_headers() -> None:
    now = 1_800_000_000.0
    assert reset_delay({"Retry-After": "7"}, now) == 7.0
    assert reset_delay({"retry-after": format_datetime(datetime.fromtimestamp(now + 30, timezone.utc), usegmt=True)}, now) == 30.0
    assert reset_delay({"X-RateLimit-Reset": str(int(now) + 12)}, now) == 12.0
    assert reset_delay({"X-RateLimit-Reset": "4"}, now) == 4.0
    assert reset_delay({"X-RateLimit-Reset": "soon"}, now) is None
    assert reset_delay({}, now) is None


def test_retry_policy_backs_off_and_gives_up() -> None:
    policy = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=5.0)
    assert policy.delay(1, 3.0) == 3.0  # the provider's reset wins
    assert policy.delay(1, 60.0) is None  # longer than we wait inside one run: the engine retries later
    assert 0.5 <= policy.delay(1, None) <= 1.0
    assert 2.0 <= policy.delay(3, None) <= 4.0
    assert policy.delay(4, None) is None

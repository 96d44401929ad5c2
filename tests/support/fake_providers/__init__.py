"""Fake SendGrid, Twilio and FCM (with its OAuth2 token endpoint) on 127.0.0.1 ephemeral ports.

Each runs in a background thread, answers as the provider documents, takes scripted faults and
records every request, so tests (and later benchmarks and reliability checks) can assert what was
really sent, and that nothing was sent twice.
"""

from tests.support.fake_providers.fcm import FakeFcm, fcm_error, quota_exceeded, unavailable
from tests.support.fake_providers.sendgrid import FakeSendGrid
from tests.support.fake_providers.server import FakeProvider, Fault, Received, slow_answer
from tests.support.fake_providers.twilio import FakeTwilio, twilio_error

__all__ = [
    "FakeFcm",
    "FakeProvider",
    "FakeSendGrid",
    "FakeTwilio",
    "Fault",
    "Received",
    "fcm_error",
    "quota_exceeded",
    "slow_answer",
    "twilio_error",
    "unavailable",
]

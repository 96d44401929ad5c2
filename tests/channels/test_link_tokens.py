"""The compact HMAC link tokens: what they claim, what they refuse, and the earlier format still read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from itsdangerous import URLSafeTimedSerializer
from pydantic import SecretStr

from channels.settings import ChannelSettings
from channels.unsubscribe import (
    SALT,
    InvalidUnsubscribeToken,
    make_token,
    read_token,
    signed_links,
)

SETTINGS = ChannelSettings(_env_file=None, unsubscribe_secret=SecretStr("link-secret"),
                           public_base_url="https://loyalflow.test")


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_both_links_of_a_recipient_read_back_as_their_own_claims() -> None:
    links = signed_links(SETTINGS)("staff", 7, "sms", "marketing")
    unsubscribe, preferences = token_of(links["unsubscribe_url"]), token_of(links["preferences_url"])
    assert links["unsubscribe_url"] == f"https://loyalflow.test/unsubscribe/7/{unsubscribe}"
    assert links["preferences_url"] == f"https://loyalflow.test/preferences/7/{preferences}"
    claim = read_token(SETTINGS, unsubscribe, 7)
    assert (claim.recipient_kind, claim.recipient_id, claim.channel) == ("staff", 7, "sms")
    assert read_token(SETTINGS, preferences, 7).channel == "*"
    assert len(unsubscribe) < 40  # compact: the itsdangerous token was ~90 characters


def test_a_token_made_by_make_token_and_by_signed_links_agree() -> None:
    with freeze_time("2026-11-23 12:00:00"):
        made = make_token(SETTINGS, 42, "email")
        linked = token_of(signed_links(SETTINGS)("member", 42, "email", "marketing")["unsubscribe_url"])
    assert made == linked


def test_a_changed_secret_revokes_every_token() -> None:
    token = make_token(SETTINGS, 5, "email")
    rotated = SETTINGS.model_copy(update={"unsubscribe_secret": SecretStr("rotated")})
    with pytest.raises(InvalidUnsubscribeToken) as refused:
        read_token(rotated, token, 5)
    assert refused.value.code == "invalid"


@pytest.mark.parametrize("change", [
    lambda t: "s" + t[1:],                   # kind member -> staff
    lambda t: t[0] + "s" + t[2:],            # channel email -> sms
    lambda t: t[:2] + "0" + t[3:],           # issued earlier
    lambda t: t.upper(),                     # same hex value, other text
    lambda t: t + "A",
    lambda t: t.replace(".", ""),
])
def test_any_change_to_a_token_is_refused(change) -> None:  # type: ignore[no-untyped-def]
    token = make_token(SETTINGS, 5, "email")
    with pytest.raises(InvalidUnsubscribeToken):
        read_token(SETTINGS, change(token), 5)


def test_expiry_is_to_the_second_and_future_tokens_are_refused() -> None:
    issued = datetime(2026, 6, 1, tzinfo=UTC)
    with freeze_time(issued):
        token = make_token(SETTINGS, 9, "push")
    max_age = timedelta(days=SETTINGS.unsubscribe_token_max_age_days)
    with freeze_time(issued + max_age):
        assert read_token(SETTINGS, token, 9).channel == "push"
    with freeze_time(issued + max_age + timedelta(seconds=1)), pytest.raises(InvalidUnsubscribeToken) as expired:
        read_token(SETTINGS, token, 9)
    assert expired.value.code == "expired"
    with freeze_time(issued - timedelta(seconds=1)), pytest.raises(InvalidUnsubscribeToken) as future:
        read_token(SETTINGS, token, 9)
    assert future.value.code == "invalid"


def test_links_in_emails_sent_before_still_work_until_they_expire() -> None:
    old = URLSafeTimedSerializer("link-secret", salt=SALT)
    with freeze_time("2026-11-01"):
        legacy = old.dumps({"k": "member", "r": 3, "c": "email"})
    with freeze_time("2026-11-23"):
        claim = read_token(SETTINGS, legacy, 3)
        assert (claim.recipient_kind, claim.recipient_id, claim.channel) == ("member", 3, "email")
        with pytest.raises(InvalidUnsubscribeToken):
            read_token(SETTINGS, legacy, 4)
    with freeze_time("2027-02-01"), pytest.raises(InvalidUnsubscribeToken) as expired:
        read_token(SETTINGS, legacy, 3)
    assert expired.value.code == "expired"


def test_an_unknown_kind_or_channel_gets_no_token() -> None:
    with pytest.raises(ValueError, match="kind 'store'"):
        make_token(SETTINGS, 1, "email", "store")
    with pytest.raises(ValueError, match="channel 'fax'"):
        signed_links(SETTINGS)("member", 1, "fax", "marketing")

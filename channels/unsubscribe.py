"""Signed, tamper-proof unsubscribe and preference links (itsdangerous, HMAC with a secret).

A token names the member, the channel ("*" for the preference page) and is timestamped, so a
tampered, expired or other member's token is refused. Links carry the member id in the path too,
and the two must agree.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from channels.errors import ChannelsError
from channels.settings import ChannelSettings

SALT = "loyalflow-unsubscribe-v1"
ALL_CHANNELS = "*"


class InvalidUnsubscribeToken(ChannelsError):
    """The link was altered, has expired, or belongs to someone else."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code  # "expired" or "invalid": which sentence the member page shows


@dataclass(frozen=True, slots=True)
class UnsubscribeClaim:
    recipient_kind: str
    recipient_id: int
    channel: str


def _serializer(settings: ChannelSettings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret("unsubscribe_secret"), salt=SALT)


def make_token(settings: ChannelSettings, recipient_id: int, channel: str, recipient_kind: str = "member") -> str:
    return _serializer(settings).dumps({"k": recipient_kind, "r": recipient_id, "c": channel})


def read_token(settings: ChannelSettings, token: str, recipient_id: int) -> UnsubscribeClaim:
    max_age = settings.unsubscribe_token_max_age_days * 86400
    try:
        data = _serializer(settings).loads(token, max_age=max_age)
    except SignatureExpired:
        raise InvalidUnsubscribeToken("this link has expired", "expired") from None
    except BadSignature:
        raise InvalidUnsubscribeToken("this link is not valid") from None
    if not isinstance(data, dict) or data.get("r") != recipient_id:
        raise InvalidUnsubscribeToken("this link is not valid")
    return UnsubscribeClaim(str(data.get("k")), int(data["r"]), str(data.get("c")))


def form_token(settings: ChannelSettings, page_token: str) -> str:
    """The hidden field of a page's form: an HMAC of the page's own signed token, so a form posted
    to one member's link needs that link's page (a made-up or another link's value is refused)."""
    key = hashlib.sha256(b"loyalflow-form-v1|" + settings.secret("unsubscribe_secret").encode()).digest()
    digest = hmac.new(key, page_token.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode()


def valid_form_token(settings: ChannelSettings, page_token: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(form_token(settings, page_token), str(given))


def unsubscribe_url(settings: ChannelSettings, recipient_id: int, channel: str, recipient_kind: str = "member") -> str:
    base = settings.public_base_url.rstrip("/")
    return f"{base}/unsubscribe/{recipient_id}/{make_token(settings, recipient_id, channel, recipient_kind)}"


def preferences_url(settings: ChannelSettings, recipient_id: int, recipient_kind: str = "member") -> str:
    base = settings.public_base_url.rstrip("/")
    return f"{base}/preferences/{recipient_id}/{make_token(settings, recipient_id, ALL_CHANNELS, recipient_kind)}"


def signed_links(settings: ChannelSettings, app_url: str = "loyalflow://home") -> Callable[[str, int, str, str], dict[str, str]]:
    """The render context's `links` for one recipient: (kind, recipient_id, channel, purpose) -> urls."""

    def links(kind: str, recipient_id: int, channel: str, purpose: str) -> dict[str, str]:
        return {
            "unsubscribe_url": unsubscribe_url(settings, recipient_id, channel, kind),
            "preferences_url": preferences_url(settings, recipient_id, kind),
            "app_url": app_url,
        }

    return links

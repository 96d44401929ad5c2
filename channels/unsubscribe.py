"""Signed, tamper-proof unsubscribe and preference links (HMAC-SHA256 with a secret).

A token names the recipient's kind, the channel ("*" for the preference page) and when it was
issued, and carries a MAC over those and the recipient id (which the link's path carries), so a
tampered, expired or other member's token is refused. The token is compact and cheap (a few µs:
two are made for every message): `<kind><channel><issued, hex seconds>.<MAC, 18 bytes base64url>`.
Revocation: change LOYALFLOW_UNSUBSCRIBE_SECRET (every token made with the old one is refused).
Tokens of the earlier itsdangerous format, in emails sent before this one, still read until they expire.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

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


KINDS = {"member": "m", "staff": "s"}
CHANNELS = {"email": "e", "sms": "s", "push": "p", ALL_CHANNELS: "a"}
_KIND_OF = {v: k for k, v in KINDS.items()}
_CHANNEL_OF = {v: k for k, v in CHANNELS.items()}
_TOKEN = re.compile(r"([ms])([espa])([0-9a-f]{1,12})\.([A-Za-z0-9_-]{24})")
MAC_DOMAIN = b"loyalflow-unsubscribe-v2|"


def _serializer(settings: ChannelSettings) -> URLSafeTimedSerializer:
    """The earlier format's reader (tokens in emails already sent)."""
    return URLSafeTimedSerializer(settings.secret("unsubscribe_secret"), salt=SALT)


@lru_cache(maxsize=8)
def _keyed(secret: str) -> bytes:
    """The MAC key for a secret, derived once (its own key, apart from the form tokens')."""
    return hashlib.sha256(MAC_DOMAIN + secret.encode()).digest()


def _mac(key: bytes, recipient_id: int, head: str) -> str:
    digest = hmac.digest(key, b"%s%d|%s" % (MAC_DOMAIN, recipient_id, head.encode()), "sha256")
    return base64.urlsafe_b64encode(digest[:18]).decode()


def _token(keyed: bytes, recipient_id: int, channel: str, recipient_kind: str, issued: int) -> str:
    if recipient_kind not in KINDS or channel not in CHANNELS:
        raise ValueError(f"no unsubscribe token for kind {recipient_kind!r}, channel {channel!r}")
    head = f"{KINDS[recipient_kind]}{CHANNELS[channel]}{issued:x}"
    return f"{head}.{_mac(keyed, recipient_id, head)}"


def make_token(settings: ChannelSettings, recipient_id: int, channel: str, recipient_kind: str = "member") -> str:
    return _token(_keyed(settings.secret("unsubscribe_secret")), recipient_id, channel, recipient_kind,
                  int(time.time()))


def read_token(settings: ChannelSettings, token: str, recipient_id: int) -> UnsubscribeClaim:
    max_age = settings.unsubscribe_token_max_age_days * 86400
    found = _TOKEN.fullmatch(token)
    if found is None:
        return _read_legacy(settings, token, recipient_id, max_age)
    kind, channel, issued, mac = found.groups()
    head = token.partition(".")[0]
    expected = _mac(_keyed(settings.secret("unsubscribe_secret")), recipient_id, head)
    if not hmac.compare_digest(expected, mac):
        raise InvalidUnsubscribeToken("this link is not valid")
    age = int(time.time()) - int(issued, 16)
    if age < 0:  # from the future: not one of ours
        raise InvalidUnsubscribeToken("this link is not valid")
    if age > max_age:
        raise InvalidUnsubscribeToken("this link has expired", "expired")
    return UnsubscribeClaim(_KIND_OF[kind], recipient_id, _CHANNEL_OF[channel])


def _read_legacy(settings: ChannelSettings, token: str, recipient_id: int, max_age: int) -> UnsubscribeClaim:
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
    """The render context's `links` for one recipient: (kind, recipient_id, channel, purpose) -> urls.
    Both tokens share one issue instant and the HMAC keyed once (a few µs per recipient)."""
    base = settings.public_base_url.rstrip("/")
    keys: list[bytes] = []

    def links(kind: str, recipient_id: int, channel: str, purpose: str) -> dict[str, str]:
        if not keys:  # on first use, as before: a missing secret fails the send that needs it, by name
            keys.append(_keyed(settings.secret("unsubscribe_secret")))
        keyed, issued = keys[0], int(time.time())
        return {
            "unsubscribe_url": f"{base}/unsubscribe/{recipient_id}/{_token(keyed, recipient_id, channel, kind, issued)}",
            "preferences_url":
                f"{base}/preferences/{recipient_id}/{_token(keyed, recipient_id, ALL_CHANNELS, kind, issued)}",
            "app_url": app_url,
        }

    return links

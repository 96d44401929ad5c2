"""Survey and bulletin-read links, and recording what they (or an SMS reply) answer.

A link carries a token naming one message (its ledger id), its recipient, journey, step and the
survey's scale, signed with HMAC-SHA256 under a key from the environment
(`LOYALFLOW_LINK_SECRET`, else `LOYALFLOW_UNSUBSCRIBE_SECRET`). An altered token, one signed under
another key, or one older than `LOYALFLOW_SURVEY_LINK_MAX_AGE_DAYS` is refused: nothing is recorded.
The score is a separate path segment (one link per score, one tap), checked against the signed scale.

One answer per message: a second answer (another tap, the comment form, an SMS reply) updates it,
and the change is counted (`revisions`, `previous_score`). A read is recorded once per message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from channels.errors import ChannelsError, ChannelSettingsError
from channels.settings import ChannelSettings
from channels.survey_models import BulletinRead, SurveyAnswer, SurveyInvite

SURVEY, READ = "s", "r"
NPS_SCALE = (0, 10)
PULSE_SCALE = (1, 5)
COMMENT_LIMIT = 2000
SMS_REPLY_WINDOW = timedelta(days=14)
"""An SMS reply answers a survey SMS sent to that number at most this long ago."""
_VERSION = "1"
_EPOCH_DAY = 86400


class InvalidSurveyLink(ChannelsError):
    """A survey or read link was altered, signed under another key, or has expired."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code  # "invalid" or "expired": which sentence the refused page shows


class LinkSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOYALFLOW_", extra="ignore")

    link_secret: SecretStr | None = None
    survey_link_max_age_days: int = 90


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """What a signed link says: which message, to whom, and (for a survey) its scale."""

    kind: str
    """SURVEY or READ."""
    ledger_id: int
    recipient_kind: str
    recipient_id: int
    journey: str
    step: str
    scale_min: int = 0
    scale_max: int = 0
    issued_day: int = 0
    """Days since the epoch when the link was made (its age is checked against the maximum)."""


def link_secret(settings: ChannelSettings) -> str:
    """The signing secret: LOYALFLOW_LINK_SECRET, else the unsubscribe links' secret."""
    own = LinkSettings().link_secret
    if own is not None and own.get_secret_value():
        return own.get_secret_value()
    if settings.unsubscribe_secret is not None and settings.unsubscribe_secret.get_secret_value():
        return settings.unsubscribe_secret.get_secret_value()
    raise ChannelSettingsError("missing settings: LOYALFLOW_LINK_SECRET (or LOYALFLOW_UNSUBSCRIBE_SECRET)")


def _key(secret: str) -> bytes:
    return hashlib.sha256(b"loyalflow-survey-link-v1|" + secret.encode()).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(secret: str, claim: LinkClaim, now: datetime) -> str:
    body = [_VERSION, claim.kind, claim.ledger_id, claim.recipient_kind, claim.recipient_id, claim.journey,
            claim.step, claim.scale_min, claim.scale_max, int(now.timestamp()) // _EPOCH_DAY]
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    return f"{payload}.{_b64(hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest()[:18])}"


def read_token(secret: str, token: str, now: datetime, max_age_days: int | None = None) -> LinkClaim:
    """The claim of a genuine, unexpired token; InvalidSurveyLink otherwise (nothing else is trusted)."""
    payload, _, signature = token.partition(".")
    if not payload or not signature or len(token) > 600 or not token.isascii():
        raise InvalidSurveyLink("this link is not valid")
    expected = _b64(hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest()[:18])
    if not hmac.compare_digest(expected, signature):
        raise InvalidSurveyLink("this link is not valid")
    try:
        version, kind, ledger_id, rkind, rid, journey, step, lo, hi, day = json.loads(_unb64(payload))
    except (ValueError, TypeError):
        raise InvalidSurveyLink("this link is not valid") from None
    if version != _VERSION or kind not in (SURVEY, READ) or rkind not in ("member", "staff"):
        raise InvalidSurveyLink("this link is not valid")
    max_age = LinkSettings().survey_link_max_age_days if max_age_days is None else max_age_days
    if int(now.timestamp()) // _EPOCH_DAY - int(day) > max_age:
        raise InvalidSurveyLink("this link has expired", "expired")
    return LinkClaim(kind, int(ledger_id), rkind, int(rid), str(journey), str(step), int(lo), int(hi), int(day))


def form_token(secret: str, token: str) -> str:
    """The comment form's hidden field: an HMAC of the link's own token (a form for another link is refused)."""
    return _b64(hmac.new(_key(secret), b"form|" + token.encode(), hashlib.sha256).digest()[:18])


def valid_form_token(secret: str, token: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(form_token(secret, token), str(given))


def clean_comment(text: str | None) -> str | None:
    """A comment as stored: control characters dropped, trimmed, at most COMMENT_LIMIT characters."""
    if text is None:
        return None
    kept = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C").strip()
    return kept[:COMMENT_LIMIT] or None


def _insert(session: Session):  # type: ignore[no-untyped-def]
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def record_answer(session: Session, claim: LinkClaim, score: int, now: datetime, *, channel: str,
                  comment: str | None = None) -> SurveyAnswer:
    """Store the answer to `claim`'s message, or update it (counting the change); ValueError when the
    score is outside the signed scale."""
    if claim.kind != SURVEY or not claim.scale_min <= score <= claim.scale_max:
        raise ValueError(f"score {score} is outside {claim.scale_min}-{claim.scale_max} (ledger {claim.ledger_id})")
    comment = clean_comment(comment)
    new_id = session.execute(
        _insert(session)(SurveyAnswer).values(
            ledger_id=claim.ledger_id, recipient_kind=claim.recipient_kind, recipient_id=claim.recipient_id,
            journey=claim.journey, step=claim.step, scale_min=claim.scale_min, scale_max=claim.scale_max,
            score=score, comment=comment, channel=channel, first_answered_at=now, answered_at=now, revisions=0)
        .on_conflict_do_nothing(index_elements=["ledger_id"]).returning(SurveyAnswer.id)
    ).scalar_one_or_none()
    if new_id is None:
        row = session.execute(select(SurveyAnswer).where(SurveyAnswer.ledger_id == claim.ledger_id)
                              .with_for_update()).scalar_one()
        changed = row.score != score or (comment is not None and comment != row.comment)
        if changed:
            session.execute(update(SurveyAnswer).where(SurveyAnswer.id == row.id).values(
                previous_score=row.score, score=score, comment=comment if comment is not None else row.comment,
                channel=channel, answered_at=now, revisions=SurveyAnswer.revisions + 1))
        new_id = row.id
    session.flush()
    return session.execute(select(SurveyAnswer).where(SurveyAnswer.id == new_id)
                           .execution_options(populate_existing=True)).scalar_one()


def record_read(session: Session, claim: LinkClaim, now: datetime) -> bool:
    """Record a staff member's read of one bulletin message; False when it was already recorded."""
    if claim.kind != READ or claim.recipient_kind != "staff":
        raise ValueError(f"not a bulletin read link (ledger {claim.ledger_id})")
    new_id = session.execute(
        _insert(session)(BulletinRead).values(ledger_id=claim.ledger_id, staff_id=claim.recipient_id,
                                              journey=claim.journey, step=claim.step, read_at=now)
        .on_conflict_do_nothing(index_elements=["ledger_id"]).returning(BulletinRead.id)
    ).scalar_one_or_none()
    return new_id is not None


def record_invite(session: Session, claim: LinkClaim, now: datetime, channel: str) -> None:
    """Remember a survey message going out on `channel` (idempotent): response rates count these, and
    a reply from a number answers the latest SMS one."""
    session.execute(
        _insert(session)(SurveyInvite).values(
            ledger_id=claim.ledger_id, recipient_kind=claim.recipient_kind, recipient_id=claim.recipient_id,
            journey=claim.journey, step=claim.step, scale_min=claim.scale_min, scale_max=claim.scale_max,
            channel=channel, sent_at=now)
        .on_conflict_do_nothing(index_elements=["ledger_id"]))


_REPLY = re.compile(r"^\s*(\d{1,2})(?:\s*/\s*(?:10|5))?(?=$|[\s.,!:;-])[\s.,!:;-]*(.*)$", re.DOTALL)


def parse_reply(body: str) -> tuple[int, str | None] | None:
    """An SMS reply's score and the comment after it ("9", "9/10", "8 - friendly staff"); None otherwise."""
    found = _REPLY.match(body or "")
    if found is None:
        return None
    return int(found.group(1)), clean_comment(found.group(2))


@dataclass(frozen=True, slots=True)
class SmsReply:
    """What an SMS reply did: `answer` when recorded, else the invite whose scale it missed."""

    invite: SurveyInvite
    answer: SurveyAnswer | None


def answer_sms_reply(session: Session, recipients: list[tuple[str, int]], body: str, now: datetime) -> SmsReply | None:
    """Record a reply as the answer to the latest survey SMS sent to one of `recipients` (those whose
    number it came from) within SMS_REPLY_WINDOW; None when it is no score or answers no survey."""
    parsed = parse_reply(body)
    if parsed is None or not recipients:
        return None
    score, comment = parsed
    candidates = select(SurveyInvite).where(SurveyInvite.channel == "sms", SurveyInvite.sent_at > now - SMS_REPLY_WINDOW,
                                            SurveyInvite.sent_at <= now)
    matches = [(SurveyInvite.recipient_kind == kind) & (SurveyInvite.recipient_id == rid) for kind, rid in recipients]
    invite = session.execute(candidates.where(or_(*matches))
                             .order_by(SurveyInvite.sent_at.desc(), SurveyInvite.id.desc()).limit(1)).scalar_one_or_none()
    if invite is None:
        return None
    if not invite.scale_min <= score <= invite.scale_max:
        return SmsReply(invite, None)
    claim = LinkClaim(SURVEY, invite.ledger_id, invite.recipient_kind, invite.recipient_id, invite.journey,
                      invite.step, invite.scale_min, invite.scale_max)
    return SmsReply(invite, record_answer(session, claim, score, now, channel="sms", comment=comment))

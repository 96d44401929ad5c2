"""The rendered messages handed to channels: plain values, ready to send, nothing left to template."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SmsEncoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    preheader: str
    html: str
    text: str


@dataclass(frozen=True, slots=True)
class RenderedSms:
    text: str
    encoding: SmsEncoding
    segments: int


@dataclass(frozen=True, slots=True)
class RenderedPush:
    title: str
    body: str
    deep_link: str | None
    data: dict[str, str] = field(default_factory=dict)


Rendered = RenderedEmail | RenderedSms | RenderedPush

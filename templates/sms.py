"""SMS encoding and segment count, as carriers bill them (3GPP TS 23.038).

GSM-7 when every character is in the GSM 03.38 basic set or its extension table (extension
characters take two septets); otherwise UCS-2 (UTF-16 code units). One segment holds 160 septets
or 70 units; a concatenated message holds 153 or 67 per segment, and an escape pair or a
surrogate pair is never split across two segments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE = {"GSM-7": 160, "UCS-2": 70}
MULTI = {"GSM-7": 153, "UCS-2": 67}

# Spaces Babel puts in formatted numbers and dates (no-break, narrow no-break, thin): on a phone
# they look like a space, but any one of them would switch the whole SMS to UCS-2.
_SPACE_LIKE = {"\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " "}


@dataclass(frozen=True, slots=True)
class SegmentCount:
    encoding: Literal["GSM-7", "UCS-2"]
    units: int
    """Septets (GSM-7) or UTF-16 code units (UCS-2)."""
    segments: int


def normalize_spaces(text: str) -> str:
    return text.translate(str.maketrans(_SPACE_LIKE))


def encoding_of(text: str) -> Literal["GSM-7", "UCS-2"]:
    return "GSM-7" if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text) else "UCS-2"


def _costs(text: str, encoding: str) -> list[int]:
    if encoding == "GSM-7":
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def count_segments(text: str) -> SegmentCount:
    encoding = encoding_of(text)
    costs = _costs(text, encoding)
    units = sum(costs)
    if units == 0:
        return SegmentCount(encoding, 0, 0)
    if units <= SINGLE[encoding]:
        return SegmentCount(encoding, units, 1)
    capacity, segments, used = MULTI[encoding], 1, 0
    for cost in costs:
        if used + cost > capacity:
            segments += 1
            used = 0
        used += cost
    return SegmentCount(encoding, units, segments)

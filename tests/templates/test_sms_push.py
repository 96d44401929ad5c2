"""SMS encoding and segment counts as carriers bill them; push payload size as FCM measures it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from templates.push import FCM_MAX_PAYLOAD_BYTES, payload_size
from templates.rendered import RenderedPush
from templates.sms import GSM7_BASIC, GSM7_EXTENSION, count_segments, normalize_spaces


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),          # extension characters count twice
        ("€" * 81, "GSM-7", 162, 2),
        ("[" + "a" * 159, "GSM-7", 161, 2),
        ("a" * 152 + "{" + "a" * 10, "GSM-7", 164, 2),  # the escape pair is not split: { starts segment 2
        ("a" * 152 + "{" + "a" * 152, "GSM-7", 306, 3),
        ("Réponse à Zoé, ÄÖÜ ß ñ", "GSM-7", 22, 1),  # accented letters of the GSM basic set
        ("Zoë", "UCS-2", 3, 1),               # ... but ë is not one of them
        ("ç", "UCS-2", 1, 1),                 # lower-case c-cedilla is not GSM-7
        ("a" * 70 + "ê", "UCS-2", 71, 2),
        ("ê" * 70, "UCS-2", 70, 1),
        ("ê" * 134, "UCS-2", 134, 2),
        ("ê" * 135, "UCS-2", 135, 3),
        ("😀" * 35, "UCS-2", 70, 1),          # an emoji is two UTF-16 units
        ("😀" * 36, "UCS-2", 72, 2),
        ("a" * 66 + "😀" + "a", "UCS-2", 69, 1),
        ("a" * 66 + "😀" + "a" * 4, "UCS-2", 72, 2),  # the surrogate pair is not split
        ("مريم", "UCS-2", 4, 1),
    ],
)
def test_segments(text: str, encoding: str, units: int, segments: int) -> None:
    count = count_segments(text)
    assert (count.encoding, count.units, count.segments) == (encoding, units, segments)


def test_surrogate_pair_moves_to_the_next_segment() -> None:
    # 66 units then an emoji (2): 68 > 67, so segment 1 holds 66 units and segment 2 starts with the emoji.
    assert count_segments("a" * 66 + "😀" + "a" * 65).segments == 2
    assert count_segments("a" * 66 + "😀" + "a" * 66).segments == 3  # 134 units, yet 3 segments, not 2


@given(st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), max_size=600))
def test_gsm_segments_bound_the_septets(text: str) -> None:
    count = count_segments(text)
    assert count.encoding == "GSM-7"
    assert count.units == len(text) + sum(c in GSM7_EXTENSION for c in text)
    if count.units <= 160:
        assert count.segments == (1 if text else 0)
    else:
        assert 153 * (count.segments - 1) < count.units <= 153 * count.segments + count.segments - 1


def test_babel_spaces_do_not_force_ucs2() -> None:
    assert count_segments(normalize_spaces("1\u202f250 points, 20\xa0%")).encoding == "GSM-7"


def test_push_payload_size_counts_utf8_bytes() -> None:
    push = RenderedPush(title="é", body="😀", deep_link="app://x", data={"k": "v"})
    expected = json.dumps({"notification": {"title": "é", "body": "😀"}, "data": {"k": "v", "deep_link": "app://x"}},
                          ensure_ascii=False, separators=(",", ":")).encode()
    assert payload_size(push) == len(expected)
    big = RenderedPush(title="t", body="x" * 4000, deep_link=None, data={})
    assert payload_size(big) <= FCM_MAX_PAYLOAD_BYTES < payload_size(RenderedPush("t", "x" * 4100, None, {}))

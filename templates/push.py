"""The size of a push message as FCM measures it: the JSON payload, at most 4,096 bytes."""

from __future__ import annotations

import json

from templates.rendered import RenderedPush

FCM_MAX_PAYLOAD_BYTES = 4096


def fcm_payload(push: RenderedPush) -> dict[str, object]:
    """The `notification` and `data` parts FCM counts (the deep link travels in `data`)."""
    data = dict(push.data)
    if push.deep_link:
        data["deep_link"] = push.deep_link
    return {"notification": {"title": push.title, "body": push.body}, "data": data}


def payload_size(push: RenderedPush) -> int:
    return len(json.dumps(fcm_payload(push), ensure_ascii=False, separators=(",", ":")).encode("utf-8"))

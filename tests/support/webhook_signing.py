"""Signing webhook requests as SendGrid and Twilio do, for the webhook and security tests."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from twilio.request_validator import RequestValidator

AUTH_TOKEN = "twilio-test-token"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def ec_key() -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, base64.b64encode(der).decode()


SIGNING_KEY, PUBLIC_KEY = ec_key()


def sendgrid_headers(body: bytes, at: datetime, key: ec.EllipticCurvePrivateKey = SIGNING_KEY) -> dict[str, str]:
    timestamp = str(int(at.timestamp()))
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        SIGNATURE_HEADER: base64.b64encode(signature).decode(),
        TIMESTAMP_HEADER: timestamp,
        "Content-Type": "application/json",
    }


def malleate(signature_b64: str) -> str:
    """The other valid ECDSA signature of the same message: (r, n - s)."""
    r, s = decode_dss_signature(base64.b64decode(signature_b64))
    return base64.b64encode(encode_dss_signature(r, P256_ORDER - s)).decode()


def twilio_signature(base_url: str, path: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(f"{base_url}{path}", params)


def twilio_post(client: Any, base_url: str, path: str, params: dict[str, str], token: str = AUTH_TOKEN) -> Any:
    return client.post(path, data=params, headers={"X-Twilio-Signature": twilio_signature(base_url, path, params, token)})

"""A throwaway Google service account (fresh RSA key) whose token_uri points at a fake."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def write_service_account(folder: Path, token_uri: str, project_id: str = "loyalflow-test") -> tuple[Path, str]:
    """Write the JSON file; return its path and the public key PEM (for the fake to verify with)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": "test-key-1",
        "private_key": private_pem,
        "client_email": f"loyalflow@{project_id}.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    path = folder / "service-account.json"
    path.write_text(json.dumps(info), encoding="utf-8")
    return path, public_pem

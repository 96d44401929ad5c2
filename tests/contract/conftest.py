"""Prism mock servers on 127.0.0.1 for the providers' official OpenAPI specs, patched for the
specs' own documented defects (see ../shared/provider-specs/README.md).

Prism comes from this folder's package.json (`npm ci` here; CI does it). Without it the contract
tests skip, except in CI (CI or LOYALFLOW_REQUIRE_POSTGRES=1 set), where they fail.

The specs are not part of this repository: they are the providers' own published OpenAPI files
(twilio/sendgrid-oai spec/json/tsg_mail_v3.json and twilio/twilio-oai spec/json/twilio_api_v2010.json),
kept beside the checkout in ../shared/provider-specs/ (or LOYALFLOW_PROVIDER_SPECS). Without
them the contract tests skip, saying where to put them.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.contract.prism import Prism, free_port, in_ci, prism_binary  # noqa: F401 - used here

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SPECS = Path(os.environ.get("LOYALFLOW_PROVIDER_SPECS") or REPO.parent / "shared" / "provider-specs")
SPEC_SOURCES = {
    "tsg_mail_v3.json": "https://github.com/twilio/sendgrid-oai/blob/main/spec/json/tsg_mail_v3.json",
    "twilio_api_v2010.json": "https://github.com/twilio/twilio-oai/blob/main/spec/json/twilio_api_v2010.json",
}


def load_spec(name: str) -> dict[str, Any]:
    """A provider's official spec, or a skip that says where to get it (never an error)."""
    path = SPECS / name
    if not path.is_file():
        pytest.skip(f"provider spec {path} is absent: download {SPEC_SOURCES[name]} into {SPECS} "
                    "(or set LOYALFLOW_PROVIDER_SPECS to its folder)")
    return json.loads(path.read_text(encoding="utf-8"))
SENDGRID_PATH = "/v3/mail/send"
TWILIO_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"


def patch_sendgrid(spec: dict[str, Any]) -> dict[str, Any]:
    """Message-level custom_args is typed as a string in the spec; SendGrid takes (and documents)
    an object of string values, and answers 400 to non-string values."""
    spec = copy.deepcopy(spec)
    schema = spec["components"]["requestBodies"]["PostMailSend"]["content"]["application/json"]["schema"]
    description = schema["properties"]["custom_args"].get("description", "")
    schema["properties"]["custom_args"] = {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": description,
    }
    return spec


def patch_twilio(spec: dict[str, Any]) -> dict[str, Any]:
    """MediaUrl (an array) sent as one form key is refused by Prism ("must be array"); Twilio
    takes the key once or repeated. We send no media, but keep the spec honest for callers who do."""
    spec = copy.deepcopy(spec)
    schema = spec["paths"][TWILIO_PATH]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    media = schema["properties"]["MediaUrl"]
    schema["properties"]["MediaUrl"] = {"anyOf": [media, media["items"]], "description": media.get("description", "")}
    return spec


def _serve(tmp: Path, name: str, spec: dict[str, Any]) -> Iterator[Prism]:
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    prism = Prism(path, tmp / f"{name}.log")
    yield prism
    prism.stop()


@pytest.fixture(scope="session")
def sendgrid_prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prism]:
    spec = patch_sendgrid(load_spec("tsg_mail_v3.json"))
    yield from _serve(tmp_path_factory.mktemp("prism-sendgrid"), "sendgrid", spec)


@pytest.fixture(scope="session")
def twilio_prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prism]:
    spec = patch_twilio(load_spec("twilio_api_v2010.json"))
    yield from _serve(tmp_path_factory.mktemp("prism-twilio"), "twilio", spec)

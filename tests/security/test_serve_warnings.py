"""`loyalflow serve` says at start, one line each, which secrets are missing (links and webhooks
would otherwise fail silently for members and providers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flows.cli import main
from flows import migrate
from audiences.db import make_engine

KEYS = ("LOYALFLOW_UNSUBSCRIBE_SECRET", "LOYALFLOW_SENDGRID_WEBHOOK_PUBLIC_KEY", "LOYALFLOW_TWILIO_AUTH_TOKEN")


def serve_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str]) -> str:
    import uvicorn

    for name in KEYS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("LOYALFLOW_DATABASE_URL", url)
    started: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.append(app))
    try:
        main(["serve"])
    except SystemExit as exc:
        assert not exc.code, exc.code
    assert started, "serve did not start the server"
    out, err = capsys.readouterr()
    return out + err


def test_serve_warns_once_per_missing_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    text = serve_output(tmp_path, monkeypatch, capsys, {})
    lines = [line for line in text.splitlines() if "warning" in line.lower()]
    for name in KEYS:
        assert sum(name in line for line in lines) == 1, (name, text)
    assert len(lines) == len(KEYS), text


def test_serve_is_quiet_when_every_secret_is_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.support.webhook_signing import PUBLIC_KEY

    text = serve_output(tmp_path, monkeypatch, capsys, {"LOYALFLOW_UNSUBSCRIBE_SECRET": "s", "LOYALFLOW_SENDGRID_WEBHOOK_PUBLIC_KEY": PUBLIC_KEY,
                                                         "LOYALFLOW_TWILIO_AUTH_TOKEN": "t"})
    assert "warning" not in text.lower(), text

"""Prism, the OpenAPI mock server the contract tests validate requests with: finding it and running it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest


HERE = Path(__file__).resolve().parent


def in_ci() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("LOYALFLOW_REQUIRE_POSTGRES") == "1"


def prism_binary() -> str | None:
    local = HERE / "node_modules" / ".bin" / "prism"
    if local.exists():
        return str(local)
    return shutil.which("prism")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Prism:
    def __init__(self, spec_path: Path, log_path: Path) -> None:
        binary = prism_binary()
        if binary is None:
            if in_ci():
                pytest.fail("Prism not installed: run `npm ci` in tests/contract")
            pytest.skip("Prism not installed (run `npm install` in tests/contract)")
        self.port = free_port()
        self.log_path = log_path
        self.log = log_path.open("wb")
        self.process = subprocess.Popen(
            [binary, "mock", "-h", "127.0.0.1", "-p", str(self.port), str(spec_path)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"prism did not start: {log_path.read_text(errors='replace')[-2000:]}")
                time.sleep(0.2)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # prism's own process group, started above
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()

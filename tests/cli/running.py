"""Helpers of the cli tests (imported by test modules; fixtures stay in conftest.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def run_cli(entry: str, *args: str, cwd: Path, url: str | None = None, columns: int = 80,
            extra_env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`loyalflow ARGS` with output to pipes (not a terminal), like a script or CI would run it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOYALFLOW_", "PREFECT_API"))}
    env["COLUMNS"] = str(columns)
    if url is not None:
        env["LOYALFLOW_DATABASE_URL"] = url
    env.update(extra_env or {})
    return subprocess.run([entry, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def assert_one_error_line(result: subprocess.CompletedProcess[str], *fragments: str, code: int = 2) -> str:
    """Exit `code`, no traceback, exactly one `error:` line on stderr (plus at most a usage hint)."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert len(lines) <= 2, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]

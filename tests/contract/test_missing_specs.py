"""Without the providers' specs the contract tests skip with a line that says where to get them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_absent_specs_skip_and_say_where_they_come_from(tmp_path: Path) -> None:
    env = dict(os.environ, LOYALFLOW_PROVIDER_SPECS=str(tmp_path / "no-specs-here"))
    result = subprocess.run([sys.executable, "-m", "pytest", str(HERE / "test_provider_contracts.py"), "-q", "-rs",
                             "-p", "no:cacheprovider"], cwd=HERE.parent.parent, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stdout.lower().split("short test summary")[-1]
    assert "skipped" in result.stdout and "passed" not in result.stdout
    assert "github.com/twilio/sendgrid-oai" in result.stdout and "github.com/twilio/twilio-oai" in result.stdout

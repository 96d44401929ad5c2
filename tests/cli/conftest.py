"""The CLI as a user meets it: the installed `loyalflow` entry point, in a clean environment."""

from __future__ import annotations

import shutil

import pytest

from tests.cli.running import assert_one_error_line, run_cli  # noqa: F401 - used by fixtures here


@pytest.fixture(scope="session")
def entry_point() -> str:
    path = shutil.which("loyalflow")
    if path is None:
        pytest.fail("the `loyalflow` entry point is not installed: pip install -e '.[dev]'")
    return path



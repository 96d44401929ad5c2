"""Journeys test fixtures: an in-memory adapter and Services wired to it (real templates and gate)."""

from __future__ import annotations

import pytest

from channels.adapters import MemoryAdapter
from journeys.services import Services, services_for


Recorder = MemoryAdapter
"""Accepts everything; `requests` is what it was given, in order."""


@pytest.fixture()
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture()
def services(recorder: Recorder) -> Services:
    """The real renderer and gate; every channel delivers to `recorder`."""
    return services_for(recorder)

"""Fixtures of the template tests: the real library, the MJML corpus, and throwaway libraries."""

from __future__ import annotations

from pathlib import Path

import pytest

from templates.library import TemplateLibrary
from tests.templates.library_builder import EMAIL, MakeLibrary  # noqa: F401 - used by fixtures here

CORPUS = Path(__file__).parents[2] / ".." / "shared" / "mjml-corpus"


@pytest.fixture(scope="session")
def library() -> TemplateLibrary:
    """The real templates of templates/library, compiled once for the session."""
    return TemplateLibrary.load()


@pytest.fixture()
def corpus() -> Path:
    if not (CORPUS / "templates").is_dir():
        pytest.skip(f"MJML corpus not found at {CORPUS.resolve()} (CI clones shared/ beside the repo)")
    return CORPUS.resolve()


@pytest.fixture()
def make_library(tmp_path: Path) -> MakeLibrary:
    """Write {relative path: text} under a fresh root and return the root."""

    def make(files: dict[str, str]) -> Path:
        root = tmp_path / "lib"
        for name, text in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return root

    return make



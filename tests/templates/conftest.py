"""Fixtures of the template tests: the real library, the MJML corpus, and throwaway libraries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from templates.library import TemplateLibrary

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


MakeLibrary = Callable[[dict[str, str]], Path]


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


EMAIL = """---
purpose: marketing
subject: Hello {{ first_name or 'there' }}
preheader: {{ points|number }} points
---
<mjml>
  <mj-body>
    <mj-section>
      <mj-column>
        <mj-text>
          <p>Hi {{ first_name }}, you have {{ points|number }} points.</p>
          <p><a href="{{ links.unsubscribe_url }}">Unsubscribe</a> <a href="{{ links.preferences_url }}">Preferences</a></p>
        </mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""

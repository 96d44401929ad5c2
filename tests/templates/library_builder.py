"""Helpers of the templates tests (imported by test modules; fixtures stay in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

MakeLibrary = Callable[[dict[str, str]], Path]


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

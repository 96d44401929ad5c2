"""The demo's report.html as a reader sees it: opened in headless Chromium, with the A/B test on win-back,
the newsletter broadcast, the NPS survey after tier-up and the per-store bulletin read rates all filled
from the replayed journeys (not empty slots), and a screenshot that is a real page (not blank)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.flows.test_demo import demo

WIDTH = 1280


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("headless Chromium is required in CI (.ci/run installs Debian's chromium)")
        pytest.skip("chromium is not installed")
    return found


def headless(browser: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # generous timeout: a loaded machine may take long to start a browser; nothing here is timed
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--user-data-dir={cwd / 'chromium-profile'}", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=900)


class Tables(HTMLParser):
    """Rows of each report table, keyed by the id of the <h2> heading before it."""

    def __init__(self) -> None:
        super().__init__()
        self.section: str | None = None
        self.rows: dict[str, list[list[str]]] = {}
        self.cell: list[str] | None = None
        self.row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "h2":
            self.section = dict(attrs).get("id")
        elif tag == "tr" and self.section:
            self.row = []
        elif tag == "td" and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self.cell is not None and self.row is not None:
            self.row.append("".join(self.cell).strip())
            self.cell = None
        elif tag == "tr" and self.row is not None and self.section:
            if self.row:  # header rows have <th> only
                self.rows.setdefault(self.section, []).append(self.row)
            self.row = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


@pytest.mark.slow
def test_the_demo_report_in_headless_chromium_shows_ab_broadcast_nps_and_store_read_rates(tmp_path: Path) -> None:
    browser = chromium()
    result = demo("--members", "1000", "--days", "21", "--today", "2026-11-23", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = tmp_path / "loyalflow-demo" / "report.html"

    dom = headless(browser, "--dump-dom", report.as_uri(), cwd=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    tables = Tables()
    tables.feed(dom.stdout)
    rows = tables.rows

    ab = [r for r in rows.get("ab_results", []) if r[0] == "win_back"]
    assert {r[1] for r in ab} == {"miss_you", "ends_soon"}, rows.get("ab_results")
    assert all(int(r[2]) > 0 for r in ab)  # both variants enrolled members

    newsletter = [r for r in rows.get("broadcasts", []) if r[1] == "newsletter"]
    assert len(newsletter) == 1 and newsletter[0][2] == "sent" and int(newsletter[0][8]) > 0, rows.get("broadcasts")

    nps = [r for r in rows.get("nps", []) if r[0] == "tier_up"]
    assert nps and int(nps[0][2]) > 0 and int(nps[0][3]) > 0, rows.get("nps")  # invited, and some answered

    reads = rows.get("bulletin_reads", [])
    stores = [r for r in reads if r[0] != "(no store)"]
    assert len(stores) >= 10, reads  # a row per store, not one program-wide figure
    assert all(int(r[2]) <= int(r[1]) for r in reads)  # read never above sent
    assert any(r[3] != "0.0%" for r in stores)

    shot = tmp_path / "report.png"
    taken = headless(browser, f"--window-size={WIDTH},3000", f"--screenshot={shot}", report.as_uri(), cwd=tmp_path)
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (WIDTH, 3000)
    pixels = np.asarray(image.resize((WIDTH // 4, 750)), dtype=np.int32).reshape(-1, 3)
    ink = float((pixels.sum(axis=1) < 600).mean())
    colours = len(np.unique(pixels, axis=0))
    assert ink > 0.03, f"the page looks blank ({ink:.1%} non-white)"
    assert colours > 100, f"only {colours} colours: charts missing?"
    assert len(re.findall(r"<svg", dom.stdout)) >= 4  # the charts are inline SVG, drawn by the browser

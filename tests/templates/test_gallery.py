"""The gallery opens in headless Chromium with no console errors, and its screenshot is not blank."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from templates.gallery import write_gallery
from templates.library import TemplateLibrary
from templates.locales import SUPPORTED_LOCALES


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed, and CI must run the gallery test (apt-get install chromium)")
        pytest.skip("chromium not installed (apt-get install -y chromium); CI installs it")
    return found


def _open(browser: str, page: Path, tmp_path: Path, screenshot: Path | None = None) -> str:
    """Load `page` headless; return Chromium's log (console messages appear as `CONSOLE` lines)."""
    args = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--enable-logging=stderr", "--v=0",
        "--window-size=1280,900",
    ]
    args += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    result = subprocess.run([*args, page.as_uri()], capture_output=True, text=True, timeout=90, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stderr


def _console(log: str) -> list[str]:
    return [line for line in log.splitlines() if ":CONSOLE" in line]


def test_gallery_covers_every_template_and_locale(library: TemplateLibrary, tmp_path: Path) -> None:
    index = write_gallery(tmp_path / "gallery", library)
    page = index.read_text(encoding="utf-8")
    for journey, step in library.templates():
        assert f'id="{journey}--{step}"' in page
    emails = sorted(p.name for p in (tmp_path / "gallery" / "email").iterdir())
    email_templates = [t for t in library.templates() if library.channel_of(*t) == "email"]
    assert len(emails) == len(email_templates) * len(SUPPORTED_LOCALES)
    assert page.count('class="phone"') == (len(library.templates()) - len(email_templates)) * len(SUPPORTED_LOCALES)
    assert "falls back to fr" in page and 'class="error"' not in page
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://fonts" not in page


def test_gallery_in_headless_chromium(library: TemplateLibrary, tmp_path: Path) -> None:
    browser = _chromium()
    # The console capture works: a page that logs an error is caught.
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><p>x</p><script>console.error("control-error")</script>', encoding="utf-8")
    assert any("control-error" in line for line in _console(_open(browser, control, tmp_path)))

    index = write_gallery(tmp_path / "gallery", library)
    assert _console(_open(browser, index, tmp_path)) == []

    shot = tmp_path / "gallery.png"
    _open(browser, index, tmp_path, screenshot=shot)
    with Image.open(shot) as image:
        assert image.size == (1280, 900)
        stat = ImageStat.Stat(image.convert("L"))
        assert stat.stddev[0] > 20, "screenshot is blank"
        colours = image.convert("RGB").resize((160, 112)).getcolors(maxcolors=100000) or []
        assert len(colours) > 50, "screenshot has almost no detail"

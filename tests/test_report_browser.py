"""report.html in a real browser: headless Chromium (Debian's package, installed by scripts/setup)
renders it offline with no console errors, and the "claims at a glance" figure is in the rendered DOM
and drawn on screen (a screenshot of a non-blank page)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from unlearnspec.report.render import render_html

try:  # pytest puts tests/ on sys.path (rootdir-relative "prepend" import mode)
    from test_report import make_report
except ImportError:  # tests/ imported as a package
    from tests.test_report import make_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/setup installs it "
                                                          "with apt-get where it can)")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=180, check=False)


def test_report_html_renders_offline_without_console_errors(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(make_report()), encoding="utf-8")
    run = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert run.returncode == 0, run.stderr[-2000:]
    dom = run.stdout
    assert re.search(r'<figure class="charts glance-figure" id="objective-1-glance">\s*<svg', dom)
    assert "Claims at a glance" in dom
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
    shot = tmp_path / "shot.png"
    run = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,900", page.as_uri())
    assert run.returncode == 0 and shot.is_file()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000

"""The report opens in headless Chromium and shows its plots (skipped without Chromium).

Chromium renders ``index.html`` to a screenshot; the embedded plots (data-URI PNGs) must show:
the screenshot holds the plots' line colors, which the same page with its images removed
does not.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from convcheck.report import write_report
from convcheck.verify import load_suite, verify
from tests.helpers import TINY_CASE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def screenshot(page, png, tmp_path, width=1200, height=2400):
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / ('profile-' + png.stem)}",
               f"--window-size={width},{height}", f"--screenshot={png}", page.as_uri()]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    from matplotlib.image import imread

    return imread(str(png))


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt install chromium)")
def test_report_renders_with_its_plots(tmp_path):
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "tiny.toml").write_text(TINY_CASE)
    document = verify(load_suite([tmp_path / "cases"]))
    index = write_report(document, tmp_path / "report")
    pixels = screenshot(index, tmp_path / "with.png", tmp_path)
    stripped = tmp_path / "stripped.html"
    html = index.read_text()
    stripped.write_text(re.sub(r'src="data:image/png;base64,[^"]*"', 'src=""', html))
    blank = screenshot(stripped, tmp_path / "without.png", tmp_path)
    # matplotlib's first two line colors, C0 (blue) and C1 (orange), appear only in the plots
    assert _share(pixels, (31, 119, 180)) > 1e-4 and _share(pixels, (255, 127, 14)) > 1e-5
    assert _share(blank, (31, 119, 180)) == 0.0


def _share(pixels, rgb) -> float:
    """Fraction of the screenshot's pixels within 10/255 of the color ``rgb``."""
    target = np.array(rgb) / 255.0
    return float((np.abs(pixels[..., :3] - target) < 10 / 255).all(axis=-1).mean())

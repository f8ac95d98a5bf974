"""Regenerate the committed example report and the README's pictures of it.

Run from the repository root (with the package installed)::

    python docs/example_report.py [--jobs 2] [--no-screenshots]

Writes the quick suite's report to ``docs/example-report/`` (``index.html``, ``index.md``,
``results.json``, ``plots/``), then, when Chromium is installed, screenshots of its top (the
verdict, the summary grid, the checks table) and of one case to ``docs/figures/report-*.png``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from convcheck.report import write_report
from convcheck.verification import default_folder, load_suite, verify

DOCS = Path(__file__).resolve().parent
REPORT = DOCS / "example-report"
#: (file, window width, window height, rows kept from the top, page anchor)
PICTURES = (("report-summary.png", 1280, 1500, 1100, ""),
            ("report-case.png", 1280, 1400, 1400, "#case-gd-sec-logistic-heterogeneous"))


def screenshots(index: Path) -> list[Path]:
    """Screenshots of the report in headless Chromium (the top; one case), cropped; none
    without Chromium."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("Chromium not found: screenshots not taken")
        return []
    from matplotlib.image import imread, imsave

    written = []
    with tempfile.TemporaryDirectory() as work:
        for name, width, height, rows, anchor in PICTURES:
            page = index
            if anchor:  # a copy of the page that shows only that case
                page = Path(work) / "page.html"
                only = (f"<style>body > *:not(#cases), #cases > h2, section.case:not({anchor})"
                        " { display: none; }</style></head>")
                page.write_text(index.read_text("utf-8").replace("</head>", only), "utf-8")
            shot = Path(work) / name
            subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                            "--hide-scrollbars", f"--user-data-dir={work}/profile",
                            f"--window-size={width},{height}", f"--screenshot={shot}",
                            page.as_uri()], check=True, capture_output=True, timeout=120)
            target = DOCS / "figures" / name
            imsave(target, imread(str(shot))[:rows])
            written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="cases run in parallel (2)")
    parser.add_argument("--no-screenshots", action="store_true")
    args = parser.parse_args()
    document = verify(load_suite([default_folder()], "quick"), jobs=args.jobs, suite="quick")
    index = write_report(document, REPORT)
    print(f"report: {index}")
    if not args.no_screenshots:
        for path in screenshots(index):
            print(f"picture: {path}")


if __name__ == "__main__":
    main()

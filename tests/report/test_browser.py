"""The report in headless Chromium (skipped without Chromium).

* the embedded plots show: the screenshot holds the plots' line colours, which the same page
  with its images removed does not;
* a script run inside the page checks the summary grid, that every internal link resolves,
  that every table row leads to its check's plot, that images are shown whole and no table
  text overflows its cell, that table headers are sticky and that the filter works;
* no title or label of any figure sticks out of the figure (the figures' layout).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from convcheck.report import plots, write_report
from convcheck.report.pages import case_anchor
from convcheck.verification import load_suite, verify
from tests.helpers import TINY_CASE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
needs_chromium = pytest.mark.skipif(CHROMIUM is None,
                                    reason="Chromium is not installed (apt install chromium)")

#: A case with a linear-rate bound, a bound that is negative (so not drawn), and a negative
#: control that holds on purpose (a FAIL row for the filter).
GD_CASE = """
description = "GD on a small ridge problem: its classical bounds, and a step past 2/L"

[problem]
family = "ridge"
dataset = "synthetic-regression"
workers = 2
dataset_params = { n_samples = 40, n_features = 3 }

[algorithm]
name = "gd"
alpha = "1/L"

[run]
iterations = 60

[[checks]]
bound = "gd/strongly-convex"

[[checks]]
bound = "gd/nonconvex"

[[negative_controls]]
name = "step past 2/L"
bound = "gd/nonconvex"
why = "the bound of the claimed step 1/L does not hold for a run at 2.2/L (divergent)"
ran_with = { alpha = "2.2/L" }

[[negative_controls]]
name = "a control that holds"
bound = "gd/strongly-convex"
why = "deliberately wrong: this control holds, so the report shows a failure"
"""

#: Runs inside the page once it has loaded; writes its findings as JSON into the page.
PROBE = """
<script>
window.addEventListener('load', function () {
  var out = {broken_links: [], rows_without_plot: [], images: [], overflowing: []};
  document.querySelectorAll('a[href^="#"]').forEach(function (a) {
    if (!document.getElementById(a.getAttribute('href').slice(1)))
      out.broken_links.push(a.getAttribute('href'));
  });
  var rows = document.querySelectorAll('#checks-table tr[data-algorithm]');
  out.rows = rows.length;
  rows.forEach(function (row) {
    var link = row.querySelector('td:last-child a');
    var target = link && document.getElementById(link.getAttribute('href').slice(1));
    if (!target || !target.querySelector('img')) out.rows_without_plot.push(row.id);
  });
  document.querySelectorAll('figure').forEach(function (figure) {
    var img = figure.querySelector('img'), box = img.getBoundingClientRect();
    var frame = figure.getBoundingClientRect();
    out.images.push({id: figure.id, loaded: img.complete && img.naturalWidth > 0,
      inside: box.left >= frame.left - 1 && box.right <= frame.right + 1
              && box.right <= document.documentElement.clientWidth + 1,
      ratio: Math.abs(box.width / box.height - img.naturalWidth / img.naturalHeight)});
  });
  document.querySelectorAll('#checks-table td, #checks-table th, #summary-grid td, '
                            + '#summary-grid th').forEach(function (cell) {
    if (cell.scrollWidth > cell.clientWidth + 1) out.overflowing.push(cell.textContent);
  });
  var cells = document.querySelectorAll('#summary-grid td.cell:not(.empty)');
  out.summary = Array.prototype.map.call(cells, function (cell) {
    return {state: cell.dataset.state, text: cell.textContent,
            target: cell.querySelector('a').getAttribute('href')};
  });
  out.sticky = getComputedStyle(document.querySelector('#checks-table th')).position;
  var box = document.getElementById('failed-only');
  box.checked = true; box.dispatchEvent(new Event('change'));
  out.failed_rows = Array.prototype.filter.call(rows, function (r) { return !r.hidden; })
      .map(function (r) { return r.dataset.state; });
  box.checked = false; box.dispatchEvent(new Event('change'));
  var choice = document.getElementById('algorithm');
  choice.value = 'gd'; choice.dispatchEvent(new Event('change'));
  out.gd_rows = Array.prototype.filter.call(rows, function (r) { return !r.hidden; })
      .map(function (r) { return r.dataset.algorithm; });
  out.hidden_cases = Array.prototype.filter.call(document.querySelectorAll('section.case'),
      function (s) { return s.hidden; }).map(function (s) { return s.dataset.case; });
  var pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    (folder / "cases").mkdir()
    (folder / "cases" / "tiny.toml").write_text(TINY_CASE)
    (folder / "cases" / "gd.toml").write_text(GD_CASE)
    document = verify(load_suite([folder / "cases"]))
    return document, write_report(document, folder / "report")


def chromium(page, tmp_path, *options):
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *options,
               page.as_uri()]
    return subprocess.run(command, check=True, capture_output=True, timeout=120, text=True)


def screenshot(page, png, tmp_path, width=1200, height=6000):
    chromium(page, tmp_path, f"--window-size={width},{height}", f"--screenshot={png}")
    from matplotlib.image import imread

    return imread(str(png))


@needs_chromium
def test_report_renders_with_its_plots(report, tmp_path):
    _, index = report
    pixels = screenshot(index, tmp_path / "with.png", tmp_path)
    stripped = tmp_path / "stripped.html"
    html = index.read_text()
    stripped.write_text(re.sub(r'src="data:image/png;base64,[^"]*"', 'src=""', html))
    blank = screenshot(stripped, tmp_path / "without.png", tmp_path)
    # matplotlib's first two line colors, C0 (blue) and C1 (orange), appear only in the plots
    assert _share(pixels, (31, 119, 180)) > 1e-4 and _share(pixels, (255, 127, 14)) > 1e-5
    assert _share(blank, (31, 119, 180)) == 0.0


@needs_chromium
def test_page_links_summary_filter_and_clipping(report, tmp_path):
    document, index = report
    probed = tmp_path / "probed.html"
    probed.write_text(index.read_text().replace("</body>", PROBE + "</body>"))
    dom = chromium(probed, tmp_path, "--window-size=1200,2000", "--virtual-time-budget=5000",
                   "--dump-dom").stdout
    found = json.loads(re.search(r"<pre id=\"probe\">(.*?)</pre>", dom, re.S).group(1)
                       .replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
                       .replace("&quot;", '"'))
    assert found["broken_links"] == []
    assert found["rows"] == len(document["checks"]) and found["rows_without_plot"] == []
    assert found["images"] and all(i["loaded"] and i["inside"] and i["ratio"] < 0.02
                                   for i in found["images"]), found["images"]
    assert found["overflowing"] == []
    assert found["sticky"] == "sticky"
    # the summary: one cell per (algorithm, class, bound kind); the failing control shows
    expected = {(c["algorithm"].split("[")[0], c["class"], c["source"])
                for c in document["checks"]}
    assert len(found["summary"]) == len(expected)
    states = [cell["state"] for cell in found["summary"]]
    assert "fail" in states and "pass" in states
    failing = next(cell for cell in found["summary"] if cell["state"] == "fail")
    assert failing["target"] == "#" + case_anchor("cases/gd") and "FAIL" in failing["text"]
    assert "worst ratio" in failing["text"]
    # the filter: failed checks only, then one algorithm
    assert found["failed_rows"] == ["fail"] * sum(not c["passed"] for c in document["checks"])
    assert found["gd_rows"] == ["gd"] * sum(c["algorithm"].split("[")[0] == "gd"
                                            for c in document["checks"])
    assert found["hidden_cases"] == []  # both cases run gd


def test_no_figure_text_leaves_its_figure(report):
    document, _ = report
    figures = [plots.draw_check(c) for c in document["checks"]]
    figures += [plots.draw_bits(c) for c in document["cases"]]
    figures += [plots.draw_rates(document["checks"])]
    drawn = [f for f in figures if f is not None]
    assert len(drawn) >= len(document["checks"])
    for figure in drawn:
        assert plots.clipped_texts(figure) == []


def _share(pixels, rgb) -> float:
    """Fraction of the screenshot's pixels within 10/255 of the color ``rgb``."""
    target = np.array(rgb) / 255.0
    return float((np.abs(pixels[..., :3] - target) < 10 / 255).all(axis=-1).mean())

"""The report: its files, self-contained HTML, strict JSON, atomic replacement, safe --out."""

from __future__ import annotations

import json
import re

import pytest

from convcheck.errors import InputError
from convcheck.report import plots, write_report
from convcheck.verification import load_suite, verify
from tests.helpers import TINY_CASE


@pytest.fixture(scope="module")
def document(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cases")
    (folder / "tiny.toml").write_text(TINY_CASE)
    return verify(load_suite([folder]), suite=None)


def test_report_files(document, tmp_path):
    index = write_report(document, tmp_path / "report")
    folder = index.parent
    assert sorted(p.name for p in folder.iterdir()) == [
        ".convcheck-report.json", "index.html", "index.md", "plots", "results.json"]
    listed = json.loads((folder / ".convcheck-report.json").read_text())["files"]
    written = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                     if p.is_file() and p.name != ".convcheck-report.json")
    assert sorted(listed) == written
    page = index.read_text()
    assert "Verification PASSED" in page
    # self-contained: every image is a data URI, nothing is fetched
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    links = re.findall(r"href='([^']*)'", page) + re.findall(r'href="([^"]*)"', page)
    assert links and all(link.startswith("#") for link in links)  # internal links only
    assert "<script src" not in page and "<link " not in page
    results = json.loads((folder / "results.json").read_text())
    assert {c["kind"] for c in results["checks"]} == {"positive", "negative_control"}
    for key in ("case", "algorithm", "problem", "class", "bound", "source", "kind", "holds",
                "max_ratio", "fitted_rate", "theory_rate", "iterations", "bits_up", "bits_down",
                "seed", "passed"):  # the documented results.json schema
        assert key in results["checks"][0]
    markdown = (folder / "index.md").read_text()
    for png in sorted((folder / "plots").iterdir()):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"plots/{png.name}" in markdown


def test_interrupted_report_keeps_the_previous_one(document, tmp_path, monkeypatch):
    out = tmp_path / "report"
    write_report(document, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def interrupted(case):
        raise KeyboardInterrupt

    monkeypatch.setattr(plots, "bits_figure", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_report(document, out)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no partial folder left


def test_out_must_not_be_a_foreign_folder(document, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError) as info:
        write_report(document, tmp_path)
    assert info.value.field == "out"
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_case_text_is_inert_in_the_markdown_page(document):
    """A case file's description, check names and reasons reach index.md escaped: no raw HTML,
    no links."""
    from copy import deepcopy

    from convcheck.report.pages import markdown_page

    hostile = deepcopy(document)
    hostile["cases"][0]["description"] = "<script>alert(1)</script> [x](javascript:y)"
    hostile["checks"][0]["name"] = "<img src=x onerror=alert(1)>"
    hostile["cases"][0]["algorithm_text"] = "alpha=`x` <b>"
    page = markdown_page(hostile, {})
    assert "<script>" not in page and "<img" not in page and "[x](javascript" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; \\[x\\](javascript:y)" in page
    assert "`alpha='x' <b>`" in page  # inside a code span, where HTML is shown as text

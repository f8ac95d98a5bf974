"""The user documentation stays true: citation keys defined, every report column and verdict
word explained, the documented case file valid, no pointer to files outside the repository."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from convcheck.report.pages import COLUMNS, READING_TEXT

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: The pages a new user reads first (the theory pages carry their own references).
USER_PAGES = ("README.md", "docs/cli.md", "docs/cases.md", "docs/report-guide.md",
              "docs/references.md", "docs/python.md", "docs/torch.md")
#: Citation keys: [GDSEC], [EF21] (capitals) or [Nesterov04] (a name and a two-digit year).
KEY = re.compile(r"\[([A-Z]{2,}[0-9]*|[A-Z][a-z]+[0-9]{2})\]")
#: Files outside the repository that nothing in it may point at (spelled in two parts, so that
#: this file does not name them).
OUTSIDE = ("THEORY" ".md", "DESIGN" ".md", ".." "/shared")
#: The one file allowed to name them: CI has the team's data folder beside the checkout.
CI = ".ci/run"


def test_every_citation_key_is_in_references():
    used = set()
    for path in [*ROOT.joinpath("convcheck").rglob("*.py"), *DOCS.glob("*.md"),
                 *ROOT.joinpath("problems").rglob("*.toml"), ROOT / "README.md"]:
        used |= set(KEY.findall(path.read_text(encoding="utf-8")))
    defined = set(re.findall(r"^- \*\*\[([^\]]+)\]\*\*", (DOCS / "references.md").read_text(
        encoding="utf-8"), re.MULTILINE))
    missing = sorted(used - defined)
    assert missing == [], f"cited but not in docs/references.md: {missing}"
    for key in ("GDSEC", "BIDIR", "STALE", "DGS", "LAGS", "EF21", "EF", "LRP", "PEP"):
        assert key in defined


def test_report_guide_explains_every_column_and_verdict():
    guide = (DOCS / "report-guide.md").read_text(encoding="utf-8")
    for column in COLUMNS:
        assert f"| **{column}**" in guide or f"**{column}**" in guide, column
    for words in ("PASS (holds)", "PASS (violated)", "PASS (violated, not applicable)",
                  "PASS (not evaluated, not applicable)", "FAIL (holds)", "FAIL (violated)",
                  "negative control", "max ratio", "worst ratio", "not drawn"):
        assert words in guide, words
    assert (DOCS / "figures" / "report-summary.png").is_file()
    assert (DOCS / "figures" / "report-case.png").is_file()
    assert len(READING_TEXT) >= 5  # the page's own short guide


def test_the_documented_case_loads(tmp_path):
    from convcheck.verification import load_suite

    text = (DOCS / "cases.md").read_text(encoding="utf-8")
    minimal = text.split("## A minimal case", 1)[1]
    toml = re.search(r"```toml\n(.*?)```", minimal, re.S).group(1)
    (tmp_path / "case.toml").write_text(toml)
    [case] = load_suite([tmp_path / "case.toml"])
    assert [c.bound for c in case.checks] == ["gd/strongly-convex", "gd/strongly-convex"]


@pytest.mark.parametrize("page", USER_PAGES)
def test_user_pages_stay_inside_the_repository(page):
    text = (ROOT / page).read_text(encoding="utf-8")
    assert not any(name in text for name in OUTSIDE)
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):  # relative links resolve
        assert ((ROOT / page).parent / target).exists(), f"{page}: broken link {target}"


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="not a git checkout")
def test_no_tracked_file_points_outside_the_repository():
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                            check=True, timeout=60).stdout.decode().split("\0")
    offenders = set()
    for path in filter(None, listed):
        if (ROOT / path).is_file() and path != CI:
            data = (ROOT / path).read_bytes()
            if any(name.encode() in data for name in OUTSIDE):
                offenders.add(path)
    assert not offenders, f"name {OUTSIDE}: {sorted(offenders)}"

"""The report folder: only a report's own files are ever replaced, always a complete report,
no stale staging folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from convcheck.errors import InputError
from convcheck.report import folder
from convcheck.report.folder import (
    MARKER,
    check_out_folder,
    clean_stale,
    replace_folder,
    staging_folder,
    write_files,
    write_marker,
)


def make_report(target, files):
    """What write_report does, with given contents: build, mark, swap in."""
    staging = staging_folder(target)
    write_files(staging, {name: text.encode() for name, text in files.items()})
    write_marker(staging)
    replace_folder(staging, target)


def contents(path):
    return {p.relative_to(path).as_posix(): p.read_text() for p in path.rglob("*") if p.is_file()}


OLD = {"index.md": "old", "index.html": "<p>old</p>", "plots/a.png": "a", "plots/b.png": "b"}
NEW = {"index.md": "new", "index.html": "<p>new</p>", "plots/a.png": "A"}


def test_a_previous_report_is_replaced_file_for_file(tmp_path):
    out = tmp_path / "report"
    make_report(out, OLD)
    make_report(out, NEW)
    found = contents(out)
    listed = json.loads(found.pop(MARKER))["files"]
    assert found == NEW and sorted(listed) == sorted(NEW)  # plots/b.png went with the old one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


@pytest.mark.parametrize("change", ["user file in plots", "edited index.md", "user folder"])
def test_a_report_folder_with_user_files_is_refused_and_kept(tmp_path, change):
    out = tmp_path / "report"
    make_report(out, OLD)
    if change == "user file in plots":
        (out / "plots" / "fig1.pdf").write_text("mine")
        named = "plots/fig1.pdf (not written by the report)"
    elif change == "edited index.md":
        (out / "index.md").write_text("old\nmy notes")
        named = "index.md (changed since the report wrote it)"
    else:
        (out / "drafts").mkdir()
        named = "drafts/ (not written by the report)"
    before = contents(out)
    with pytest.raises(InputError) as info:
        check_out_folder(out)
    assert info.value.field == "--out" and named in str(info.value)
    staging = staging_folder(out)
    write_files(staging, {"index.md": b"new"})
    write_marker(staging)
    with pytest.raises(InputError):  # checked again just before the swap
        replace_folder(staging, out)
    assert contents(out) == before


def test_a_folder_without_marker_is_never_touched(tmp_path):
    out = tmp_path / "notes"
    (out / "plots").mkdir(parents=True)
    (out / "index.md").write_text("my notes")
    (out / "plots" / "fig1.pdf").write_text("mine")
    with pytest.raises(InputError, match="has no .convcheck-report.json"):
        check_out_folder(out)
    assert contents(out) == {"index.md": "my notes", "plots/fig1.pdf": "mine"}
    (tmp_path / "empty").mkdir()
    make_report(tmp_path / "empty", NEW)  # an empty folder is fine
    assert contents(tmp_path / "empty")["index.md"] == "new"


def test_out_paths_that_cannot_hold_a_report(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="existing file"):
        check_out_folder(tmp_path / "file")
    with pytest.raises(InputError, match="does not exist"):
        check_out_folder(tmp_path / "missing" / "report")
    with pytest.raises(InputError, match="is not a folder"):
        check_out_folder(tmp_path / "file" / "report")


def test_the_swap_is_one_step_where_the_system_offers_it(tmp_path, monkeypatch):
    """With renameat2(RENAME_EXCHANGE) the old report is never renamed away: at every instant
    ``out`` is a complete report."""
    out = tmp_path / "report"
    make_report(out, OLD)
    probe_a, probe_b = tmp_path / "a", tmp_path / "b"
    probe_a.mkdir()
    probe_b.mkdir()
    if not folder.exchange(probe_a, probe_b):
        pytest.skip("renameat2(RENAME_EXCHANGE) not available here; the fallback is tested")

    replace = os.replace

    def no_rename(source, destination):
        assert out not in (Path(source), Path(destination)), "the old report was renamed away"
        replace(source, destination)

    monkeypatch.setattr(os, "replace", no_rename)
    make_report(out, NEW)
    assert json.loads(contents(out).pop(MARKER)) and contents(out)["index.md"] == "new"


def test_the_fallback_swap_and_its_recovery(tmp_path, monkeypatch):
    """Without the exchange call: rename the old away, the new in. A process killed between the
    two renames leaves ``.report.PID.X.old``; the next run moves it back first."""
    monkeypatch.setattr(folder, "exchange", lambda a, b: False)
    out = tmp_path / "report"
    make_report(out, OLD)
    make_report(out, NEW)
    assert contents(out)["index.md"] == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
    # simulate the kill: the old report renamed away by a process that no longer exists
    dead = dead_pid()
    os.replace(out, tmp_path / f".report.{dead}.abcd1234.old")
    assert clean_stale(out) == [tmp_path / f".report.{dead}.abcd1234.old"]
    assert contents(out)["index.md"] == "new"


def dead_pid() -> int:
    """The id of a process that has exited."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_stale_partial_folders_are_cleaned_only_when_safe(tmp_path):
    out = tmp_path / "report"
    dead = dead_pid()
    stale = tmp_path / f".report.{dead}.x1y2z3.partial"
    write_files(stale, {"index.md": b"half", "plots/a.png": b"a", ".results.json.k9.tmp": b"{"})
    foreign = tmp_path / f".report.{dead}.q1w2e3.partial"
    write_files(foreign, {"thesis.tex": b"mine"})
    live = tmp_path / f".report.{os.getpid()}.r4t5y6.partial"  # a run under way
    write_files(live, {"index.md": b"half"})
    other = tmp_path / f".other.{dead}.u7i8o9.partial"  # another output's
    write_files(other, {"index.md": b"half"})
    check_out_folder(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [foreign.name, live.name, other.name])
    assert (foreign / "thesis.tex").read_text() == "mine"

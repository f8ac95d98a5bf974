"""Atomic writes leave either the old or the complete new file, never a partial one."""

from __future__ import annotations

import os

import pytest

from convcheck.atomic import write_atomic


def test_writes_text_and_bytes_and_creates_folders(tmp_path):
    target = tmp_path / "a" / "b" / "out.json"
    write_atomic(target, "{}\n")
    assert target.read_text() == "{}\n"
    write_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "report.md"
    target.write_text("old")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        target = write_atomic(tmp_path / "out.txt", "x")
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o644


def test_exchange_swaps_two_folders_or_says_it_cannot(tmp_path):
    from convcheck.atomic import exchange

    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "a").write_text("1")
    (second / "b").write_text("2")
    if exchange(first, second):
        assert [p.name for p in first.iterdir()] == ["b"]
        assert [p.name for p in second.iterdir()] == ["a"]
    else:  # no renameat2 here: nothing changed
        assert [p.name for p in first.iterdir()] == ["a"]
    with pytest.raises(FileNotFoundError):
        exchange(first, tmp_path / "missing")

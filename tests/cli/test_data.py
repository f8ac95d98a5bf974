"""``convcheck data``: download (from a local file:// source) and path."""

from __future__ import annotations

import gzip
import hashlib

from convcheck.cli import main
from convcheck.data import download as fetching
from convcheck.data.download import RemoteFile


def test_download_and_path(tmp_path, capsys, monkeypatch):
    text = b"1 1:1\n-1 2:1\n"
    source = tmp_path / "a9a"
    source.write_bytes(text)
    monkeypatch.setitem(fetching.SOURCES, "a9a", (RemoteFile(
        "libsvm/a9a.gz", (source.as_uri(),), hashlib.sha256(text).hexdigest(), True),))
    data = tmp_path / "data"
    assert main(["data", "download", "a9a", "--data-dir", str(data)]) == 0
    assert gzip.decompress((data / "libsvm" / "a9a.gz").read_bytes()) == text
    assert str(data / "libsvm" / "a9a.gz") in capsys.readouterr().out
    assert main(["data", "path", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert f"a9a            {data}" in out and str(data) in out.splitlines()[1]


def test_download_errors_exit_2(tmp_path, capsys):
    assert main(["data", "download", "mushrooms", "--data-dir", str(tmp_path)]) == 2
    assert "checksum is not published" in capsys.readouterr().err
    assert main(["data", "download", "nosuch", "--data-dir", str(tmp_path)]) == 2
    assert "'dataset'" in capsys.readouterr().err

"""``convcheck data download``: SHA-256 checked, atomic, clear when offline (local servers only)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import socket
import threading
import time
from functools import partial

import pytest

from convcheck.data import download as fetching
from convcheck.data import load_dataset
from convcheck.data.download import RemoteFile, download
from convcheck.errors import DataFileError, InputError

SVMLIGHT = b"1 1:0.5 3:2\n-1 2:-1.5\n1 4:7\n"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving the folder ``tmp_path / "site"``; its base URL."""
    site = tmp_path / "site"
    site.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            partial(QuietHandler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield site, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def serve(monkeypatch, name, *files: RemoteFile) -> None:
    monkeypatch.setitem(fetching.SOURCES, name, files)


def test_download_checks_and_stores_compressed(server, tmp_path, monkeypatch):
    site, base = server
    (site / "toy").write_bytes(SVMLIGHT)
    serve(monkeypatch, "a9a", RemoteFile("libsvm/a9a.gz", (base + "missing", base + "toy"),
                                         sha256(SVMLIGHT), compress=True))
    lines = []
    data = tmp_path / "data"
    [path] = download("a9a", data, progress=lines.append)
    assert path == data.resolve() / "libsvm" / "a9a.gz"
    assert gzip.decompress(path.read_bytes()) == SVMLIGHT  # the first source failed: 404
    assert sorted(p.name for p in path.parent.iterdir()) == ["a9a.gz"]  # no temporary left
    # the loaders find it; a second download checks it and fetches nothing
    (site / "toy").unlink()
    download("a9a", data, progress=lines.append)
    assert "already there, SHA-256 checked" in lines[-1]


def test_file_urls_and_uncompressed_files(tmp_path, monkeypatch):
    source = tmp_path / "labels.gz"
    source.write_bytes(b"payload")
    serve(monkeypatch, "mnist", RemoteFile("mnist/labels.gz", (source.as_uri(),),
                                           sha256(b"payload")))
    [path] = download("mnist", tmp_path / "data")
    assert path.read_bytes() == b"payload"


def test_a_wrong_checksum_stores_nothing(server, tmp_path, monkeypatch):
    site, base = server
    (site / "toy").write_bytes(SVMLIGHT + b"tampered\n")
    serve(monkeypatch, "a9a", RemoteFile("libsvm/a9a.gz", (base + "toy",), sha256(SVMLIGHT),
                                         compress=True))
    with pytest.raises(DataFileError, match=f"expected {sha256(SVMLIGHT)}"):
        download("a9a", tmp_path / "data")
    assert list((tmp_path / "data" / "libsvm").iterdir()) == []


def test_an_existing_different_file_is_left_alone(tmp_path, monkeypatch):
    serve(monkeypatch, "mnist", RemoteFile("mnist/x.gz", ("file:///nowhere",), sha256(b"a")))
    mine = tmp_path / "data" / "mnist" / "x.gz"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"mine")
    with pytest.raises(DataFileError, match="left alone"):
        download("mnist", tmp_path / "data")
    assert mine.read_bytes() == b"mine"


def test_offline_is_a_clear_error_not_a_hang(tmp_path, monkeypatch):
    # a port nobody listens on (connection refused), and a server that accepts but never answers
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused = f"http://127.0.0.1:{closed.getsockname()[1]}/a9a"
    closed.close()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    mute = f"http://127.0.0.1:{silent.getsockname()[1]}/a9a"
    serve(monkeypatch, "a9a", RemoteFile("libsvm/a9a.gz", (refused, mute), sha256(b""), True))
    started = time.monotonic()
    try:
        with pytest.raises(DataFileError) as info:
            download("a9a", tmp_path / "data", timeout=0.5)
    finally:
        silent.close()
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert refused in message and mute in message and "timed out" in message
    assert "copy the file to" in message


def test_names_that_cannot_be_downloaded(tmp_path):
    with pytest.raises(InputError, match="'a9a', 'w8a', 'mnist'") as info:
        download("cifar10", tmp_path)
    assert info.value.field == "dataset"
    with pytest.raises(DataFileError, match="checksum is not published"):
        download("mushrooms", tmp_path)


def test_published_checksums_match_the_reference_files(shared_data):
    """The table of sources agrees with the reference copies (CONVCHECK_DATA)."""
    for remote in (r for files in fetching.SOURCES.values() for r in files):
        stored = shared_data / remote.path
        data = gzip.decompress(stored.read_bytes()) if remote.compress else stored.read_bytes()
        assert sha256(data) == remote.sha256, remote.path


def test_downloaded_files_load(server, tmp_path, monkeypatch):
    site, base = server
    (site / "toy").write_bytes(SVMLIGHT)
    serve(monkeypatch, "a9a", RemoteFile("libsvm/toy.gz", (base + "toy",), sha256(SVMLIGHT),
                                         compress=True))
    download("a9a", tmp_path / "data")
    toy = load_dataset(f"svmlight:{tmp_path / 'data' / 'libsvm' / 'toy.gz'}", n_features=5)
    assert toy.X.shape == (3, 5)

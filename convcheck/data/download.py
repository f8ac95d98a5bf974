"""Fetch the real datasets from their public sources, SHA-256 checked (``convcheck data download``).

Each file is streamed to a temporary file beside its target, its SHA-256 compared with the
published one, and only then moved into place, so an interrupted or corrupted download leaves
nothing behind. LIBSVM serves plain text; it is stored gzip-compressed (the layout the loaders
read). A file already there is checked, not fetched again; one that differs from the published
file is reported and left alone (nothing a user owns is overwritten).

mushrooms and phishing are not offered: the layout convcheck reads (a zero-based 70/30 pair
``name.gz`` + ``name.t.gz``) is a re-export of the LIBSVM files, whose own checksums are not
published, so a download could not be checked. Fashion-MNIST is not offered either (supply its
files yourself, see :func:`convcheck.data.named.load_shared_idx`).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from convcheck.atomic import current_umask
from convcheck.data.location import download_dir
from convcheck.errors import DataFileError, InputError

#: Seconds to wait for a connection or for the next block of data before giving up.
TIMEOUT = 20.0
CHUNK = 1 << 20

LIBSVM_PAGE = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary/"
MNIST_PAGE = "http://yann.lecun.com/exdb/mnist/"
#: The copy torchvision downloads from (same files, same checksums), tried second.
MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset and where it comes from.

    Attributes
    ----------
    path : str
        Where it goes inside the data folder, e.g. ``"libsvm/a9a.gz"``.
    urls : tuple of str
        Sources, tried in order (``http(s)://`` or ``file://``).
    sha256 : str
        Of the bytes served.
    compress : bool
        Store it gzip-compressed (the source serves plain text).
    """

    path: str
    urls: tuple[str, ...]
    sha256: str
    compress: bool = False


def _mnist(stem: str, sha256: str) -> RemoteFile:
    file = f"{stem}.gz"
    return RemoteFile(f"mnist/{file}", (MNIST_PAGE + file, MNIST_MIRROR + file), sha256)


#: Every dataset ``convcheck data download`` fetches, and its files.
SOURCES: dict[str, tuple[RemoteFile, ...]] = {
    "a9a": (RemoteFile("libsvm/a9a.gz", (LIBSVM_PAGE + "a9a",),
                       "f5d5ffd8d865ff41328e7ee043e4b020816914ff6843ff15b98905ddbedce906",
                       compress=True),),
    "w8a": (RemoteFile("libsvm/w8a.gz", (LIBSVM_PAGE + "w8a",),
                       "6a9fa8fd5f524303240a5db07d4b3d4a51e8b7b4b20a914105d8e3e8c81640f2",
                       compress=True),),
    "mnist": (
        _mnist("train-images-idx3-ubyte",
               "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        _mnist("train-labels-idx1-ubyte",
               "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        _mnist("t10k-images-idx3-ubyte",
               "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        _mnist("t10k-labels-idx1-ubyte",
               "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    ),
}

#: File-backed datasets that cannot be downloaded, and why.
NOT_DOWNLOADABLE: dict[str, str] = {
    **{name: f"convcheck reads a zero-based 70/30 re-export (libsvm/{name}.gz + "
             f"libsvm/{name}.t.gz) of the LIBSVM file, whose checksum is not published, so no "
             "download could be checked; copy both files into <data folder>/libsvm/"
       for name in ("mushrooms", "phishing")},
    "fashion-mnist": "its files are not fetched by convcheck; put the four IDX files in "
                     "<data folder>/fashion-mnist/ or use the dataset idx:DIRECTORY",
}


def _sha256(path: Path, *, gzipped: bool = False) -> str:
    digest = hashlib.sha256()
    opener = gzip.open if gzipped else open
    with opener(path, "rb") as stream:
        while block := stream.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url: str, into: Path, timeout: float) -> str:
    """Stream ``url`` into the file ``into``; its SHA-256."""
    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "convcheck"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(into, "wb") as out:
        while block := response.read(CHUNK):
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def _store(remote: RemoteFile, folder: Path, timeout: float) -> None:
    """Fetch ``remote`` into ``folder``, checked, or raise naming every source tried."""
    target = folder / remote.path
    target.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as work:
        raw = Path(work) / "download"
        for url in remote.urls:
            try:
                digest = _fetch(url, raw, timeout)
            except (urllib.error.URLError, OSError, ValueError) as error:  # OSError: timeouts
                failures.append(f"{url}: {getattr(error, 'reason', error)}")
                continue
            if digest != remote.sha256:
                failures.append(f"{url}: SHA-256 {digest}, expected {remote.sha256}")
                continue
            stored = raw
            if remote.compress:
                stored = Path(work) / "compressed"
                with open(raw, "rb") as source, \
                        gzip.GzipFile(stored, "wb", compresslevel=9, mtime=0) as sink:
                    shutil.copyfileobj(source, sink, CHUNK)
            stored.chmod(0o666 & ~current_umask())
            os.replace(stored, target)
            return
    raise DataFileError(
        f"could not download {remote.path}: " + "; ".join(failures)
        + f". Without a connection (each source waits {timeout:g} s at most), copy the file to "
        f"{target} yourself."
    )


def download(name: str, data_dir: str | Path | None = None, *, timeout: float = TIMEOUT,
             progress: Callable[[str], None] | None = None) -> list[Path]:
    """Fetch dataset ``name`` into the download folder; the paths of its files.

    Parameters
    ----------
    name : str
        A key of :data:`SOURCES` (``"a9a"``, ``"w8a"``, ``"mnist"``).
    data_dir : str or Path, optional
        Destination; default ``CONVCHECK_DATA``, else the user cache
        (:func:`~convcheck.data.location.download_dir`).
    timeout : float
        Seconds to wait for a connection or data from one source.
    progress : callable, optional
        Called with one line per file.

    Raises
    ------
    InputError
        Unknown name (the allowed ones are listed).
    DataFileError
        The dataset cannot be downloaded (why), every source failed (each failure named), or
        a file already there differs from the published one.
    """
    if name in NOT_DOWNLOADABLE:
        raise DataFileError(f"{name!r} cannot be downloaded: {NOT_DOWNLOADABLE[name]}")
    if name not in SOURCES:
        raise InputError("dataset", name, ", ".join(repr(n) for n in SOURCES),
                         "convcheck data download")
    folder = download_dir(data_dir)
    paths = []
    for remote in SOURCES[name]:
        target = folder / remote.path
        if target.exists():
            digest = _sha256(target, gzipped=remote.compress)
            if digest != remote.sha256:
                raise DataFileError(
                    f"{target} exists but is not the published file (SHA-256 {digest}, "
                    f"expected {remote.sha256}); it is left alone: move it away and run the "
                    "download again")
            if progress:
                progress(f"{target}: already there, SHA-256 checked")
        else:
            if progress:
                progress(f"{target}: downloading from {remote.urls[0]}")
            _store(remote, folder, timeout)
        paths.append(target)
    return paths

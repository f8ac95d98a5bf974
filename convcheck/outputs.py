"""Output paths, checked before any work starts.

A command that writes a file or a folder checks its path first, so that a typo or a folder
that cannot be written costs nothing: the folder that will hold the output must already exist
(missing folders are never created silently), must be a folder this process can write into
(tried, not guessed from permission bits), and the output itself must be new, a regular file
(for files) or a folder (for folders). Every refusal is an :class:`~convcheck.errors.InputError`
naming the option, the path and what is allowed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from convcheck.errors import InputError


def check_output_file(path: str | os.PathLike, field: str = "--out",
                      suffixes: Iterable[str] | None = None) -> Path:
    """``path`` as a :class:`Path` if a file can be written there (replacing a regular file).

    Parameters
    ----------
    path : path
    field : str
        The option that named it (``"--out"``), for the message.
    suffixes : iterable of str, optional
        Allowed endings (``".json"``, ``".csv"``); case-insensitive.
    """
    target = Path(path)
    if suffixes is not None:
        allowed = tuple(suffixes)
        if target.suffix.lower() not in allowed:
            raise InputError(field, str(path), "a file ending in " + ", ".join(allowed))
    if target.is_dir():
        raise InputError(field, str(path), "a file path (this is an existing folder)")
    if target.exists() and not target.is_file():
        raise InputError(field, str(path), "a new path or a regular file (this is neither)")
    _check_parent(target, field)
    return target


def check_output_folder(path: str | os.PathLike, field: str = "--out") -> Path:
    """``path`` as a :class:`Path` if it is an existing folder or one that can be created in an
    existing, writable folder. What may be replaced inside is the caller's concern."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise InputError(field, str(path), "a folder path (this is an existing file)")
    _check_parent(target, field)
    return target


def _check_parent(target: Path, field: str) -> None:
    """The folder holding ``target`` exists and this process can create entries in it."""
    parent = target.absolute().parent
    if not parent.exists():
        raise InputError(field, str(target),
                         f"a path in an existing folder ({parent} does not exist; create it "
                         "first)")
    if not parent.is_dir():
        raise InputError(field, str(target), f"a path in a folder ({parent} is not a folder)")
    try:
        probe = tempfile.mkdtemp(prefix=".convcheck-probe.", dir=parent)
    except OSError as error:
        raise InputError(field, str(target),
                         f"a path in a folder this process can write to ({parent}: "
                         f"{error.strerror})") from None
    os.rmdir(probe)

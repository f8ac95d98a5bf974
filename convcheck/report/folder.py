"""The report folder: its marker, what may be replaced, and the swap of an old report for a new.

Guarantees (also in docs/reliability.md):

- **Nothing a user owns is deleted.** Every report folder carries a marker file,
  ``.convcheck-report.json``, listing each file the report wrote with its SHA-256. An existing
  ``--out`` is replaced only if it is empty or holds exactly the files its marker lists,
  unchanged; anything else there (a user's ``plots/fig1.pdf``, an edited ``index.md``, a folder
  without a marker) makes the run refuse before any work, naming the files. An old report is
  removed file by file from its marker's list, never with a recursive delete.
- **Always a complete report.** The new report is built in a hidden sibling folder
  ``.NAME.PID.XXXX.partial`` and swapped with the old one in one atomic step
  (``renameat2(RENAME_EXCHANGE)``, Linux); at every instant ``--out`` holds the complete old or
  the complete new report. Where that call is missing, the old report is first renamed to
  ``.NAME.PID.XXXX.old`` and the new one moved in right after; if the process dies between the
  two renames, the next run moves the old report back before it starts.
- **No stale folders.** Hidden ``.NAME.PID.*`` folders beside ``--out`` whose process is gone
  (killed while writing) are removed by the next run writing to that ``--out``; they hold only
  report files, checked before anything is removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from convcheck.atomic import current_umask, exchange, write_atomic
from convcheck.errors import InputError
from convcheck.outputs import check_output_folder

#: Name of the marker file inside every report folder.
MARKER = ".convcheck-report.json"
#: What a report writes (relative paths; ``.X.tmp``: an atomic write under way): checked
#: before a staging folder is removed.
REPORT_FILE = re.compile(r"index\.html|index\.md|results\.json|plots/|plots/[A-Za-z0-9._-]+"
                         r"\.png|\.[^/]+\.tmp|" + re.escape(MARKER))
#: How many offending files a refusal lists.
SHOWN = 5


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(folder: Path) -> dict[str, Path]:
    """Every entry below ``folder`` that is not a folder (symbolic links included), by its
    relative POSIX path, plus ``"name/"`` for each folder."""
    out: dict[str, Path] = {}
    for root, folders, names in os.walk(folder):
        here = Path(root)
        for name in folders:
            out[(here / name).relative_to(folder).as_posix() + "/"] = here / name
        for name in names:
            out[(here / name).relative_to(folder).as_posix()] = here / name
    return out


def read_marker(folder: Path) -> dict[str, str] | None:
    """The files a report folder's marker lists (relative path → SHA-256), or ``None`` when the
    marker is missing or not one convcheck wrote."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        files = marker["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if marker.get("written_by") != "convcheck" or not isinstance(files, dict):
        return None
    return {str(k): str(v) for k, v in files.items()}


def write_marker(folder: Path) -> None:
    """List every file of the finished report ``folder`` in its marker (written last)."""
    files = {name: _digest(path) for name, path in sorted(_files(folder).items())
             if not name.endswith("/")}
    write_atomic(folder / MARKER, json.dumps(
        {"written_by": "convcheck", "note": "files of a convcheck report; the next "
         "'convcheck verify --out' here replaces exactly these", "files": files}, indent=1))


def foreign_files(folder: Path) -> list[str] | None:
    """Entries of ``folder`` that its report did not write, or that changed since (each with a
    reason); ``None`` when it has no marker."""
    listed = read_marker(folder)
    if listed is None:
        return None
    expected_folders = {name.rsplit("/", 1)[0] + "/" for name in listed if "/" in name}
    out = []
    for name, path in sorted(_files(folder).items()):
        if name == MARKER or name in expected_folders:
            continue
        if name not in listed:
            out.append(f"{name} (not written by the report)")
        elif path.is_symlink() or not path.is_file() or _digest(path) != listed[name]:
            out.append(f"{name} (changed since the report wrote it)")
    return out


def check_out_folder(target: str | os.PathLike, field: str = "--out") -> Path:
    """Refuse ``target`` unless it is new, an empty folder, or an unchanged previous report.

    Stale staging folders of ``target`` are dealt with first (:func:`clean_stale`).
    """
    target = check_output_folder(target, field)
    clean_stale(target)
    if not target.exists():
        return target
    foreign = foreign_files(target)
    if foreign is None:
        if not any(target.iterdir()):
            return target
        raise InputError(field, str(target),
                         "a new path, an empty folder or a previous convcheck report folder "
                         f"(this folder has no {MARKER}, so it is not one; nothing in it is "
                         "touched: choose another --out or empty it)")
    if foreign:
        more = f" and {len(foreign) - SHOWN} more" if len(foreign) > SHOWN else ""
        raise InputError(field, str(target),
                         "a previous report folder holding only the files the report wrote, "
                         "unchanged (found: " + "; ".join(foreign[:SHOWN]) + more
                         + "; move them away or choose another --out)")
    return target


def staging_folder(target: Path) -> Path:
    """A new hidden sibling of ``target`` to build the report in (``.NAME.PID.XXXX.partial``)."""
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".partial",
                                   dir=target.parent))
    folder.chmod(0o777 & ~current_umask())
    return folder


def replace_folder(new: Path, target: Path, field: str = "--out") -> None:
    """Put the finished report ``new`` at ``target``; an old report there is removed."""
    check_out_folder(target, field)  # again: the folder may have changed during the run
    if not target.exists():
        os.replace(new, target)
    elif exchange(new, target):
        _remove_report(new, target)
    else:
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".old",
                                    dir=target.parent))
        os.replace(target, old)  # onto the empty folder just made
        os.replace(new, target)
        _remove_report(old, target)


def _remove_report(folder: Path, target: Path) -> None:
    """Delete the report files ``folder``'s marker lists, then its empty folders; anything
    else (added while the run went on) is kept, in a visible folder beside ``target``."""
    listed = read_marker(folder) or {}
    for name in [*listed, MARKER]:
        path = folder / name
        if path.is_file() or path.is_symlink():
            path.unlink()
    for root, _, _ in sorted(os.walk(folder, topdown=False), key=lambda w: -len(w[0])):
        if not any(Path(root).iterdir()):
            Path(root).rmdir()
    if folder.exists():
        os.replace(folder, target.parent / f"{target.name}.kept-{os.getpid()}")


_STALE = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.(?P<kind>partial|old)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(target: Path) -> list[Path]:
    """Deal with the hidden ``.NAME.PID.XXXX.{partial,old}`` folders of dead processes beside
    ``target``: an old report whose replacement never arrived is moved back to ``target``;
    other such folders are removed if they hold report files only (else left alone).
    Returns the folders removed or restored."""
    parent = target.absolute().parent
    if not parent.is_dir():
        return []
    handled = []
    for entry in sorted(parent.iterdir()):
        match = _STALE.fullmatch(entry.name)
        if (match is None or match["name"] != target.name or not entry.is_dir()
                or entry.is_symlink() or _alive(int(match["pid"]))):
            continue
        if match["kind"] == "old" and not target.exists() and read_marker(entry) is not None:
            os.replace(entry, target)
        elif not discard(entry):
            continue
        handled.append(entry)
    return handled


def discard(folder: Path) -> bool:
    """Remove ``folder`` if it holds report files only (a staging folder); whether it is gone."""
    if not folder.exists():
        return True
    if not all(REPORT_FILE.fullmatch(name) for name in _files(folder)):
        return False
    shutil.rmtree(folder)
    return True


def write_files(folder: Path, files: Mapping[str, bytes]) -> None:
    """Write ``files`` (relative path → content) into the new folder ``folder``."""
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)

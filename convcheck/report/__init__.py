"""Verification report: verdicts and traces → ``index.html``, ``index.md``, ``results.json``, PNGs.

:func:`write_report` builds the whole report in a sibling folder and only then moves it into
place, so an interrupted run never leaves a half-written report: the target folder holds
either the previous complete report or the new one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from convcheck.atomic import current_umask
from convcheck.jsonio import write_json
from convcheck.report import pages, plots

__all__ = ["write_report"]


def _figures(document: Mapping[str, Any]) -> dict[str, list[pages.Figure]]:
    """Every figure, grouped by case (``""``: report-wide); a check's figure carries the
    anchor its table row links to, and its full title as caption."""
    slug = pages.slug
    out: dict[str, list[pages.Figure]] = {"": []}
    rates = plots.rates_figure(document["checks"])
    if rates is not None:
        out[""].append(pages.Figure("rates.png", "plot-rates",
                                    "Fitted against theoretical linear rates, one point per "
                                    "check with a geometric bound", rates))
    for case in document["cases"]:
        name, figures = case["case"], []
        for check in (c for c in document["checks"] if c["case"] == name):
            png = plots.check_figure(check)
            if png is not None:
                anchor = pages.plot_anchor(check)
                caption = f"{name} — {plots.check_title(check)}: {check['reason']}"
                figures.append(pages.Figure(f"{anchor[len('plot-'):]}.png", anchor, caption,
                                            png))
        for suffix, figure, caption in (
                ("bits", plots.bits_figure, "accuracy against cumulative uplink bits"),
                ("staleness", plots.staleness_figure, "histogram of the staleness")):
            png = figure(case)
            if png is not None:
                figures.append(pages.Figure(f"{slug(name)}--{suffix}.png",
                                            f"plot-{slug(name)}--{suffix}",
                                            f"{name}: {caption}", png))
        out[name] = figures
    return out


def write_report(document: Mapping[str, Any], out: str | os.PathLike) -> Path:
    """Write the report of a verification ``document`` into the folder ``out``.

    Parameters
    ----------
    document : dict
        What :func:`convcheck.verify.verify` returns: ``checks`` (verdict rows with their
        series), ``cases``, ``summary``, ``environment``, ``created``, ``suite``, ``seed``,
        ``jobs``.
    out : path
        The report folder; replaced as a whole once the new report is complete.

    Returns
    -------
    Path
        ``out/index.html``.
    """
    target = Path(out).resolve()
    check_out_folder(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial",
                                    dir=target.parent))
    try:
        staging.chmod(0o777 & ~current_umask())
        figures = _figures(document)
        (staging / "plots").mkdir()
        for group in figures.values():
            for figure in group:
                (staging / "plots" / figure.file_name).write_bytes(figure.png)
        (staging / "index.md").write_text(pages.markdown_page(document, figures), "utf-8")
        (staging / "index.html").write_text(pages.html_page(document, figures), "utf-8")
        write_json(staging / "results.json", document)
        _replace_folder(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target / "index.html"


#: Files a report folder holds; an existing folder with anything else is never replaced.
REPORT_FILES = frozenset({"index.html", "index.md", "results.json", "plots"})


def check_out_folder(target: str | os.PathLike) -> None:
    """``target`` must be new, an empty folder, or a previous report (nothing else in it)."""
    target = Path(target)
    if not target.exists():
        return
    if not target.is_dir() or not {p.name for p in target.iterdir()} <= REPORT_FILES:
        from convcheck.errors import InputError

        allowed = ("a new path, an empty folder or a previous report folder (holding only "
                   + ", ".join(sorted(REPORT_FILES)) + ")")
        raise InputError("out", str(target), allowed)


def _replace_folder(new: Path, target: Path) -> None:
    """Move the complete folder ``new`` to ``target``, replacing an older report there."""
    check_out_folder(target)
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.{os.getpid()}.old"
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

"""Verification report: verdicts and traces → ``index.html``, ``index.md``, ``results.json``, PNGs.

:func:`write_report` builds the whole report in a hidden sibling folder and only then swaps it
into place (:mod:`convcheck.report.folder`): an interrupted run never leaves a half-written
report, the target folder always holds a complete report, and nothing the report did not write
is ever deleted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from convcheck.jsonio import write_json
from convcheck.report import pages, plots
from convcheck.report.folder import (
    check_out_folder,
    discard,
    replace_folder,
    staging_folder,
    write_files,
    write_marker,
)

__all__ = ["check_out_folder", "write_report"]


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

    The report is built in a hidden sibling folder and swapped in complete (see
    :mod:`convcheck.report.folder` for what is replaced, what is refused and what an
    interruption leaves).

    Parameters
    ----------
    document : dict
        What :func:`convcheck.verification.verify` returns: ``checks`` (verdict rows with their
        series), ``cases``, ``summary``, ``environment``, ``created``, ``suite``, ``seed``,
        ``jobs``.
    out : path
        The report folder: new, empty, or a previous report (its marker lists its files).

    Returns
    -------
    Path
        ``out/index.html``.

    Raises
    ------
    InputError
        ``out`` holds anything the report did not write (nothing is changed then).
    """
    target = check_out_folder(out, "out").absolute()
    staging = staging_folder(target)
    try:
        figures = _figures(document)
        files = {f"plots/{figure.file_name}": figure.png
                 for group in figures.values() for figure in group}
        files["index.md"] = pages.markdown_page(document, figures).encode("utf-8")
        files["index.html"] = pages.html_page(document, figures).encode("utf-8")
        write_files(staging, files)
        write_json(staging / "results.json", document)
        write_marker(staging)
        replace_folder(staging, target, "out")
    finally:
        discard(staging)
    return target / "index.html"

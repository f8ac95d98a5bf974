"""The report's figures (matplotlib, Agg backend), as PNG bytes.

* :func:`check_figure` — a check's measured quantity and its bound per iteration (log scale),
  with the worst ratio marked and a note where the bound cannot be drawn (``≤ 0`` or infinite);
* :func:`bits_figure` — accuracy against cumulative uplink bits for the runs of a case;
* :func:`rates_figure` — fitted empirical rates against the theory's rates, one point per check,
  far-off points on a separate panel so that they do not squeeze the others together;
* :func:`staleness_figure` — the histogram of staleness of an asynchronous run.

Each ``draw_*`` function returns the :class:`~matplotlib.figure.Figure` (``None`` when there is
nothing to draw) and each ``*_figure`` its PNG. Titles are wrapped to the figure's width (the
page shows the full text under the figure), formulas are set with matplotlib's mathtext, and
:func:`clipped_texts` lists any text that would still stick out of the figure.
"""

from __future__ import annotations

import io
import re
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

WIDTH, HEIGHT, DPI = 7.0, 4.2, 100
TITLE_SIZE, LABEL_SIZE, TICK_SIZE, LEGEND_SIZE = 11, 10, 9, 9
#: Characters per title line (at :data:`TITLE_SIZE` on a :data:`WIDTH` inch figure).
TITLE_CHARACTERS = 70

_TEX = {
    "θ": r"\theta", "α": r"\alpha", "μ": r"\mu", "ξ": r"\xi", "ρ": r"\rho", "τ": r"\tau",
    "δ": r"\delta", "σ": r"\sigma", "Σ": r"\Sigma", "∇": r"\nabla ", "min_": r"\min_",
    "‖": r"\|", "−": "-",
    "≤": r"\leq ", "≥": r"\geq ", "·": r"\cdot ", "∞": r"\infty", "²": "^{2}", "⁰": "^{0}",
    "¹": "^{1}", "L̃": r"\tilde{L}", "θ̂": r"\hat{\theta}",
}
_TOKENS = re.compile("|".join(re.escape(k) for k in sorted(_TEX, key=len, reverse=True)))


def mathtext(formula: str) -> str:
    """A formula written with Unicode (``(1/T) Σ_{k<T} ‖∇f(θ^k)‖²``) as matplotlib mathtext;
    the text unchanged when mathtext cannot parse the result."""
    from matplotlib.mathtext import MathTextParser

    body = _TOKENS.sub(lambda m: _TEX[m.group(0)], formula)
    body = re.sub(r"_([A-Za-z]{2,})", r"_{\\mathrm{\1}}", body)  # f_low, L_max
    body = re.sub(r"\bf\*", "f^*", body).replace(r"\theta*", r"\theta^*")
    body = body.replace("%", r"\%")
    candidate = f"${body}$"
    try:
        MathTextParser("agg").parse(candidate)
    except ValueError:
        return formula
    return candidate


_MATHY = re.compile(r"[θ∇Σ‖^_²⁰¹*]|^[−+≤≥=<>]$|^\W?[A-Za-z]\W*$|\d/[A-Za-z]")
_IDENTIFIER = re.compile(r"^[A-Za-z]{2,}\w*_\w+'?s?$")  # a column name such as ef21_G


def mixed_mathtext(text: str) -> str:
    """Words stay words; every run of formula tokens (``(‖θ^k − θ̂‖ + r)²``) becomes mathtext."""
    tokens, out, run = text.split(), [], []
    for token in [*tokens, None]:
        if token is not None and _MATHY.search(token) and not _IDENTIFIER.match(token):
            run.append(token)
            continue
        if run:
            out.append(mathtext(" ".join(run)))
            run = []
        if token is not None:
            out.append(token)
    return " ".join(out)


def axis_label(quantity: str) -> tuple[str, str]:
    """An axis label and its remark, formulas as mathtext: ``"f − f*  (measured as …)"`` →
    (``"$f - f^*$"``, ``"measured as …"``)."""
    formula, _, remark = quantity.partition("  (")
    formula, _, words = formula.partition(", ")
    remark = ", ".join(part for part in (words, remark.rstrip(")")) if part)
    return mixed_mathtext(formula), mixed_mathtext(remark)


def wrap_title(text: str, width: int = TITLE_CHARACTERS, lines: int = 2) -> str:
    """``text`` in at most ``lines`` lines of ``width`` characters (``…`` when cut)."""
    return "\n".join(textwrap.wrap(text, width, max_lines=lines, placeholder=" …"))


def _figure(width: float = WIDTH, height: float = HEIGHT):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return figure


def clipped_texts(figure) -> list[str]:
    """What of ``figure`` is drawn outside it after layout: titles, axis labels with their
    tick labels, legends and notes (``[]`` when everything fits)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    bounds = figure.bbox
    parts = [(text.get_text(), text) for text in figure.texts]
    if figure._suptitle is not None:
        parts.append((figure._suptitle.get_text(), figure._suptitle))
    for ax in figure.axes:
        parts += [(ax.title.get_text(), ax.title),
                  (f"x axis: {ax.xaxis.label.get_text()}", ax.xaxis),
                  (f"y axis: {ax.yaxis.label.get_text()}", ax.yaxis)]
        if ax.get_legend() is not None:
            parts.append(("legend", ax.get_legend()))
    out = []
    for name, artist in parts:
        if not artist.get_visible() or (hasattr(artist, "get_text") and not name.strip()):
            continue
        box = (artist.get_tightbbox(renderer) if hasattr(artist, "get_tightbbox")
               else artist.get_window_extent(renderer))
        if box is None or box.width == 0:
            continue
        if (box.x0 < bounds.x0 - 0.5 or box.y0 < bounds.y0 - 0.5 or box.x1 > bounds.x1 + 0.5
                or box.y1 > bounds.y1 + 0.5):
            out.append(name)
    return out


def png(figure) -> bytes:
    """The figure as PNG bytes (its layout computed first)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _positive(values: Sequence[float | None]) -> np.ndarray:
    """Values as floats with ``None`` and non-positive entries masked (log axes)."""
    array = np.array([np.nan if v is None else v for v in values], dtype=float)
    array[~(array > 0)] = np.nan
    array[~np.isfinite(array)] = np.nan
    return array


def bound_note(bound: Sequence[float | None]) -> str:
    """Why (part of) the bound is missing from a log-scale plot, or ``""``."""
    values = np.array([np.nan if v is None else v for v in bound], dtype=float)
    reasons = []
    # undefined points are noted only when nothing is defined (a mean over T = 0 is expected)
    undefined = np.isnan(values) if np.isnan(values).all() else np.zeros(values.size, bool)
    for what, mask in (("≤ 0", values <= 0), ("infinite", np.isinf(values)),
                       ("undefined", undefined)):
        count = int(mask.sum())
        if count:
            share = "everywhere" if count == values.size else f"at {count} of {values.size} points"
            reasons.append(f"{what} {share}")
    if not reasons:
        return ""
    return "bound not drawn where it is " + "; ".join(reasons) + " (log scale)"


def check_title(check: Mapping[str, Any]) -> str:
    """A check's figure title: its name, kind and verdict (the page adds the case)."""
    kind = "negative control" if check.get("kind") == "negative_control" else "check"
    verdict = "PASS" if check.get("passed") else "FAIL"
    return f"{check['name']} ({kind}: {verdict})"


def draw_check(check: Mapping[str, Any]):
    """Measured quantity and bound per iteration of one check; ``None`` without a series."""
    series = check.get("series") or {}
    if not series.get("iteration"):
        return None
    figure = _figure()
    ax = figure.add_subplot()
    k = np.asarray(series["iteration"], dtype=float)
    ax.semilogy(k, _positive(series["measured"]), label="measured", color="C0")
    note = ""
    if series.get("bound"):
        drawn = _positive(series["bound"])
        note = bound_note(series["bound"])
        if np.isfinite(drawn).any():
            ax.semilogy(k, drawn, label="bound", color="C3", linestyle="--")
        else:
            ax.plot([], [], label="bound (not drawn)", color="C3", linestyle="--")
    worst = check.get("worst_iteration")
    if worst is not None and worst in series["iteration"]:
        j = series["iteration"].index(worst)
        ratio = check.get("max_ratio")  # None: not finite (strict JSON)
        shown = "∞" if ratio is None else f"{ratio:.3g}"
        if _positive([series["measured"][j]])[0] > 0:
            ax.plot([worst], [series["measured"][j]], "o", color="C1",
                    label=f"max measured/bound {shown}")
    ax.set_title(wrap_title(check_title(check)), fontsize=TITLE_SIZE)
    ax.set_xlabel("iteration $k$", fontsize=LABEL_SIZE)
    label, remark = axis_label(series.get("quantity", "measured quantity"))
    ax.set_ylabel(label, fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=LEGEND_SIZE, loc="best")
    notes = [text for text in (remark, note) if text]
    if notes:
        figure.text(0.01, 0.005, wrap_title("; ".join(notes), 110, 2), fontsize=8,
                    color="0.3", ha="left", va="bottom")
        figure.get_layout_engine().set(rect=(0, 0.07, 1, 0.93))
    return figure


def check_figure(check: Mapping[str, Any]) -> bytes | None:
    figure = draw_check(check)
    return None if figure is None else png(figure)


def draw_bits(case: Mapping[str, Any]):
    """Accuracy against cumulative uplink bits, one line per run of the case."""
    curves = case.get("curves") or {}
    if not curves:
        return None
    figure = _figure()
    ax = figure.add_subplot()
    metric = ""
    for label, curve in curves.items():
        bits = np.asarray(curve["bits_up_total"], dtype=float)
        ax.loglog(np.maximum(bits, 1.0), _positive(curve["metric"]),
                  label=textwrap.shorten(label, 45, placeholder="…"))
        metric = curve["metric_name"]
    ax.set_xlabel("cumulative uplink bits (all workers)", fontsize=LABEL_SIZE)
    ax.set_ylabel(metric.replace("_", " "), fontsize=LABEL_SIZE)
    ax.set_title(wrap_title(f"{case['case']}: accuracy against uplink bits"),
                 fontsize=TITLE_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=LEGEND_SIZE - 1, loc="best")
    return figure


def bits_figure(case: Mapping[str, Any]) -> bytes | None:
    figure = draw_bits(case)
    return None if figure is None else png(figure)


def outliers(x: np.ndarray, y: np.ndarray, factor: float = 10.0) -> np.ndarray:
    """Points far from the others: their distance to the median point exceeds ``factor`` times
    the median distance (any distance at all when the median distance is 0); never more than
    a third of the points."""
    distance = np.maximum(np.abs(x - np.median(x)), np.abs(y - np.median(y)))
    scale = np.median(distance)
    far = distance > factor * scale if scale > 0 else distance > 0
    if far.sum() > len(x) // 3:
        return np.zeros(len(x), dtype=bool)
    return far


def _rate_points(checks: Sequence[Mapping[str, Any]]) -> list[tuple[float, float, bool]]:
    return [
        (c["theory_rate"], c["fitted_rate"], bool(c.get("passed")))
        for c in checks
        if c.get("rate_kind") == "linear"
        and c.get("fitted_rate") is not None and c.get("theory_rate") is not None
    ]


def draw_rates(checks: Sequence[Mapping[str, Any]]):
    """Fitted linear rates (per iteration) against the bounds' rates; far-off points on a
    second panel with its own scale."""
    points = _rate_points(checks)
    if not points:
        return None
    theory = np.array([p[0] for p in points])
    fitted = np.array([p[1] for p in points])
    colors = np.array(["C2" if p[2] else "C3" for p in points])
    far = outliers(theory, fitted)
    figure = _figure()
    panels = [(~far, "")] + ([(far, "far-off points")] if far.any() else [])
    axes = figure.subplots(1, len(panels), squeeze=False,
                           width_ratios=[3, 1][:len(panels)])[0]
    for ax, (mask, name) in zip(axes, panels, strict=True):
        ax.scatter(theory[mask], fitted[mask], c=colors[mask], s=24)
        low = float(min(theory[mask].min(), fitted[mask].min()))
        high = float(max(theory[mask].max(), fitted[mask].max()))
        pad = 0.05 * (high - low) or 0.01
        ax.plot([low - pad, high + pad], [low - pad, high + pad], color="grey",
                linewidth=0.8, label="fitted = theory")
        ax.set_xlabel("theory rate ρ" if name else "theory rate ρ per iteration",
                      fontsize=LABEL_SIZE)
        ax.tick_params(labelsize=TICK_SIZE)
        ax.grid(True, alpha=0.3)
        if name:
            ax.set_title(f"{name} ({int(mask.sum())})", fontsize=LABEL_SIZE)
    axes[0].set_ylabel("fitted rate per iteration", fontsize=LABEL_SIZE)
    axes[0].legend(fontsize=LEGEND_SIZE, loc="upper left")
    figure.suptitle("fitted against theoretical linear rates (green: pass, red: fail)",
                    fontsize=TITLE_SIZE)
    return figure


def rates_figure(checks: Sequence[Mapping[str, Any]]) -> bytes | None:
    figure = draw_rates(checks)
    return None if figure is None else png(figure)


def draw_staleness(case: Mapping[str, Any]):
    """Histogram of the staleness τ_t of a case's asynchronous run."""
    staleness = case.get("staleness")
    if not staleness or not staleness.get("histogram"):
        return None
    figure = _figure()
    ax = figure.add_subplot()
    counts = staleness["histogram"]
    ax.bar(np.arange(len(counts)), counts, width=0.9, color="C0")
    ax.set_xlabel(r"staleness $\tau$ (server updates since the worker read its model)",
                  fontsize=LABEL_SIZE)
    ax.set_ylabel("updates", fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    ax.set_title(wrap_title(f"{case['case']}: staleness (mean {staleness['mean']:.2f}, "
                            f"max {staleness['max']})"), fontsize=TITLE_SIZE)
    return figure


def staleness_figure(case: Mapping[str, Any]) -> bytes | None:
    figure = draw_staleness(case)
    return None if figure is None else png(figure)

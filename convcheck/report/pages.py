"""The report's pages: a self-contained HTML page and a Markdown page from the same content.

Both show, in order: the verdict (all positive checks hold, all negative controls fail), the
environment, one table row per check, then each case with its figures.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from typing import Any

COLUMNS = ("case", "check", "kind", "algorithm", "problem", "source", "verdict",
           "max ratio (at k)", "fitted / theory rate", "iterations", "bits up", "bits down")


def _number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}"


def verdict_text(check: Mapping[str, Any]) -> str:
    """``PASS``/``FAIL`` with what happened (held, violated, not applicable, ...)."""
    if check["holds"] is None:
        happened = "not evaluated"
    else:
        happened = "holds" if check["holds"] else "violated"
    if not check["applicable"]:
        happened += ", not applicable"
    return f"{'PASS' if check['passed'] else 'FAIL'} ({happened})"


def row_cells(check: Mapping[str, Any]) -> list[str]:
    """The table cells of one check, in :data:`COLUMNS` order."""
    rates = f"{_number(check['fitted_rate'], 6)} / {_number(check['theory_rate'], 6)}"
    if check.get("rate_kind") == "linear" and check["theory_rate"] is not None:
        rates += " per iteration"
    elif check.get("rate_kind") == "power" and check["theory_rate"] is not None:
        rates = "log-log slope " + rates
    ratio = _number(check["max_ratio"], 4)
    if check["worst_iteration"] is not None:
        ratio += f" (k = {check['worst_iteration']})"
    kind = "negative control" if check["kind"] == "negative_control" else "positive"
    return [
        check["case"], check["name"], kind, check["algorithm"],
        f"{check['problem']} [{check['class']}]", check["source"], verdict_text(check),
        ratio, rates, _number(check["iterations"]),
        _number(check["bits_up"]), _number(check["bits_down"]),
    ]


def certificate_note(check: Mapping[str, Any]) -> str:
    """For a certified-rate check: the class certificate with its lower bound and gap, the
    instance certificate, the measured rate (``√`` of the fitted per-iteration factor of
    ``‖θ^k − θ*‖²``) and the class the certificate is about; ``""`` for other checks."""
    constants = check.get("constants") or {}
    if "rho_low" not in constants:
        return ""
    model = (constants.get("model_description") or {}).get("name", "?")
    parts = [f"certificate ({model} model): ρ = {_number(constants.get('rho'), 9)}, "
             f"ρ_low = {_number(constants.get('rho_low'), 9)}, "
             f"gap = {_number(constants.get('gap'), 3)}"]
    if constants.get("instance_rho") is not None:
        parts.append(f"instance (its own quadratics): ρ = {_number(constants['instance_rho'], 9)}")
    elif constants.get("instance_reason"):
        parts.append(f"instance: none ({constants['instance_reason']})")
    fitted = check.get("fitted_rate")
    if fitted is not None and fitted >= 0 and check.get("rate_kind") == "linear":
        parts.append(f"measured ρ = {_number(fitted ** 0.5, 9)}")
    note = "; ".join(parts)
    if constants.get("assumptions"):
        note += f". About: {constants['assumptions']}"
    return note


def summary_lines(document: Mapping[str, Any]) -> list[str]:
    """The verdict and its counts, in words."""
    summary = document["summary"]
    verdict = "PASSED" if summary["passed"] else "FAILED"
    lines = [
        f"Verification {verdict}: {summary['positive_held']}/{summary['positive']} positive "
        f"checks hold; {summary['negative_failed']}/{summary['negative']} negative controls "
        "fail as they must.",
        f"{summary['cases']} cases ({summary['skipped']} skipped), suite "
        f"{document['suite'] or 'as given'}, seed offset {document['seed']}, "
        f"{summary['seconds']:.1f} s with {document['jobs']} job(s).",
    ]
    return lines


def environment_line(document: Mapping[str, Any]) -> str:
    env = document["environment"]
    return ", ".join(f"{key} {value}" for key, value in env.items())


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------

def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_page(document: Mapping[str, Any], figures: Mapping[str, Sequence[str]]) -> str:
    """``index.md``; ``figures`` maps a case name to its PNG paths (relative to the report)."""
    lines = [f"# convcheck verification report — {document['created']}", ""]
    lines += [*summary_lines(document), "", f"Environment: {environment_line(document)}", ""]
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for check in document["checks"]:
        lines.append("| " + " | ".join(_md_cell(c) for c in row_cells(check)) + " |")
    lines.append("")
    for path in figures.get("", ()):
        lines += [f"![rates]({path})", ""]
    for case in document["cases"]:
        lines += [f"## {case['case']}", "", case["description"], ""]
        lines += [f"- file: `{case['path']}`", f"- problem: {case['problem_text']}",
                  f"- algorithm: `{case['algorithm_text']}`"]
        if case.get("skipped"):
            lines.append(f"- **skipped**: {case['skipped']}")
        for check in (c for c in document["checks"] if c["case"] == case["case"]):
            lines.append(f"- {check['name']}: {verdict_text(check)} — {check['reason']}")
            if check["why"]:
                lines.append(f"  (negative control: {check['why']})")
            if certificate_note(check):
                lines.append(f"  ({certificate_note(check)})")
        lines.append("")
        lines += [f"![{case['case']}]({path})" for path in figures.get(case["case"], ())]
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.8em; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
tr.fail td { background: #fde2e2; }
.verdict-pass { color: #176d17; font-weight: bold; }
.verdict-fail { color: #b00020; font-weight: bold; }
img { max-width: 640px; margin: 4px; border: 1px solid #ddd; }
section { margin-top: 2em; }
"""


def _image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def html_page(document: Mapping[str, Any], images: Mapping[str, Sequence[tuple[str, bytes]]]
              ) -> str:
    """``index.html``, self-contained: figures are embedded as data URIs.

    ``images`` maps a case name (``""`` for report-wide figures) to ``(alt, png bytes)``.
    """
    e = html.escape
    passed = document["summary"]["passed"]
    head = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>convcheck verification report</title><style>{STYLE}</style></head><body>")
    parts = [head, f"<h1>convcheck verification report — {e(document['created'])}</h1>"]
    klass = "verdict-pass" if passed else "verdict-fail"
    lines = summary_lines(document)
    parts.append(f"<p class='{klass}'>{e(lines[0])}</p><p>{e(lines[1])}</p>")
    parts.append(f"<p><small>Environment: {e(environment_line(document))}</small></p>")
    parts.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in COLUMNS) + "</tr>")
    for check in document["checks"]:
        row_class = "" if check["passed"] else " class='fail'"
        cells = "".join(f"<td>{e(str(c))}</td>" for c in row_cells(check))
        parts.append(f"<tr{row_class}>{cells}</tr>")
    parts.append("</table>")
    parts += [_image(png, alt) for alt, png in images.get("", ())]
    for case in document["cases"]:
        parts.append(f"<section id='{e(case['case'])}'><h2>{e(case['case'])}</h2>")
        parts.append(f"<p>{e(case['description'])}</p><ul>")
        parts.append(f"<li>file: <code>{e(case['path'])}</code></li>")
        parts.append(f"<li>problem: {e(case['problem_text'])}</li>")
        parts.append(f"<li>algorithm: <code>{e(case['algorithm_text'])}</code></li>")
        if case.get("skipped"):
            parts.append(f"<li><b>skipped</b>: {e(case['skipped'])}</li>")
        for check in (c for c in document["checks"] if c["case"] == case["case"]):
            klass = "verdict-pass" if check["passed"] else "verdict-fail"
            note = f" <i>(negative control: {e(check['why'])})</i>" if check["why"] else ""
            certificate = certificate_note(check)
            if certificate:
                note += f"<br><small>{e(certificate)}</small>"
            parts.append(f"<li>{e(check['name'])}: <span class='{klass}'>"
                         f"{e(verdict_text(check))}</span> — {e(check['reason'])}{note}</li>")
        parts.append("</ul>")
        parts += [_image(png, alt) for alt, png in images.get(case["case"], ())]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)

"""The report's pages: a self-contained HTML page and a Markdown page from the same content.

Both show, in order: the verdict, a table of contents, the summary grid (algorithms × problem
classes and bound kinds, each cell coloured by its worst verdict with the worst measured/bound
ratio of its positive checks, linked to its case), one table row per check (linked to the
check's plot), the rates figure, each case with its figures, and how to read the report. The
HTML page has sticky table headers and a filter (failed checks only, one algorithm) written in
inline JavaScript, so it works from a file without a server; without JavaScript every row shows.

Verdict states are rendered generically: ``passed`` true is *pass*, false is *fail*, anything
else (a future ``verdict`` such as *error* or *skipped*) is shown by its name in a neutral colour.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

COLUMNS = ("case", "check", "kind", "algorithm", "problem", "source", "verdict",
           "max ratio (at k)", "fitted / theory rate", "iterations", "bits up", "bits down",
           "plot")
#: Bound kinds (provenance) in the order the summary shows them.
SOURCES = ("classical", "paper", "derived here", "certified (LMI)", "empirical", "identity")
CLASSES = ("nonconvex", "convex", "strongly convex")


class Figure(NamedTuple):
    """One figure of the report: its file, its anchor in the page, its caption, its PNG."""

    file_name: str
    anchor: str
    caption: str
    png: bytes


def slug(text: str) -> str:
    """``text`` as a file name or HTML id: letters, digits, ``.``, ``_``, ``-``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def case_anchor(case_name: str) -> str:
    return "case-" + slug(case_name)


def check_anchor(check: Mapping[str, Any]) -> str:
    return "check-" + slug(f"{check['case']}--{check['name']}")


def plot_anchor(check: Mapping[str, Any]) -> str:
    return "plot-" + slug(f"{check['case']}--{check['name']}")


def _number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}"


def state(check: Mapping[str, Any]) -> str:
    """The check's outcome (``pass``, ``fail``, ``error``, ``refuted``, ``skipped``); a report
    written before outcomes existed falls back on ``passed``."""
    if check.get("outcome"):
        return str(check["outcome"])
    passed = check.get("passed")
    if passed is True:
        return "pass"
    if passed is False:
        return "fail"
    return "unknown"


def verdict_text(check: Mapping[str, Any]) -> str:
    """The outcome (``PASS``, ``FAIL``, ``ERROR``, ``REFUTED``, ``SKIPPED``) with what happened
    (held, violated, not applicable, ...) and the side(s) the check tests."""
    holds = check.get("holds")
    happened = "not evaluated" if holds is None else ("holds" if holds else "violated")
    if not check.get("applicable", True):
        happened += ", not applicable"
    if check.get("sides"):
        happened += f"; {check['sides']}"
    return f"{state(check).upper()} ({happened})"


def kind_text(check: Mapping[str, Any]) -> str:
    return "negative control" if check.get("kind") == "negative_control" else "positive"


def base_algorithm(name: str) -> str:
    """``gd-sec[stale-worker-memory]`` (an injected bug) → ``gd-sec``."""
    return name.split("[", 1)[0]


def row_cells(check: Mapping[str, Any]) -> list[str]:
    """The table cells of one check, in :data:`COLUMNS` order (the last one: plot or —)."""
    rates = f"{_number(check.get('fitted_rate'), 6)} / {_number(check.get('theory_rate'), 6)}"
    if check.get("rate_kind") == "linear" and check.get("theory_rate") is not None:
        rates += " per iteration"
    elif check.get("rate_kind") == "power" and check.get("theory_rate") is not None:
        rates = "log-log slope " + rates
    ratio = _number(check.get("max_ratio"), 4)
    if check.get("worst_iteration") is not None:
        ratio += f" (k = {check['worst_iteration']})"
    return [
        check["case"], check["name"], kind_text(check), check["algorithm"],
        f"{check['problem']} [{check['class']}]", check["source"], verdict_text(check),
        ratio, rates, _number(check.get("iterations")),
        _number(check.get("bits_up")), _number(check.get("bits_down")),
        "plot" if check.get("series", {}).get("iteration") else "—",
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
    verdict = {"verified": "PASSED", "failed": "FAILED",
               "incomplete": f"INCOMPLETE ({summary['skipped']} case(s) SKIPPED)"}[
        summary.get("verdict", "verified" if summary["passed"] else "failed")]
    outcomes = ", ".join(f"{count} {name}" for name, count in summary.get("outcomes", {}).items()
                         if count)
    lines = [
        f"Verification {verdict}: {summary['positive_held']}/{summary['positive']} positive "
        f"checks hold; {summary['negative_failed']}/{summary['negative']} negative controls "
        "fail as they must" + (f" ({outcomes})." if outcomes else "."),
        f"{summary['cases']} cases ({summary['skipped']} skipped), suite "
        f"{document['suite'] or 'as given'}, seed offset {document['seed']}, "
        f"{summary['seconds']:.1f} s with {document['jobs']} job(s).",
    ]
    if document.get("mutation"):
        lines.append(mutation_line(document["mutation"]))
    return lines


def environment_line(document: Mapping[str, Any]) -> str:
    env = document["environment"]
    return ", ".join(f"{key} {value}" for key, value in env.items())


# ---------------------------------------------------------------------------------------------
# The summary grid
# ---------------------------------------------------------------------------------------------

class Cell(NamedTuple):
    """One cell of the summary: the checks of one algorithm, problem class and bound kind."""

    state: str
    checks: tuple[Mapping[str, Any], ...]
    worst_ratio: float | None
    target: str

    @property
    def text(self) -> str:
        positive = [c for c in self.checks if c.get("kind") != "negative_control"]
        controls = len(self.checks) - len(positive)
        parts = []
        if positive:
            parts.append(f"{len(positive)} check{'s' * (len(positive) > 1)}, worst ratio "
                         f"{_number(self.worst_ratio, 3)}")
        if controls:
            parts.append(f"{controls} control{'s' * (controls > 1)}")
        return "; ".join(parts)


#: Outcomes from worst to best, for a summary cell's colour.
SEVERITY = ("fail", "refuted", "error", "unknown", "skipped", "pass")


def _worst_state(states: Sequence[str]) -> str:
    """The most severe of ``states`` (:data:`SEVERITY`)."""
    return min(states, key=lambda s: SEVERITY.index(s) if s in SEVERITY else 0)


def summary_grid(document: Mapping[str, Any]) -> tuple[list[tuple[str, str]], dict]:
    """The summary's columns ``(class, source)`` that occur, and its cells by
    ``(algorithm, class, source)``.

    A cell's state is the worst of its checks'; its ratio the largest measured/bound ratio of
    its positive checks (a negative control's ratio is meant to exceed 1); it links to the
    case of its worst check (the first failing, else its largest ratio).
    """
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for check in document["checks"]:
        key = (base_algorithm(check["algorithm"]), check["class"], check["source"])
        groups.setdefault(key, []).append(check)
    cells = {}
    for key, checks in groups.items():
        positive = [c for c in checks if c.get("kind") != "negative_control"]
        ratios = [c["max_ratio"] for c in positive if c.get("max_ratio") is not None]
        failing = [c for c in checks if state(c) != "pass"]
        if failing:
            worst = failing[0]
        elif ratios:
            worst = max(positive, key=lambda c: c.get("max_ratio") or 0.0)
        else:
            worst = checks[0]
        cells[key] = Cell(_worst_state([state(c) for c in checks]), tuple(checks),
                          max(ratios) if ratios else None, case_anchor(worst["case"]))
    order = {name: i for i, name in enumerate(SOURCES)}
    columns = sorted({(c, s) for _, c, s in cells},
                     key=lambda cs: (CLASSES.index(cs[0]) if cs[0] in CLASSES else 99,
                                     order.get(cs[1], 99), cs[1]))
    return columns, cells


def _algorithms(document: Mapping[str, Any]) -> list[str]:
    return list(dict.fromkeys(base_algorithm(c["algorithm"]) for c in document["checks"]))


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------

def _md_cell(text: str) -> str:
    return _md_text(text).replace("|", "\\|")


def _md_text(text: Any) -> str:
    """Text from case files as inert Markdown: no HTML (``<script>``), links or emphasis."""
    escaped = html.escape(str(text), quote=False).replace("\n", " ")
    return re.sub(r"([\\`*_\[\]])", r"\\\1", escaped)


def _md_code(text: Any) -> str:
    """``text`` as an inline code span (backticks inside it cannot close it)."""
    return "`" + str(text).replace("`", "'").replace("\n", " ") + "`"


def markdown_page(document: Mapping[str, Any], figures: Mapping[str, Sequence[Figure]]) -> str:
    """``index.md``; ``figures`` maps a case name (``""``: report-wide) to its figures, whose
    files are in ``plots/``."""
    lines = [f"# convcheck verification report — {document['created']}", ""]
    lines += [*summary_lines(document), "", f"Environment: {environment_line(document)}", ""]
    lines += ["Contents: [summary](#summary) · [checks](#checks) · [rates](#rates) · "
              "[cases](#cases) · [how to read this report](#how-to-read-this-report)", ""]
    lines += ["## Summary", "", "Worst verdict per algorithm, problem class and bound kind "
              "(ratio: the largest measured/bound of the positive checks).", ""]
    columns, cells = summary_grid(document)
    lines += ["| algorithm | " + " | ".join(f"{c}: {s}" for c, s in columns) + " |",
              "|" + "---|" * (len(columns) + 1)]
    for algorithm in _algorithms(document):
        row = [_md_cell(algorithm)]
        for column in columns:
            cell = cells.get((algorithm, *column))
            row.append("" if cell is None
                       else f"**{_md_cell(cell.state.upper())}** {_md_cell(cell.text)}")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "## Checks", ""]
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    plotted = {f.anchor: f.file_name for group in figures.values() for f in group}
    for check in document["checks"]:
        cells_text = [_md_cell(c) for c in row_cells(check)[:-1]]
        file_name = plotted.get(plot_anchor(check))
        cells_text.append(f"[plot](plots/{file_name})" if file_name else "—")
        lines.append("| " + " | ".join(cells_text) + " |")
    lines += ["", "## Rates", ""]
    for figure in figures.get("", ()):
        lines += [f"![{_md_text(figure.caption)}](plots/{figure.file_name})", ""]
    lines += ["## Cases", ""]
    for case in document["cases"]:
        lines += [f"### {_md_text(case['case'])}", "", _md_text(case["description"]), ""]
        lines += [f"- file: {_md_code(case['path'])}",
                  f"- problem: {_md_text(case['problem_text'])}",
                  f"- algorithm: {_md_code(case['algorithm_text'])}"]
        if case.get("skipped"):
            lines.append(f"- **skipped**: {_md_text(case['skipped'])}")
        for check in (c for c in document["checks"] if c["case"] == case["case"]):
            lines.append(f"- {_md_text(check['name'])}: {verdict_text(check)} — "
                         f"{_md_text(check['reason'])}")
            if check.get("why"):
                lines.append(f"  (negative control: {_md_text(check['why'])})")
            if certificate_note(check):
                lines.append(f"  ({_md_text(certificate_note(check))})")
        lines.append("")
        for figure in figures.get(case["case"], ()):
            lines += [f"![{_md_text(figure.caption)}](plots/{figure.file_name})", "",
                      f"*{_md_text(figure.caption)}*", ""]
    lines += _mutation_markdown(document.get("mutation"))
    lines += ["## How to read this report", "", *READING_TEXT, ""]
    return "\n".join(lines)


MUTATION_COLUMNS = ("algorithm", "mutant", "bug", "verdict", "caught in", "by")


def mutation_rows(mutation: Mapping[str, Any]) -> list[list[str]]:
    """One row per mutant, in :data:`MUTATION_COLUMNS` order (a survivor's explanation in the
    last column)."""
    rows = []
    for row in mutation["mutants"]:
        by = ("; ".join(f"{c['name']} ({c['outcome']})" for c in row["checks"])
              if row["killed"] else row["survives"])
        rows.append([row["algorithm"], row["mutant"], row["description"],
                     "KILLED" if row["killed"] else "SURVIVED", row["case"] or "—", by])
    return rows


def mutation_line(mutation: Mapping[str, Any]) -> str:
    """The score in words."""
    from convcheck.verification.mutation import score_line

    return score_line(mutation)


def _mutation_markdown(mutation: Mapping[str, Any] | None) -> list[str]:
    if not mutation:
        return []
    lines = ["## Mutation score", "", _md_text(mutation_line(mutation)), "",
             "Each mutant is a one-line bug injected at run time where a case runs its claimed "
             "algorithm; it is killed by the first case in which a positive check or an "
             "identity that holds on the real algorithm does not hold.", "",
             "| " + " | ".join(MUTATION_COLUMNS) + " |", "|" + "---|" * len(MUTATION_COLUMNS)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |"
              for row in mutation_rows(mutation)]
    return [*lines, ""]


#: The short guide at the end of both pages (docs/report-guide.md has the long one).
READING_TEXT = (
    "- **positive** check: a bound that must hold on the run. It passes when the measured "
    "quantity stays within the bound at every iteration (up to the tolerance).",
    "- **negative control**: a check that must fail — a step outside the theorem's range, an "
    "injected bug, a case with no certificate. It passes when the bound is violated (or "
    "cannot be evaluated), which shows the check can fail.",
    "- **verdict** `PASS (violated, not applicable)`: a negative control that passed because "
    "the bound was violated; *not applicable* says its conditions fail, so it was evaluated "
    "anyway on purpose. `FAIL (holds)` on a negative control means the check did not catch "
    "what it should have.",
    "- **max ratio (at k)**: the largest measured/bound ratio over the run and the iteration "
    "where it occurs; at most 1 (plus the tolerance) means the bound holds; ∞ or — when the "
    "bound is 0, infinite or not evaluated.",
    "- **fitted / theory rate**: the measured quantity's rate fitted like the bound's own — a "
    "factor per iteration for geometric bounds, a log-log slope (−1 for 1/T) otherwise.",
    "- **source**: where the bound comes from: classical, paper, derived here (proof in the "
    "docs), certified (LMI), empirical.",
)


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em 2em; color: #222; max-width: 1500px; }
nav { margin: 1em 0; line-height: 1.7; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; font-size: 0.82em; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #eee; position: sticky; top: 0; z-index: 1; }
tr.fail td { background: #fde2e2; }
tr.other td { background: #fff3cd; }
.verdict-pass { color: #176d17; font-weight: bold; }
.verdict-fail { color: #b00020; font-weight: bold; }
.verdict-other { color: #8a5a00; font-weight: bold; }
#summary-grid td.cell { min-width: 9em; font-size: 0.95em; }
#summary-grid td.cell a { display: block; color: inherit; text-decoration: none; }
#summary-grid td.pass { background: #d4edda; }
#summary-grid td.fail { background: #f5c2c7; }
#summary-grid td.other { background: #fff3cd; }
#summary-grid td.empty { background: #fafafa; }
#summary-grid .state { font-weight: bold; }
figure { display: inline-block; margin: 6px; width: min(640px, 100%); vertical-align: top; }
figure img { width: 100%; height: auto; box-sizing: border-box; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #444; }
section { margin-top: 2em; }
.filter { margin: 0.8em 0; padding: 0.4em 0.6em; background: #f5f5f5; display: inline-block; }
.muted { color: #666; font-size: 0.85em; }
"""

SCRIPT = """
function applyFilter() {
  var failedOnly = document.getElementById('failed-only').checked;
  var algorithm = document.getElementById('algorithm').value;
  var shown = 0, rows = document.querySelectorAll('#checks-table tr[data-algorithm]');
  var visibleCases = {};
  rows.forEach(function (row) {
    var show = (!failedOnly || row.dataset.state !== 'pass')
        && (!algorithm || row.dataset.algorithm === algorithm);
    row.hidden = !show;
    if (show) { shown += 1; visibleCases[row.dataset.case] = true; }
  });
  document.querySelectorAll('section.case').forEach(function (section) {
    section.hidden = !visibleCases[section.dataset.case];
  });
  document.getElementById('shown').textContent = shown + ' of ' + rows.length + ' checks shown';
}
document.getElementById('filter').hidden = false;
document.getElementById('failed-only').addEventListener('change', applyFilter);
document.getElementById('algorithm').addEventListener('change', applyFilter);
applyFilter();
"""


def _image(figure: Figure) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    e = html.escape
    return (f"<figure id='{e(figure.anchor)}'><img alt='{e(figure.caption)}' "
            f"src=\"data:image/png;base64,{data}\"><figcaption>{e(figure.caption)}"
            "</figcaption></figure>")


def _css_state(name: str) -> str:
    return name if name in ("pass", "fail") else "other"


def _summary_html(document: Mapping[str, Any]) -> str:
    e = html.escape
    columns, cells = summary_grid(document)
    classes = list(dict.fromkeys(c for c, _ in columns))
    parts = ["<table id='summary-grid'><tr><th rowspan='2'>algorithm</th>"]
    parts += [f"<th colspan='{sum(c == k for c, _ in columns)}'>{e(k)}</th>" for k in classes]
    parts.append("</tr><tr>" + "".join(f"<th>{e(s)}</th>" for _, s in columns) + "</tr>")
    for algorithm in _algorithms(document):
        parts.append(f"<tr><th>{e(algorithm)}</th>")
        for column in columns:
            cell = cells.get((algorithm, *column))
            if cell is None:
                parts.append("<td class='cell empty'></td>")
                continue
            cases = ", ".join(dict.fromkeys(c["case"] for c in cell.checks))
            parts.append(
                f"<td class='cell {_css_state(cell.state)}' data-state='{e(cell.state)}'>"
                f"<a href='#{e(cell.target)}' title='{e(cases)}'><span class='state'>"
                f"{e(cell.state.upper())}</span><br>{e(cell.text)}</a></td>")
        parts.append("</tr>")
    parts.append("</table>")
    return "".join(parts)


def _checks_html(document: Mapping[str, Any], plotted: set[str]) -> str:
    e = html.escape
    algorithms = _algorithms(document)
    options = "".join(f"<option value='{e(a)}'>{e(a)}</option>" for a in algorithms)
    parts = [
        "<div class='filter' id='filter' hidden><label><input type='checkbox' id='failed-only'>"
        " failed checks only</label> &nbsp; <label>algorithm <select id='algorithm'>"
        f"<option value=''>all</option>{options}</select></label> &nbsp; "
        "<span id='shown' class='muted'></span></div>",
        "<table id='checks-table'><thead><tr>"
        + "".join(f"<th>{e(c)}</th>" for c in COLUMNS) + "</tr></thead><tbody>",
    ]
    for check in document["checks"]:
        name = state(check)
        klass = "" if name == "pass" else f" class='{_css_state(name)}'"
        cells = row_cells(check)
        case_link = f"<a href='#{e(case_anchor(check['case']))}'>{e(cells[0])}</a>"
        plot = plot_anchor(check)
        plot_link = f"<a href='#{e(plot)}'>plot</a>" if plot in plotted else "—"
        verdict = (f"<span class='verdict-{_css_state(name)}'>{e(cells[6])}</span>")
        body = [case_link, e(cells[1]), *map(e, cells[2:6]), verdict, *map(e, cells[7:12]),
                plot_link]
        parts.append(
            f"<tr id='{e(check_anchor(check))}'{klass} data-state='{e(name)}' "
            f"data-algorithm='{e(base_algorithm(check['algorithm']))}' "
            f"data-case='{e(check['case'])}'>" + "".join(f"<td>{c}</td>" for c in body)
            + "</tr>")
    parts.append("</tbody></table>")
    return "\n".join(parts)


def html_page(document: Mapping[str, Any], figures: Mapping[str, Sequence[Figure]]) -> str:
    """``index.html``, self-contained: figures are embedded as data URIs, the filter is inline
    JavaScript. ``figures`` maps a case name (``""`` for report-wide figures) to its figures."""
    e = html.escape
    passed = document["summary"]["passed"]
    plotted = {f.anchor for group in figures.values() for f in group}
    head = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>convcheck verification report</title><style>{STYLE}</style></head><body>")
    parts = [head, f"<h1 id='top'>convcheck verification report — {e(document['created'])}</h1>"]
    klass = "verdict-pass" if passed else "verdict-fail"
    lines = summary_lines(document)
    parts.append(f"<p class='{klass}'>{e(lines[0])}</p>"
                 + "".join(f"<p>{e(line)}</p>" for line in lines[1:]))
    parts.append(f"<p class='muted'>Environment: {e(environment_line(document))}</p>")
    case_links = " ".join(f"<a href='#{e(case_anchor(c['case']))}'>{e(c['case'])}</a>"
                          for c in document["cases"])
    parts.append("<nav id='contents'><b>Contents:</b> <a href='#summary'>summary</a>"
                 "<a href='#checks'>checks</a><a href='#rates'>rates</a>"
                 "<a href='#cases'>cases</a><a href='#reading'>how to read this report</a>"
                 f"<br><b>Cases:</b> {case_links}</nav>")
    parts.append("<section id='summary'><h2>Summary</h2><p class='muted'>Worst verdict per "
                 "algorithm, problem class and bound kind; the ratio is the largest "
                 "measured/bound of the positive checks (≤ 1: the bound holds). Each cell "
                 "leads to its case.</p>" + _summary_html(document) + "</section>")
    parts.append("<section id='checks'><h2>Checks</h2>" + _checks_html(document, plotted)
                 + "</section>")
    parts.append("<section id='rates'><h2>Rates</h2>")
    rates = figures.get("", ())
    parts += [_image(f) for f in rates] or ["<p class='muted'>No linear rates to compare.</p>"]
    parts.append("</section><section id='cases'><h2>Cases</h2>")
    for case in document["cases"]:
        parts.append(f"<section class='case' id='{e(case_anchor(case['case']))}' "
                     f"data-case='{e(case['case'])}'><h3>{e(case['case'])}</h3>")
        parts.append(f"<p>{e(case['description'])}</p><ul>")
        parts.append(f"<li>file: <code>{e(case['path'])}</code></li>")
        parts.append(f"<li>problem: {e(case['problem_text'])}</li>")
        parts.append(f"<li>algorithm: <code>{e(case['algorithm_text'])}</code></li>")
        if case.get("skipped"):
            parts.append(f"<li><b>skipped</b>: {e(case['skipped'])}</li>")
        for check in (c for c in document["checks"] if c["case"] == case["case"]):
            name = state(check)
            note = (f" <i>(negative control: {e(check['why'])})</i>" if check.get("why")
                    else "")
            certificate = certificate_note(check)
            if certificate:
                note += f"<br><small>{e(certificate)}</small>"
            parts.append(
                f"<li><a href='#{e(check_anchor(check))}'>{e(check['name'])}</a>: "
                f"<span class='verdict-{_css_state(name)}'>{e(verdict_text(check))}</span>"
                f" — {e(check['reason'])}{note}</li>")
        parts.append("</ul>")
        parts += [_image(f) for f in figures.get(case["case"], ())]
        parts.append("<p><a href='#checks'>back to the checks</a> · <a href='#top'>top</a>"
                     "</p></section>")
    parts.append("</section>")
    mutation = document.get("mutation")
    if mutation:
        parts.append(f"<section id='mutation'><h2>Mutation score</h2><p>"
                     f"{e(mutation_line(mutation))}</p><table><thead><tr>"
                     + "".join(f"<th>{e(c)}</th>" for c in MUTATION_COLUMNS)
                     + "</tr></thead><tbody>")
        for row in mutation_rows(mutation):
            klass = "verdict-pass" if row[3] == "KILLED" else "verdict-fail"
            parts.append("<tr>" + "".join(
                f"<td class='{klass}'>{e(c)}</td>" if i == 3 else f"<td>{e(c)}</td>"
                for i, c in enumerate(row)) + "</tr>")
        parts.append("</tbody></table></section>")
    parts.append("<section id='reading'><h2>How to read this report</h2><ul>")
    parts += [f"<li>{_inline_markdown(line[2:])}</li>" for line in READING_TEXT]
    parts.append("</ul></section>")
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts)


def _inline_markdown(text: str) -> str:
    """``**bold**``, ``*italic*`` and ``code`` of :data:`READING_TEXT` as HTML."""
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    text = re.sub(r"\*(.+?)\*", r"<i>\1</i>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)

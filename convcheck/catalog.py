"""What convcheck offers, as plain data and plain text: ``convcheck list``, ``run --help``, docs.

:func:`algorithm_parameters` is the one source of an algorithm's ``--set`` keys (their type,
default, allowed values and meaning); the help of ``convcheck run``, ``convcheck list`` and
docs/cli.md all read it.
"""

from __future__ import annotations

import inspect
import re
import sys
from typing import Any

from convcheck.algorithms import ALGORITHMS, ASYNC_ALGORITHMS, DEFAULT_STEP
from convcheck.algorithms.base import STEP_CONSTANTS, Param
from convcheck.compressors import COMPRESSORS
from convcheck.data import DATASETS, SCALINGS, SPLITS, find_data_files, search_path
from convcheck.data.named import data_files
from convcheck.errors import DataFileError, check_choice
from convcheck.objectives import FAMILIES

#: The ``default`` of a parameter that has none and must be given.
REQUIRED = "required"
#: The compressor an algorithm that takes one uses when none is given (``make_algorithm``).
DEFAULT_COMPRESSOR = "top-k"
_RELATION = re.compile(r"``([^`]*[∈≤≥<>][^`]*)``")
_SECTION = re.compile(r"^\s*Parameters\s*\n\s*-+\s*\n(.*?)(?:\n\s*\n\s*[A-Z][a-z]+\s*\n\s*-+|\Z)",
                      re.DOTALL | re.MULTILINE)


def plain(text: str) -> str:
    """reST made plain text: no backquotes or roles, ``x^{k+1}`` → ``x^(k+1)``, one line."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", lambda m: m.group(1).rsplit(".", 1)[-1], text)
    text = text.replace("``", "").replace("`", "")
    text = re.sub(r"([\^_])\{([^{}]+)\}", r"\1(\2)", text)
    return " ".join(text.split())


def _first_sentence(text: str) -> str:
    head = text.strip().split("\n\n")[0]
    return plain(head)


def numpydoc_parameters(doc: str | None) -> dict[str, tuple[str, str]]:
    """``{name: (type, description)}`` from the Parameters section of a numpydoc docstring.

    ``a, b : int`` documents both names; descriptions are joined into one line (reST kept).
    """
    match = _SECTION.search(inspect.cleandoc(doc or ""))
    if match is None:
        return {}
    entries: dict[str, tuple[str, str]] = {}
    names: list[str] = []
    for line in match.group(1).splitlines():
        if line and not line[0].isspace():
            head, _, kind = line.partition(" : ")
            names = [n.strip() for n in head.split(",")]
            for name in names:
                entries[name] = (kind.strip(), "")
        elif line.strip() and names:
            for name in names:
                kind, text = entries[name]
                entries[name] = (kind, f"{text} {line.strip()}".strip())
    return entries


def _type_and_allowed(kind: str, description: str) -> tuple[str, str]:
    """The type, and the allowed values: a ``{...}`` set of the type (then the type is that of
    its members), else the first ``...`` span of the description with ``∈``, ``≤``, ``≥``."""
    kind = re.sub(r",\s*optional$", "", kind.strip())
    choices = re.fullmatch(r"\{([^}]*)\}", kind)
    if choices:
        members = [c.strip().strip("\"'") for c in choices.group(1).split(",")]
        return ("int" if all(m.isdigit() for m in members) else "str"), ", ".join(members)
    found = _RELATION.search(description)
    return plain(kind), plain(found.group(1)) if found else ""


def _documented(cls: type) -> dict[str, tuple[str, str]]:
    """:func:`numpydoc_parameters` of ``cls``, following ``as in :class:`Other``` entries."""
    documented = numpydoc_parameters(cls.__doc__)
    module = sys.modules[cls.__module__]
    for name, (kind, _) in documented.items():
        other = re.fullmatch(r"as in :class:`~?([\w.]+)`", kind.strip())
        if other is not None:
            referenced = getattr(module, other.group(1).rsplit(".", 1)[-1], None)
            documented[name] = numpydoc_parameters(referenced.__doc__).get(name, ("", ""))
    return documented


def _parameters(cls: type, defaults: dict[str, Any]) -> list[dict[str, Any]]:
    documented = _documented(cls)
    rows = []
    for parameter in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        kind, description = documented.get(parameter.name, ("", ""))
        if not kind and parameter.annotation is not parameter.empty:
            kind = str(parameter.annotation)
        kind, allowed = _type_and_allowed(kind, description)
        if parameter.name in defaults:
            default = defaults[parameter.name]
        else:
            default = REQUIRED if parameter.default is parameter.empty else parameter.default
        rows.append({"name": parameter.name, "type": kind, "default": default,
                     "allowed": allowed, "description": plain(description)})
    return rows


def _param_type(param: Param) -> str:
    """The type of a declared parameter, in one word, from its allowed values."""
    allowed = param.allowed
    for prefix, kind in (("a real number", "float"), ("an integer", "int"),
                         ("integers", "ints"), ("true or false", "bool"), ("one of", "str"),
                         ("a compressor", "str")):
        if allowed.startswith(prefix):
            return kind
    return "value"


def algorithm_parameters(name: str) -> list[dict[str, Any]]:
    """The ``--set`` keys of algorithm ``name``, in the order it declares them
    (:attr:`~convcheck.algorithms.base.Algorithm.parameters`).

    Each row: ``name``, ``type`` (one word), ``default`` (what ``make_algorithm`` uses;
    ``None``: none, :data:`REQUIRED`: must be given), ``allowed`` (plain text) and
    ``description`` (one plain line). ``alpha`` also takes ``c/NAME``; ``compressor`` takes a
    name of :data:`convcheck.compressors.COMPRESSORS`, whose own parameters are further keys
    (:func:`compressor_parameters`).
    """
    cls = ALGORITHMS[check_choice("algorithm", name, ALGORITHMS)]
    rows = []
    for param in cls.parameters:
        row = {"name": param.name, "type": _param_type(param),
               "default": REQUIRED if param.required else param.default,
               "allowed": plain(param.allowed), "description": plain(param.description)}
        if param.name == "alpha":
            row.update(type="float or c/NAME", default=DEFAULT_STEP,
                       allowed="> 0, or c/NAME with NAME in " + ", ".join(STEP_CONSTANTS))
        elif param.name == "compressor":
            row["allowed"] = ", ".join(COMPRESSORS)
            row["description"] += ". Its parameters are further keys."
        rows.append(row)
    return rows


def compressor_parameters(name: str) -> list[dict[str, Any]]:
    """The parameters of compressor ``name``, in the format of :func:`algorithm_parameters`."""
    return _parameters(COMPRESSORS[check_choice("compressor", name, COMPRESSORS)], {})


def algorithm_summary(name: str) -> str:
    """One plain line: what algorithm ``name`` is (its declared ``summary``)."""
    return plain(ALGORITHMS[check_choice("algorithm", name, ALGORITHMS)].summary)


def checks() -> dict[str, dict[str, Any]]:
    """Every check a case (and so the report) can name: the bounds with their provenance, and
    the checks that are not bounds (:data:`convcheck.verification.names.SPECIAL`)."""
    from convcheck.theory.registry import BOUNDS
    from convcheck.verification.names import SPECIAL

    described = {name: bound.describe() for name, bound in BOUNDS.items()}
    for name, kind in SPECIAL.items():
        described[name] = {
            "name": name, "algorithms": list(kind.algorithms or ALGORITHMS),
            "problem_class": kind.problem_class, "provenance": kind.source,
            "statement": kind.statement, "citation": kind.citation,
        }
    return described


def catalog(data_dir: str | None = None) -> dict:
    """Algorithms (with their parameters), objectives, compressors, datasets (with where
    their files are), splits, scalings and every check (with provenance and citation)."""
    datasets = {}
    for name, info in DATASETS.items():
        location = None
        if info.needs_data_dir:
            try:
                location = str(find_data_files(data_files(name), data_dir, name))
            except DataFileError:
                location = None
        datasets[name] = {"task": info.task, "description": plain(info.description),
                          "available": (not info.needs_data_dir) or location is not None,
                          "folder": location}
    return {
        "algorithms": {
            name: {
                "engine": "async" if name in ASYNC_ALGORITHMS else "sync",
                "description": algorithm_summary(name),
                "parameters": algorithm_parameters(name),
                "mutants": [{"name": m.name, "description": m.description,
                             "survives": m.survives} for m in ALGORITHMS[name].mutants],
            }
            for name in ALGORITHMS
        },
        "objectives": list(FAMILIES),
        "compressors": {name: _first_sentence(cls.__doc__ or name)
                        for name, cls in COMPRESSORS.items()},
        "datasets": datasets,
        "data_folders": [str(folder) for folder, _ in search_path(data_dir)],
        "splits": list(SPLITS),
        "scalings": list(SCALINGS),
        "bounds": checks(),
    }


def format_default(value: Any) -> str:
    """A default as the command line writes it (``none``, ``true``, ``0.9``, ``1/L``)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def parameter_line(row: dict[str, Any]) -> str:
    """``name (type; allowed; default D): description`` on one line."""
    details = [row["type"] or "value"]
    if row["allowed"]:
        details.append(row["allowed"])
    details.append(f"default {format_default(row['default'])}")
    text = f"{row['name']} ({'; '.join(details)})"
    return f"{text}: {row['description']}" if row["description"] else text


def format_catalog(entries: dict) -> str:
    """Plain text, one line per algorithm, compressor, dataset, injected bug and check."""
    lines = ["algorithms (--algorithm; keys of --set in convcheck run --help):"]
    for name, info in entries["algorithms"].items():
        keys = ", ".join(row["name"] for row in info["parameters"])
        lines.append(f"  {name:17s} {info['engine']:5s}  {info['description']} [--set {keys}]")
    lines += ["", "objectives (--problem): " + ", ".join(entries["objectives"]), "",
              "compressors (--set compressor=NAME):"]
    lines += [f"  {name:12s} {text}" for name, text in entries["compressors"].items()]
    lines += ["", "datasets (--dataset; also svmlight:PATH, idx:DIRECTORY); data folders "
              "searched: " + ", ".join(entries["data_folders"])]
    for name, info in entries["datasets"].items():
        mark = ""
        if info["folder"]:
            mark = f"  [in {info['folder']}]"
        elif not info["available"]:
            mark = "  [files not found: see convcheck data path]"
        lines.append(f"  {name:25s} {info['task']:14s} {info['description']}{mark}")
    lines += ["", "splits (--split): " + ", ".join(entries["splits"])]
    lines += ["scalings (--scaling): " + ", ".join(entries["scalings"])]
    lines += ["", "injected bugs (inject = ... in a negative control; convcheck mutate runs "
              "them all):"]
    for name, info in entries["algorithms"].items():
        if info["mutants"]:
            lines.append(f"  {name}:")
            lines += [f"    {m['name']:28s} {m['description']}" for m in info["mutants"]]
    lines += ["", "checks (bound = ... in a case file; provenance, class, statement, source):"]
    for name, info in entries["bounds"].items():
        source = f" — {plain(info['citation'])}" if info["citation"] else ""
        lines.append(f"  {name:27s} {info['provenance']:16s} {info['problem_class']:16s} "
                     f"{plain(info['statement'])}{source}")
    return "\n".join(lines)

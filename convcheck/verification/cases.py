"""Verification cases: declarative TOML files, validated with errors naming file and field.

A case file (``problems/*.toml``) describes one problem, one algorithm, one run, the checks
that must hold on it and the negative controls that must fail::

    description = "GD-SEC with error correction on heterogeneous logistic workers"
    suites = ["quick", "full"]

    [problem]                      # arguments of convcheck.problem.build_problem
    family = "logistic"            # ridge | logistic | nonconvex-logistic
    dataset = "breast-cancer"
    split = "sorted"
    workers = 10

    [algorithm]                    # arguments of convcheck.algorithms.make_algorithm
    name = "gd-sec"
    alpha = "1/L"
    xi = 0.2

    [run]
    iterations = 2000
    seeds = [0]                    # several seeds: bounds in expectation use their mean
    target = 1e-8                  # optional: iterations and bits to reach it are reported

    [async]                        # only for asynchronous algorithms (event engine)
    workers = 8                    # W (default: one per shard; 1 shard: shared data)
    tau_max = 7                    # hard staleness bound (default: none)
    compute = { model = "exponential", mean = 1.0, spread = 4.0 }
    link = { latency_up = 0.01, bandwidth_up = 1e6 }

    [[checks]]
    bound = "gd-sec/nonconvex"     # a check name (convcheck.verification.names, problems/README.md)
    tolerance = 1e-9               # optional, > 0; its meaning depends on the check

    [[negative_controls]]
    name = "injected bug"
    bound = "gd-sec/nonconvex"
    why = "e_m ← Δ_m: what was sent is sent again; the bound is violated"
    expect = "violated"            # how it must fail (default: the check's first way)
    algorithm = { xi = 0.3 }       # overrides of [algorithm]
    run = { iterations = 300 }     # overrides of [run]
    inject = "error-not-cleared"   # optional: a deliberately broken variant (mutants)
    ran_with = { alpha = "0.5/L" } # optional: the run uses these, the check the claimed ones

``below-reference`` checks take ``reference = { name = ..., ... }``, the algorithm to compare with.

Everything is validated when the file is loaded: unknown tables or keys, wrong types, unknown
datasets, algorithms, suites, check names or ways to fail, tolerances ≤ 0, a missing or
misplaced ``reference``, bad ``ran_with`` parameters raise :class:`CaseFileError`, whose
message names the file, the field and the allowed values.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convcheck.errors import InputError

SUITES = ("quick", "full")


class CaseFileError(InputError):
    """A case file is missing, not TOML, or does not follow the schema."""


@dataclass(frozen=True)
class Key:
    """One key of a table: accepted Python types, whether required, what is allowed."""

    types: tuple[type, ...]
    allowed: str
    required: bool = False


_NUMBER = (int, float)
PROBLEM_KEYS = {
    "family": Key((str,), "ridge, logistic or nonconvex-logistic", required=True),
    "dataset": Key((str,), "a dataset name (convcheck list), svmlight:PATH or idx:DIR",
                   required=True),
    "split": Key((str,), "iid, sorted, dirichlet or natural"),
    "workers": Key((int,), "an integer >= 1"),
    "lam": Key(_NUMBER, "a real number >= 0"),
    "lam_nc": Key(_NUMBER, "a real number > 0 (nonconvex-logistic)"),
    "scaling": Key((str,), "none, standard, maxabs or unit-rows"),
    "intercept": Key((bool,), "true or false"),
    "dirichlet_alpha": Key(_NUMBER, "a real number > 0"),
    "seed": Key((int,), "an integer >= 0"),
    "dataset_params": Key((dict,), "a table of dataset loader parameters"),
}
RUN_KEYS = {
    "iterations": Key((int,), "an integer >= 1", required=True),
    "seeds": Key((list,), "a non-empty list of integers >= 0"),
    "target": Key(_NUMBER, "a real number > 0"),
    "target_metric": Key((str,), "suboptimality, grad_norm_sq or dist_sq"),
    "theta0": Key((list,), "the start point: a list of d reals (default 0)"),
}
CHECK_KEYS = {
    "bound": Key((str,), "a check name: a bound (convcheck list) or a check of "
                 "problems/README.md (converges, gd/exact-rate, ...)",
                 required=True),
    "tolerance": Key(_NUMBER, "a real number > 0 (its meaning depends on the check)"),
    "reference": Key((dict,), "the reference algorithm of 'below-reference': a table with "
                     "'name' and its parameters"),
    "names": Key((list,), "identities of the case's algorithm that 'invariants' checks "
                 "(default: all of them)"),
    "attained": Key(_NUMBER, "a bound's check only: the bound is attained, measured/bound "
                    "≥ 1 − attained at every iteration k ≥ 1 where the bound is at least 1e-6 "
                    "of its start; a real number in (0, 1)"),
}
CONTROL_KEYS = {
    **CHECK_KEYS,
    "name": Key((str,), "a short description", required=True),
    "why": Key((str,), "why the check must fail", required=True),
    "algorithm": Key((dict,), "a table of algorithm parameters overriding [algorithm]"),
    "run": Key((dict,), "a table overriding [run] (iterations, seeds, target, target_metric)"),
    "inject": Key((str,), "a mutant name of the case's algorithm (convcheck list)"),
    "expect": Key((str,), "how the check must fail (violated, no-certificate, too-fast, ...)"),
    "ran_with": Key((dict,), "algorithm parameters the run uses instead of the claimed ones, "
                    "which the check evaluates (emulates a wrong parameter, e.g. a step ×2)"),
}
TOP_KEYS = {
    "description": Key((str,), "one line saying what the case verifies", required=True),
    "suites": Key((list,), "a non-empty list of suite names from " + ", ".join(SUITES)),
    "problem": Key((dict,), "a table (see problems/README.md)", required=True),
    "algorithm": Key((dict,), "a table with at least 'name'", required=True),
    "run": Key((dict,), "a table with at least 'iterations'", required=True),
    "checks": Key((list,), "an array of tables [[checks]]"),
    "negative_controls": Key((list,), "an array of tables [[negative_controls]]"),
    "async": Key((dict,), "a table of event-engine settings (asynchronous algorithms only)"),
}
ASYNC_KEYS = {
    "workers": Key((int,), "an integer >= 1 (number of asynchronous workers W)"),
    "tau_max": Key((int,), "an integer >= 0 (hard staleness bound)"),
    "compute": Key((dict,), "a table with 'model' (constant, exponential, lognormal, pareto, "
                   "trace) and its parameters (mean, spread, sigma, shape, path)"),
    "link": Key((dict,), "a table of latency_up, latency_down (s), bandwidth_up, "
                "bandwidth_down (bits/s)"),
}


@dataclass(frozen=True)
class ProblemSpec:
    """Arguments of :func:`convcheck.problem.build_problem` (``family`` is its ``problem``)."""

    family: str
    dataset: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def needs_data_dir(self) -> bool:
        """Whether the dataset is read from the shared data folder (LIBSVM, MNIST)."""
        from convcheck.data import DATASETS

        info = DATASETS.get(self.dataset)
        return bool(info is not None and info.needs_data_dir)

    def describe(self) -> str:
        split = self.options.get("split", "iid")
        workers = self.options.get("workers", 10)
        return f"{self.family} on {self.dataset} ({split}, M={workers})"


@dataclass(frozen=True)
class RunSpec:
    """How long to run, with which seeds, and the optional target accuracy."""

    iterations: int
    seeds: tuple[int, ...] = (0,)
    target: float | None = None
    target_metric: str | None = None
    theta0: tuple[float, ...] | None = None

    def updated(self, overrides: Mapping[str, Any], context: str) -> RunSpec:
        """This spec with ``overrides`` (a negative control's ``run`` table) applied."""
        return _run_spec({**self.as_dict(), **overrides}, context)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"iterations": self.iterations, "seeds": list(self.seeds)}
        if self.target is not None:
            out["target"] = self.target
        if self.target_metric is not None:
            out["target_metric"] = self.target_metric
        if self.theta0 is not None:
            out["theta0"] = list(self.theta0)
        return out


@dataclass(frozen=True)
class CheckSpec:
    """A check of a case: a bound (or ``converges``) and what is expected.

    ``kind`` is ``"positive"`` (must hold) or ``"negative_control"`` (must fail); a negative
    control runs the case's algorithm with ``algorithm`` and ``run`` overrides and an optional
    injected bug ``inject``, and must fail the way ``expect`` names. With ``ran_with`` the run
    uses those parameters while the check is evaluated for the claimed ones. ``reference`` is
    the reference algorithm of ``below-reference``; ``names``, the identities ``invariants``
    checks (all when empty); ``attained``, for a bound, the tolerance within which the runs
    must reach it (a two-sided check: the bound is tight on this problem).
    """

    bound: str
    kind: str
    tolerance: float | None = None
    name: str = ""
    why: str = ""
    algorithm: Mapping[str, Any] = field(default_factory=dict)
    run: Mapping[str, Any] = field(default_factory=dict)
    inject: str | None = None
    expect: str = ""
    ran_with: Mapping[str, Any] = field(default_factory=dict)
    reference: Mapping[str, Any] = field(default_factory=dict)
    names: tuple[str, ...] = ()
    attained: float | None = None


@dataclass(frozen=True)
class Case:
    """One validated case file."""

    name: str
    path: str
    description: str
    suites: tuple[str, ...]
    problem: ProblemSpec
    algorithm: Mapping[str, Any]
    run: RunSpec
    checks: tuple[CheckSpec, ...]
    asynchronous: Mapping[str, Any] | None = None
    folder: str = "."

    def data_paths(self) -> list[tuple[str, str]]:
        """Files the case reads besides the named datasets: ``(field, path)`` pairs."""
        form = file_form(self.problem.dataset)
        out = [] if form is None else [("dataset", form[1])]
        compute = (self.asynchronous or {}).get("compute", {})
        if compute.get("model") == "trace" and "path" in compute:
            out.append(("compute.path", compute["path"]))
        return out

    @property
    def algorithm_name(self) -> str:
        return str(self.algorithm["name"])

    def algorithm_params(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Parameters of :func:`make_algorithm` (without ``name``), overrides applied."""
        params = {key: value for key, value in self.algorithm.items() if key != "name"}
        params.update(overrides or {})
        return params

    def engine(self) -> Callable[..., Any]:
        """``convcheck.engine.run``, or ``run_async`` with the case's ``[async]`` settings."""
        from functools import partial

        from convcheck.algorithms import ASYNC_ALGORITHMS
        from convcheck.engine import run, run_async
        from convcheck.engine.timing import Link, make_compute

        if self.algorithm_name not in ASYNC_ALGORITHMS:
            return run
        settings = dict(self.asynchronous or {})
        compute = dict(settings.get("compute", {"model": "exponential"}))
        return partial(
            run_async,
            workers=settings.get("workers"),
            tau_max=settings.get("tau_max"),
            compute=make_compute(compute.pop("model", "exponential"), **compute),
            link=Link(**settings.get("link", {})),
        )


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------

def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array",
            dict: "table"}.get(type(value), type(value).__name__)


def _check_table(table: Mapping[str, Any], keys: Mapping[str, Key], context: str) -> None:
    """Unknown keys, missing required keys and wrong types raise :class:`CaseFileError`."""
    for name, value in table.items():
        if name not in keys:
            allowed = "one of " + ", ".join(repr(k) for k in keys)
            raise CaseFileError(name, value, allowed, context + " (unknown key)")
        spec = keys[name]
        wrong_bool = isinstance(value, bool) and bool not in spec.types
        if wrong_bool or not isinstance(value, spec.types):
            raise CaseFileError(name, value, f"{spec.allowed} (got a {_type_name(value)})",
                                context)
    for name, spec in keys.items():
        if spec.required and name not in table:
            raise CaseFileError(name, None, spec.allowed + " (required)", context)


def _run_spec(table: Mapping[str, Any], context: str) -> RunSpec:
    _check_table(table, RUN_KEYS, context)
    iterations = table["iterations"]
    if iterations < 1:
        raise CaseFileError("iterations", iterations, RUN_KEYS["iterations"].allowed, context)
    seeds = table.get("seeds", [0])
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                            for s in seeds):
        raise CaseFileError("seeds", seeds, RUN_KEYS["seeds"].allowed, context)
    target = table.get("target")
    if target is not None and not (math.isfinite(target) and target > 0):
        raise CaseFileError("target", target, RUN_KEYS["target"].allowed, context)
    metric = table.get("target_metric")
    from convcheck.engine import TARGET_METRICS

    if metric is not None and metric not in TARGET_METRICS:
        raise CaseFileError("target_metric", metric, RUN_KEYS["target_metric"].allowed, context)
    theta0 = table.get("theta0")
    if theta0 is not None and not (theta0 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in theta0)):
        raise CaseFileError("theta0", theta0, RUN_KEYS["theta0"].allowed, context)
    return RunSpec(iterations, tuple(seeds), None if target is None else float(target), metric,
                   None if theta0 is None else tuple(float(v) for v in theta0))


def _problem_spec(table: Mapping[str, Any], context: str, folder: Path) -> ProblemSpec:
    from convcheck.data import DATASET_FORMS, DATASETS, SCALINGS, SPLITS
    from convcheck.objectives import FAMILIES

    _check_table(table, PROBLEM_KEYS, context)
    choices = {"family": FAMILIES, "split": SPLITS, "scaling": SCALINGS}
    for name, allowed in choices.items():
        if name in table and table[name] not in allowed:
            raise CaseFileError(name, table[name], "one of " + ", ".join(allowed), context)
    dataset = table["dataset"]
    form = file_form(dataset)
    if dataset not in DATASETS and not (form is not None and form[1]):
        allowed = "one of " + ", ".join(DATASETS) + ", or " + " / ".join(DATASET_FORMS)
        raise CaseFileError("dataset", dataset, allowed, context)
    if form is not None:  # relative to the case's folder
        dataset = form[0] + str(folder / form[1])
    options = {key: value for key, value in table.items() if key not in ("family", "dataset")}
    return ProblemSpec(table["family"], dataset, options)


def file_form(dataset: str) -> tuple[str, str] | None:
    """``("svmlight:", PATH)`` or ``("idx:", DIR)`` for a dataset read from a file, else None."""
    from convcheck.data import DATASET_FORMS

    for form in DATASET_FORMS:
        prefix = form.split(":")[0] + ":"
        if dataset.startswith(prefix):
            return prefix, dataset[len(prefix):]
    return None


def _placeholder_constants():
    """Constants that resolve every step-size form (``"1/L"``, ``"0.5/mu"``) for validation."""
    import numpy as np

    from convcheck.objectives import Constants

    return Constants(L_workers=np.ones(1), L=1.0, L_tilde=1.0, L_max=1.0, curvature_lower=1.0,
                     mu=1.0, problem_class="strongly convex", eigen_method="placeholder",
                     safety_factor=1.0)


def check_algorithm(table: Mapping[str, Any], context: str) -> dict[str, Any]:
    """Validate an ``[algorithm]`` table by building the algorithm (names, types, ranges).

    Parameters whose validity depends on the problem (``k ≤ d``) are checked when it runs.
    """
    from convcheck.algorithms import ALGORITHMS, make_algorithm

    if "name" not in table:
        raise CaseFileError("name", None, "an algorithm name (required)", context)
    if table["name"] not in ALGORITHMS:
        allowed = "one of " + ", ".join(ALGORITHMS)
        raise CaseFileError("name", table["name"], allowed, context)
    params = {key: value for key, value in table.items() if key != "name"}
    try:
        make_algorithm(table["name"], _placeholder_constants(), **params)
    except InputError as error:
        raise CaseFileError(error.field, error.value, error.allowed, context) from None
    return dict(table)


def _async_table(table: Mapping[str, Any], algorithm: str, context: str,
                 folder: Path) -> dict[str, Any]:
    """Validate ``[async]`` by building its compute and link models."""
    from convcheck.algorithms import ASYNC_ALGORITHMS
    from convcheck.engine.timing import Link, make_compute

    if algorithm not in ASYNC_ALGORITHMS:
        allowed = "no [async] table for a synchronous algorithm (asynchronous: " + ", ".join(
            ASYNC_ALGORITHMS) + ")"
        raise CaseFileError("async", algorithm, allowed, context)
    _check_table(table, ASYNC_KEYS, context)
    for key, low in (("workers", 1), ("tau_max", 0)):
        if key in table and table[key] < low:
            raise CaseFileError(key, table[key], ASYNC_KEYS[key].allowed, context)
    table = dict(table)
    compute = dict(table.get("compute", {"model": "exponential"}))
    model = compute.pop("model", "exponential")
    if model == "trace" and isinstance(compute.get("path"), str):
        # relative to the case's folder; read (after the path check) by the preflight
        compute["path"] = str(folder / compute["path"])
        table["compute"] = {"model": model, **compute}
    try:
        if model != "trace" or set(compute) != {"path"}:
            make_compute(model, **compute)
        Link(**table.get("link", {}))
    except (InputError, TypeError) as error:
        field_name = getattr(error, "field", "link")
        raise CaseFileError(field_name, getattr(error, "value", table.get("link")),
                            getattr(error, "allowed", ASYNC_KEYS["link"].allowed),
                            context) from None
    return dict(table)


def _check_spec(table: Any, kind: str, context: str) -> CheckSpec:
    if not isinstance(table, dict):
        raise CaseFileError(kind, table, "a table", context)
    keys = CHECK_KEYS if kind == "positive" else CONTROL_KEYS
    _check_table(table, keys, context)
    from convcheck.verification.mutants import all_mutants
    from convcheck.verification.names import BELOW_REFERENCE, INVARIANTS, check_kind, known_checks

    bound = table["bound"]
    names = known_checks()
    if bound not in names:
        raise CaseFileError("bound", bound, "one of " + ", ".join(names), context)
    what = check_kind(bound)
    tolerance = table.get("tolerance")
    if tolerance is not None:
        if what.tolerance is None:
            raise CaseFileError("tolerance", tolerance, f"no tolerance: {bound} takes none",
                                context)
        high = 1.0 if bound == BELOW_REFERENCE else math.inf
        if not (math.isfinite(tolerance) and 0 < tolerance < high):
            raise CaseFileError("tolerance", tolerance, what.tolerance, context)
    expect = table.get("expect", what.failures[0] if kind == "negative_control" else "")
    if kind == "negative_control" and expect not in what.failures:
        raise CaseFileError("expect", expect, f"for {bound}: one of " + ", ".join(what.failures),
                            context)
    reference = table.get("reference")
    if (reference is None) != (bound != BELOW_REFERENCE):
        allowed = ("a table [..reference] with the reference algorithm (required)"
                   if bound == BELOW_REFERENCE else f"no reference: only {BELOW_REFERENCE} has one")
        raise CaseFileError("reference", reference, allowed, context)
    if reference is not None:
        check_algorithm(reference, context + ".reference")
    names = table.get("names")
    if names is not None and (bound != INVARIANTS or not names
                              or not all(isinstance(n, str) for n in names)):
        allowed = (f"a non-empty list of identity names ({INVARIANTS} checks only)"
                   if bound == INVARIANTS else f"no names: only {INVARIANTS} takes them")
        raise CaseFileError("names", names, allowed, context)
    attained = table.get("attained")
    if attained is not None:
        from convcheck.theory import BOUNDS

        if bound not in BOUNDS or what.sides != "upper":
            raise CaseFileError("attained", attained, "no attained: only a bound of convcheck "
                                f"list (an upper bound) takes it, not {bound}", context)
        if not (math.isfinite(attained) and 0 < attained < 1):
            raise CaseFileError("attained", attained, CHECK_KEYS["attained"].allowed, context)
    inject = table.get("inject")
    known = all_mutants()
    if inject is not None and inject not in known:
        raise CaseFileError("inject", inject, "one of " + ", ".join(known), context)
    run = table.get("run", {})
    _check_table(run, {k: Key(v.types, v.allowed) for k, v in RUN_KEYS.items()},
                 context + ".run")
    return CheckSpec(
        bound=bound,
        kind=kind,
        tolerance=None if tolerance is None else float(tolerance),
        name=table.get("name", bound),
        why=table.get("why", ""),
        algorithm=dict(table.get("algorithm", {})),
        run=dict(run),
        inject=inject,
        expect=expect,
        ran_with=dict(table.get("ran_with", {})),
        reference=dict(reference or {}),
        names=tuple(names or ()),
        attained=None if attained is None else float(attained),
    )


def parse_case(data: Mapping[str, Any], path: str, name: str | None = None,
               folder: Path | None = None) -> Case:
    """Validate the parsed TOML of a case file (``path`` names it in errors).

    Relative data paths (``svmlight:PATH``, ``idx:DIR``, a recorded compute trace) are read
    from ``folder`` (default: the folder of ``path``).
    """
    folder = (Path(path).parent if folder is None else folder).absolute()
    _check_table(data, TOP_KEYS, path)
    suites = data.get("suites", list(SUITES))
    if not suites or not all(s in SUITES for s in suites):
        raise CaseFileError("suites", suites, TOP_KEYS["suites"].allowed, path)
    problem = _problem_spec(data["problem"], f"{path}: [problem]", folder)
    algorithm = check_algorithm(data["algorithm"], f"{path}: [algorithm]")
    run = _run_spec(data["run"], f"{path}: [run]")
    asynchronous = (
        _async_table(data["async"], algorithm["name"], f"{path}: [async]", folder)
        if "async" in data else None
    )
    checks = [
        _check_spec(entry, "positive", f"{path}: [[checks]] #{i + 1}")
        for i, entry in enumerate(data.get("checks", []))
    ] + [
        _check_spec(entry, "negative_control", f"{path}: [[negative_controls]] #{i + 1}")
        for i, entry in enumerate(data.get("negative_controls", []))
    ]
    if not checks:
        raise CaseFileError("checks", None, "at least one [[checks]] or [[negative_controls]]",
                            path)
    from convcheck.verification.mutants import mutants_of

    own = mutants_of(algorithm["name"])
    for check in checks:
        where = f"{path}: overrides of {check.name!r}"
        if check.inject is not None and check.inject not in own:
            allowed = f"a mutant of {algorithm['name']}: " + (", ".join(own) or "none")
            raise CaseFileError("inject", check.inject, allowed, where)
        if check.names:
            _check_identity_names(check, algorithm, where)
        if check.bound == IDENTITY_CHECKS[1] and algorithm["name"] in _async_names():
            raise CaseFileError("bound", check.bound, "a check of asynchronous runs: "
                                f"{check.bound} runs synchronous rounds", where)
        spec = run.updated(check.run, where)
        check_algorithm({**algorithm, **check.algorithm}, where)
        if check.bound == "converges" and spec.target is None:
            raise CaseFileError("target", None, "a target accuracy in [run] or the check's run "
                                "overrides (a 'converges' check measures reaching it)", where)
        if check.ran_with:
            if "name" in check.ran_with:
                raise CaseFileError("name", check.ran_with["name"],
                                    "no name in ran_with (only parameters of the algorithm)",
                                    where + ".ran_with")
            check_algorithm({**algorithm, **check.algorithm, **check.ran_with},
                            where + ".ran_with")
    return Case(
        name=name or Path(path).stem,
        path=path,
        description=data["description"],
        suites=tuple(suites),
        problem=problem,
        algorithm=algorithm,
        run=run,
        checks=tuple(checks),
        asynchronous=asynchronous,
        folder=str(folder),
    )


#: Checks of synchronous rounds only.
IDENTITY_CHECKS = ("invariants", "reductions")


def _async_names() -> tuple[str, ...]:
    from convcheck.algorithms import ASYNC_ALGORITHMS

    return tuple(ASYNC_ALGORITHMS)


def _check_identity_names(check: CheckSpec, algorithm: Mapping[str, Any], where: str) -> None:
    """``names`` of an ``invariants`` check must be identities of the case's algorithm."""
    from convcheck.algorithms import make_algorithm
    from convcheck.verification.names import identity_names

    params = {key: value for key, value in {**algorithm, **check.algorithm}.items()
              if key != "name"}
    known = identity_names(make_algorithm(algorithm["name"], _placeholder_constants(), **params))
    unknown = [name for name in check.names if name not in known]
    if unknown:
        raise CaseFileError("names", unknown, f"identities of {algorithm['name']}: "
                            + ", ".join(known), where)


def load_case(path: str | Path) -> Case:
    """Read and validate one case file."""
    path = Path(path)
    if not path.is_file():
        raise CaseFileError("case", str(path), "an existing .toml case file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise CaseFileError("case", str(path), f"a valid TOML file ({error})") from None
    return parse_case(data, _shown_path(path), name=_case_name(path),
                      folder=path.resolve().parent)


def _shown_path(path: Path) -> str:
    """``path`` relative to the current folder when it lies under it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _case_name(path: Path) -> str:
    """``folder/stem`` (e.g. ``gd-sec/logistic-sorted``) so names stay unique across folders."""
    return f"{path.parent.name}/{path.stem}" if path.parent.name else path.stem


def default_folder() -> Path:
    """``problems/`` in the current folder, else the one beside the convcheck package."""
    import convcheck

    here = Path.cwd() / "problems"
    beside = Path(convcheck.__file__).resolve().parents[1] / "problems"
    return here if here.is_dir() or not beside.is_dir() else beside


def find_cases(paths: Iterable[str | Path]) -> list[Path]:
    """Case files named by ``paths`` (files, or folders searched recursively), sorted, unique."""
    found: set[Path] = set()
    for entry in paths:
        entry = Path(entry)
        if entry.is_dir():
            inside = {p.resolve() for p in entry.rglob("*.toml")}
            if not inside:
                raise CaseFileError("case", str(entry), "a case file or a folder holding case "
                                    "files (*.toml, searched recursively): none found there")
            found.update(inside)
        elif entry.is_file():
            found.add(entry.resolve())
        else:
            raise CaseFileError("case", str(entry), "an existing case file or folder")
    return sorted(found)


def load_suite(paths: Iterable[str | Path], suite: str | None = None) -> list[Case]:
    """Load every case under ``paths``; keep those of ``suite`` (all when ``None``)."""
    if suite is not None and suite not in SUITES:
        raise InputError("suite", suite, "one of " + ", ".join(SUITES))
    cases = [load_case(path) for path in find_cases(paths)]
    names = [case.name for case in cases]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise InputError("case", duplicate, "case names (folder/stem) that are unique")
    kept = [case for case in cases if suite is None or suite in case.suites]
    if not kept:
        found = sorted({s for case in cases for s in case.suites})
        raise InputError("suite", suite, f"a suite of the {len(cases)} case file(s) given "
                         f"(their suites: {', '.join(found)})")
    return kept

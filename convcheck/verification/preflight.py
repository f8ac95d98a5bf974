"""Check every case completely before any case runs.

Loading a case file (:mod:`convcheck.verification.cases`) checks what the file alone decides: keys,
types, ranges, names. What depends on the data is checked here, on the case's actual problem
(data loaded, scaled and split, constants computed; the optimum is not certified):

- the files the case reads (``svmlight:PATH``, ``idx:DIR``, a recorded compute trace) lie in
  the case's folder or the data folder, unless any path is allowed;
- the dataset and its parameters, the split, the regularization (``workers``, ``lam``,
  ``dataset_params``, ...), and that a minimizer exists where the checks need one;
- every run a check will make (overrides applied, injected bugs included) starts: the engine
  takes one round, which checks ``theta0`` against ``d``, ``k ≤ d``, the asynchronous settings
  and the step sizes resolved with the real constants.

Any failure is a :class:`~convcheck.verification.cases.CaseFileError` naming the case file, the
table and the field. A case whose named dataset needs the shared data folder and does not find
it passes: it is skipped when the suite runs (and the verdict says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from convcheck.errors import DataFileError, InputError, OptimumError
from convcheck.verification.cases import Case, CaseFileError


def preflight(cases: Sequence[Case], *, data_dir: str | None = None,
              allow_any_path: bool = False) -> None:
    """Check every case of ``cases`` (see the module docstring); the first error is raised."""
    roots = allowed_roots(data_dir)
    for case in cases:
        if not allow_any_path:
            check_paths(case, roots)
        check_runs(case, data_dir)


def allowed_roots(data_dir: str | None) -> list[Path]:
    """The data folder (when there is one), to which each case adds its own folder."""
    from convcheck.data import find_data_dir

    try:
        return [find_data_dir(data_dir)]
    except DataFileError:
        return []


def check_paths(case: Case, roots: Sequence[Path]) -> None:
    """The files ``case`` reads lie in its folder or in one of ``roots`` (symlinks resolved)."""
    folders = [Path(case.folder).resolve(), *(root.resolve() for root in roots)]
    for field, path in case.data_paths():
        resolved = Path(path).resolve()
        if not any(resolved.is_relative_to(folder) for folder in folders):
            shown = " or ".join(str(folder) for folder in folders)
            raise CaseFileError(field, path, f"a path inside {shown} (the case's folder or the "
                                "data folder; pass --allow-any-path to read files elsewhere)",
                                f"{case.path}: [problem]" if field == "dataset"
                                else f"{case.path}: [async]")


def check_runs(case: Case, data_dir: str | None) -> None:
    """Build ``case``'s problem and start every run its checks will make (one round each)."""
    from convcheck.algorithms import make_algorithm
    from convcheck.verification.mutants import inject

    problem = trial_problem(case, data_dir)
    if problem is None:
        return
    for check in case.checks:
        where = f"{case.path}: {_table(check)}"
        spec = case.run.updated(check.run, where)
        try:
            algorithm = make_algorithm(case.algorithm_name, problem.constants,
                                       **case.algorithm_params(check.algorithm))
            if check.inject is not None:
                algorithm = inject(algorithm, check.inject)
            theta0 = None if spec.theta0 is None else np.array(spec.theta0)
            case.engine()(algorithm, problem, 1, seed=spec.seeds[0], theta0=theta0,
                          target=spec.target, target_metric=spec.target_metric,
                          stop_at_target=False)
        except InputError as error:
            allowed = error.allowed
            if error.field == "theta0":
                allowed = f"a list of d = {problem.objective.dim} reals (the problem's dimension)"
            raise CaseFileError(error.field, error.value, allowed, where) from None
        except DataFileError as error:  # the recorded compute-time trace
            path = (case.asynchronous or {}).get("compute", {}).get("path")
            raise CaseFileError("compute.path", path,
                                f"a readable compute-time trace ({error})",
                                f"{case.path}: [async]") from None


def _table(check) -> str:
    if check.kind == "positive":
        return f"[[checks]] {check.bound!r}"
    return f"[[negative_controls]] {check.name!r}"


def trial_problem(case: Case, data_dir: str | None):
    """``case``'s problem with an uncertified optimum (``f_low = 0``, no ``θ̂``): enough to
    check inputs and start runs, not to measure anything. ``None`` when the case's named
    dataset is missing from the shared data folder (the case will be skipped)."""
    from convcheck.optimum import Optimum, check_attainable
    from convcheck.problem import Problem, build_objective

    context = f"{case.path}: [problem]"
    try:
        objective, split, settings = build_objective(
            case.problem.family, case.problem.dataset, data_dir=data_dir,
            **case.problem.options)
        check_attainable(objective)
    except DataFileError as error:
        if case.problem.needs_data_dir():
            return None
        raise CaseFileError("dataset", case.problem.dataset, f"a readable data file ({error})",
                            context) from None
    except OptimumError as error:
        raise CaseFileError("lam", case.problem.options.get("lam", "default"),
                            f"a value for which a minimizer exists ({error})", context) from None
    except InputError as error:
        raise CaseFileError(error.field, error.value, error.allowed, context) from None
    optimum = Optimum(theta=None, value=None, grad_norm=None, tolerance=None, gap_bound=None,
                      f_low=0.0, certificate="none: a trial problem to check inputs",
                      iterations=0, cross_check=None)
    return Problem(objective=objective, split=split, constants=objective.constants,
                   optimum=optimum, settings=settings)

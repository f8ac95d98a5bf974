"""Run verification cases: case → problem → runs → checks → verdicts, in parallel by case.

Each case runs in its own process when ``jobs > 1`` (fresh interpreters, started with
``spawn``; cases are independent and every run is seeded, so the verdicts do not depend on
``jobs``). Runs shared by several checks of a case
(same algorithm parameters, injected bug and run settings) are computed once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import as_completed
from datetime import UTC, datetime
from typing import Any

import numpy as np

from convcheck.environment import environment
from convcheck.errors import ConvcheckError, DataFileError, check_int
from convcheck.processes import worker_pool
from convcheck.verification.cases import Case, CheckSpec, RunSpec
from convcheck.verification.verdict import Verdict, thin


def case_problem(case: Case, data_dir: str | None = None):
    """The :class:`~convcheck.problem.Problem` of a case (the optimum without cvxpy)."""
    from convcheck.problem import build_problem

    return build_problem(case.problem.family, case.problem.dataset, data_dir=data_dir,
                         cross_check=False, **case.problem.options)


def _runs(case: Case, check: CheckSpec, problem, seed_offset: int, cache: dict,
          mutant: str | None = None) -> tuple:
    """The algorithm a check is evaluated for, its runs (one per seed), their run settings and
    the invariant monitors that watched them (cached per case).

    With ``ran_with`` the runs use those parameters instead of the claimed ones. ``mutant``
    (``convcheck mutate``) is injected where the case runs the claimed algorithm. Every run is
    watched by a monitor of its algorithm's identities
    (:func:`~convcheck.algorithms.invariants.monitor_for`; ``None`` where it declares none).
    """
    from convcheck.algorithms import make_algorithm
    from convcheck.algorithms.invariants import monitor_for
    from convcheck.verification.mutants import inject

    params = case.algorithm_params(check.algorithm)
    spec: RunSpec = case.run.updated(check.run, f"{case.path}: run of {check.name!r}")
    claimed = check.inject is None and not check.ran_with
    bug = check.inject if check.inject is not None else mutant if claimed else None
    key = json.dumps([params, spec.as_dict(), bug, check.ran_with], sort_keys=True,
                     default=str)
    if key not in cache:
        algorithm = make_algorithm(case.algorithm_name, problem.constants, **params)
        ran = (make_algorithm(case.algorithm_name, problem.constants,
                              **{**params, **check.ran_with})
               if check.ran_with else algorithm)
        if bug is not None:
            algorithm = inject(algorithm, bug)
            ran = inject(ran, bug) if check.ran_with else algorithm
        engine = case.engine()
        watched = bool(ran.invariants or ran.event_invariants)
        monitors = ([monitor_for(ran, objective=problem.objective) for _ in spec.seeds]
                    if watched else None)
        runs = [
            engine(ran, problem, spec.iterations, seed=seed + seed_offset,
                   target=spec.target, target_metric=spec.target_metric, stop_at_target=False,
                   theta0=None if spec.theta0 is None else np.array(spec.theta0),
                   **_observers(monitors[i] if monitors else None))
            for i, seed in enumerate(spec.seeds)
        ]
        cache[key] = (algorithm, runs, spec, monitors)
    return cache[key]


def _observers(monitor: Any) -> dict[str, Any]:
    """The engine arguments that attach ``monitor`` (none for ``None``)."""
    from convcheck.algorithms.invariants import EventMonitor

    if monitor is None:
        return {}
    if isinstance(monitor, EventMonitor):
        return {"observer": monitor.updated, "on_compute": monitor.computed}
    return {"observer": monitor}


def _curve(result) -> dict[str, Any]:
    """Accuracy against cumulative bits of one run (thinned), for the bits figure."""
    metric = result.summary["target_metric"]
    index = thin(len(result.columns["iteration"]))
    return {
        "metric_name": metric,
        "iteration": result.columns["iteration"][index].tolist(),
        "bits_up_total": result.columns["bits_up_total"][index].tolist(),
        "metric": result.columns[metric][index].tolist(),
    }


def run_case(case: Case, *, seed_offset: int = 0, data_dir: str | None = None,
             mutant: str | None = None, positive_only: bool = False) -> dict[str, Any]:
    """Run every check of ``case``: its verdicts and what the report shows about it.

    Besides its own checks, a synchronous case gets ``invariants`` and ``reductions``
    (:mod:`convcheck.verification.identities`). A case whose dataset is not available (the data
    folder lacks it) is skipped and says so; any other error is recorded as a failed check so
    that the suite fails loudly. ``mutant`` injects that bug of the case's algorithm into its
    claimed runs and ``positive_only`` leaves the negative controls out (``convcheck mutate``).
    """
    from convcheck.algorithms import make_algorithm
    from convcheck.verification import identities
    from convcheck.verification.checks import evaluate_check
    from convcheck.verification.names import INVARIANTS, REDUCTIONS

    started = time.perf_counter()
    algorithm_text = ", ".join(f"{k}={v}" for k, v in case.algorithm.items())
    out: dict[str, Any] = {
        "case": case.name, "path": case.path, "description": case.description,
        "problem_text": case.problem.describe(), "algorithm_text": algorithm_text,
        "skipped": None, "curves": {}, "staleness": None, "verdicts": [],
    }
    try:
        problem = case_problem(case, data_dir)
    except DataFileError as error:
        if case.problem.needs_data_dir():
            out["skipped"] = f"dataset {case.problem.dataset!r} not available: {error}"
            out["verdicts"] = [_error_verdict(case, check, "", out["skipped"], "skipped")
                               for check in case.checks]
            out["seconds"] = time.perf_counter() - started
            return out
        raise
    out["problem_class"] = problem.constants.problem_class
    cache: dict[str, tuple] = {}
    claimed = make_algorithm(case.algorithm_name, problem.constants, **case.algorithm_params())
    checks = [*case.checks, *identities.implicit_checks(case, claimed)]
    if positive_only:
        checks = [check for check in checks if check.kind == "positive"]
    for check in checks:
        begun = time.perf_counter()
        try:
            algorithm, runs, spec, monitors = _runs(case, check, problem, seed_offset, cache,
                                                    mutant)
            if check.bound == INVARIANTS:
                verdict = identities.invariants(check, case, problem, algorithm, runs, monitors)
            elif check.bound == REDUCTIONS:
                verdict = identities.reductions(check, case, problem, algorithm, runs, spec,
                                                seed_offset)
            else:
                verdict = evaluate_check(check, case, problem, algorithm, runs)
            label = algorithm.name if check.kind == "positive" else f"{check.name}"
            out["curves"].setdefault(label, _curve(runs[0]))
            if "staleness" in runs[0].summary and out["staleness"] is None:
                out["staleness"] = runs[0].summary["staleness"]
        except ConvcheckError as error:
            verdict = _error_verdict(case, check, problem.constants.problem_class,
                                     f"error: {error}")
        verdict.seconds = time.perf_counter() - begun
        out["verdicts"].append(verdict)
    out["seconds"] = time.perf_counter() - started
    return out


def _error_verdict(case: Case, check: CheckSpec, problem_class: str, reason: str,
                   outcome: str = "error") -> Verdict:
    """A check that could not be run (``error``, whatever its kind) or a case that was
    ``skipped``."""
    from convcheck.verification.names import check_kind

    return Verdict(
        case=case.name, name=check.name, algorithm=case.algorithm_name,
        problem=case.problem.describe(), problem_class=problem_class,
        bound=check.bound, source="", citation="", kind=check.kind, holds=None,
        applicable=False, reason=reason, why=check.why, outcome=outcome,
        sides=check_kind(check.bound).sides, expect=check.expect,
    )


def verify(
    cases: Sequence[Case],
    *,
    jobs: int = 1,
    seed: int = 0,
    suite: str | None = None,
    data_dir: str | None = None,
    progress: Callable[[str], None] | None = None,
    show_bar: bool = False,
    allow_any_path: bool = False,
) -> dict[str, Any]:
    """Run ``cases`` and return the report document (plain data; see :mod:`convcheck.report`).

    Parameters
    ----------
    cases : sequence of Case
    jobs : int
        Cases run in parallel in this many processes (1: in this process). The processes are
        fresh interpreters (``spawn``), so a script that calls ``verify(jobs > 1)`` must do so
        under ``if __name__ == "__main__":``, as with any ``multiprocessing`` code.
    seed : int
        Added to every run seed of every case.
    suite : str, optional
        Recorded in the report (the cases are already selected).
    data_dir : str, optional
        Folder of the real datasets.
    progress : callable, optional
        Called with one line per finished case.
    show_bar : bool
        Show a progress bar over the cases.
    allow_any_path : bool
        Let case files read data anywhere (default: only in their own folder and the data
        folder).

    Raises
    ------
    CaseFileError
        A case that cannot run as written (:mod:`convcheck.verification.preflight`): raised before
        any case runs.
    """
    from convcheck.verification.preflight import preflight

    jobs = check_int("jobs", jobs, 1)
    seed = check_int("seed", seed, 0)
    preflight(cases, data_dir=data_dir, allow_any_path=allow_any_path)
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    bar = None
    if show_bar:
        from tqdm import tqdm

        bar = tqdm(total=len(cases), desc="verify", unit="case")

    def finished(result: dict[str, Any]) -> None:
        results[result["case"]] = result
        if bar is not None:
            bar.update(1)
        if progress is not None:
            progress(_case_line(result))

    try:
        if jobs == 1 or len(cases) < 2:
            for case in cases:
                finished(run_case(case, seed_offset=seed, data_dir=data_dir))
        else:
            # fresh interpreters: a fork of a process whose solver or BLAS thread pools are
            # already running can deadlock in the child (seen with Clarabel after SDP solves);
            # an interrupt stops the workers at once, and they die with this process
            with worker_pool(min(jobs, len(cases))) as pool:
                futures = [pool.submit(run_case, case, seed_offset=seed, data_dir=data_dir)
                           for case in cases]
                for future in as_completed(futures):
                    finished(future.result())
    finally:
        if bar is not None:
            bar.close()
    ordered = [results[case.name] for case in cases]
    return _document(ordered, suite=suite, seed=seed, jobs=jobs,
                     seconds=time.perf_counter() - started)


def _case_line(result: dict[str, Any]) -> str:
    if result["skipped"]:
        return f"skip {result['case']}: {result['skipped']}"
    verdicts = result["verdicts"]
    good = sum(v.passed for v in verdicts)
    bad = sorted({v.outcome for v in verdicts if not v.passed})
    mark = "ok  " if not bad else "FAIL"
    detail = f" [{', '.join(bad)}]" if bad else ""
    return f"{mark} {result['case']}: {good}/{len(verdicts)} checks as expected{detail} " \
           f"({result['seconds']:.1f} s)"


def _document(results: list[dict[str, Any]], *, suite: str | None, seed: int, jobs: int,
              seconds: float) -> dict[str, Any]:
    from convcheck.verification.verdict import OUTCOMES

    checks = [v for result in results for v in result["verdicts"]]
    ran = [v for v in checks if v.outcome != "skipped"]
    positive = [v for v in ran if v.kind == "positive"]
    negative = [v for v in ran if v.kind == "negative_control"]
    summary = {
        "positive": len(positive),
        "positive_held": sum(v.passed for v in positive),
        "negative": len(negative),
        "negative_failed": sum(v.passed for v in negative),
        "outcomes": {name: sum(v.outcome == name for v in checks) for name in OUTCOMES},
        "cases": len(results),
        "skipped": sum(result["skipped"] is not None for result in results),
        "seconds": seconds,
    }
    # a suite that could not run all its cases is not verified, whatever the others say
    summary["verdict"] = ("failed" if any(not v.passed for v in ran)
                          else "incomplete" if summary["skipped"] or not ran
                          else "verified")
    summary["passed"] = summary["verdict"] == "verified"
    cases = [{key: value for key, value in result.items() if key != "verdicts"}
             for result in results]
    return {
        "created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "suite": suite,
        "seed": seed,
        "jobs": jobs,
        "summary": summary,
        "environment": environment(("cvxpy",)),
        "cases": cases,
        "checks": [v.as_dict() for v in checks],
    }

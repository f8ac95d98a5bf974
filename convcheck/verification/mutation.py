"""The mutation score of a suite: which injected bugs its checks catch (``convcheck mutate``).

Every algorithm that a case of the suite runs brings its catalog of mutants
(:mod:`convcheck.algorithms.mutation`: a sign flipped, a dropped ``1/M``, a step ×0.5 or ×1.3,
a stale or never-updated memory, ``β`` on one side only, a threshold scale, ``k`` off by one,
bits priced with the wrong codec, the wrong worker's row, ...). A mutant is applied at run
time where a case runs its claimed algorithm and the case's *positive* checks — its bounds and
the identity checks of :mod:`convcheck.verification.identities` — are evaluated on the mutated runs;
negative controls are left out, so a bug caught only by a control that injects that very bug
does not count. The mutant is *killed* by the first case (in suite order) in which a check
that passes on the real algorithm does not pass; otherwise it *survives*, and the report shows
the mutant's own explanation (an equivalent mutant, or a bug no check can see) or says that
none was given.

The score of an algorithm is the fraction of its catalog killed; the suite's, over all
mutants of the algorithms it runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import as_completed
from typing import Any

from convcheck.errors import InputError, check_int
from convcheck.processes import worker_pool
from convcheck.verification.cases import Case
from convcheck.verification.runner import run_case

#: Characters of a killing check's reason kept in the table.
REASON_CHARS = 240


def catalog(cases: Sequence[Case], only: Sequence[str] = ()) -> dict[str, list[Any]]:
    """The mutants of each algorithm the cases run (``only``: these algorithms), in the
    algorithms' declaration order.

    Raises
    ------
    InputError
        ``only`` names an algorithm that no case runs.
    """
    from convcheck.algorithms import ALGORITHMS

    ran = list(dict.fromkeys(case.algorithm_name for case in cases))
    for name in only:
        if name not in ran:
            raise InputError("--algorithm", name, "an algorithm the cases run: " + ", ".join(ran))
    return {name: list(ALGORITHMS[name].mutants) for name in ran if not only or name in only}


def _baseline(case: Case, seed: int, data_dir: str | None) -> tuple[str, set[str] | None]:
    """The positive checks of ``case`` that pass on the real algorithm (None: skipped)."""
    result = run_case(case, seed_offset=seed, data_dir=data_dir, positive_only=True)
    if result["skipped"]:
        return case.name, None
    return case.name, {v.name for v in result["verdicts"] if v.passed}


def _hunt(algorithm: str, mutant: str, cases: Sequence[Case], passing: dict[str, set[str]],
          seed: int, data_dir: str | None) -> dict[str, Any]:
    """Run ``mutant`` through the cases of ``algorithm`` until one of their passing checks
    fails."""
    started = time.perf_counter()
    tried = []
    for case in cases:
        if passing.get(case.name) is None:
            continue
        tried.append(case.name)
        result = run_case(case, seed_offset=seed, data_dir=data_dir, mutant=mutant,
                          positive_only=True)
        caught = [v for v in result["verdicts"]
                  if not v.passed and v.name in passing[case.name]]
        if caught:
            return {"algorithm": algorithm, "mutant": mutant, "killed": True, "case": case.name,
                    "checks": [{"name": v.name, "outcome": v.outcome,
                                "reason": v.reason[:REASON_CHARS]} for v in caught],
                    "cases_tried": tried, "seconds": time.perf_counter() - started}
    return {"algorithm": algorithm, "mutant": mutant, "killed": False, "case": None,
            "checks": [], "cases_tried": tried, "seconds": time.perf_counter() - started}


def mutation_score(
    cases: Sequence[Case],
    *,
    jobs: int = 1,
    seed: int = 0,
    data_dir: str | None = None,
    only: Sequence[str] = (),
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every mutant of the algorithms the ``cases`` run against their positive checks.

    Parameters
    ----------
    cases : sequence of Case
    jobs : int
        Processes (fresh interpreters); the result does not depend on it.
    seed : int
        Added to every run seed.
    data_dir : str, optional
    only : sequence of str
        Only the mutants of these algorithms.
    progress : callable, optional
        Called with one line per mutant.

    Returns
    -------
    dict
        ``mutants`` (one row per mutant: ``algorithm``, ``mutant``, ``description``,
        ``killed``, ``case`` and ``checks`` that killed it, ``survives`` — its explanation when
        it survives —, ``cases_tried``, ``seconds``), ``algorithms`` (per algorithm: ``killed``,
        ``total``, ``score``), ``killed``, ``total``, ``score``, ``excluded`` (cases left out:
        skipped, or checks that fail without any mutant), ``seconds``.
    """
    jobs = check_int("jobs", jobs, 1)
    seed = check_int("seed", seed, 0)
    started = time.perf_counter()
    mutants = catalog(cases, only)
    by_algorithm = {name: [c for c in cases if c.algorithm_name == name] for name in mutants}
    relevant = [case for group in by_algorithm.values() for case in group]
    tasks = [(name, mutant.name) for name, group in mutants.items() for mutant in group]
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    passing: dict[str, set[str] | None] = {}

    def finished(row: dict[str, Any]) -> None:
        rows[(row["algorithm"], row["mutant"])] = row
        if progress is not None:
            where = (f"killed in {row['case']} by " + ", ".join(c["name"] for c in row["checks"])
                     if row["killed"] else "SURVIVED")
            progress(f"{row['algorithm']}[{row['mutant']}]: {where} ({row['seconds']:.1f} s)")

    if jobs == 1:
        for case in relevant:
            passing.update([_baseline(case, seed, data_dir)])
        for name, mutant in tasks:
            finished(_hunt(name, mutant, by_algorithm[name], passing, seed, data_dir))
    else:
        with worker_pool(min(jobs, max(len(tasks), 1))) as pool:
            futures = [pool.submit(_baseline, case, seed, data_dir) for case in relevant]
            passing.update(future.result() for future in futures)
            futures = [pool.submit(_hunt, name, mutant, by_algorithm[name], passing, seed,
                                   data_dir) for name, mutant in tasks]
            for future in as_completed(futures):
                finished(future.result())
    return _document(mutants, rows, passing, by_algorithm, time.perf_counter() - started)


def _document(mutants: dict[str, list[Any]], rows: dict, passing: dict,
              by_algorithm: dict[str, list[Case]], seconds: float) -> dict[str, Any]:
    table, algorithms = [], {}
    for name, group in mutants.items():
        killed = 0
        for mutant in group:
            row = dict(rows[(name, mutant.name)])
            row["description"] = mutant.description
            row["survives"] = "" if row["killed"] else (
                mutant.survives or "no explanation: a bug the suite should catch")
            killed += row["killed"]
            table.append(row)
        algorithms[name] = {"killed": killed, "total": len(group),
                            "score": killed / len(group) if group else None,
                            "cases": [c.name for c in by_algorithm[name]]}
    total = sum(a["total"] for a in algorithms.values())
    killed = sum(a["killed"] for a in algorithms.values())
    excluded = sorted(name for name, checks in passing.items() if checks is None)
    return {"mutants": table, "algorithms": algorithms, "killed": killed, "total": total,
            "score": killed / total if total else None, "excluded": excluded,
            "seconds": seconds}


def score_line(document: dict[str, Any]) -> str:
    """``Mutation score: K/N killed (P%) ...`` in words."""
    if not document["total"]:
        return "Mutation score: no mutants (the cases' algorithms declare none)."
    per = ", ".join(f"{name} {a['killed']}/{a['total']}"
                    for name, a in document["algorithms"].items())
    return (f"Mutation score: {document['killed']}/{document['total']} mutants killed "
            f"({100 * document['score']:.1f}%) by positive checks and identities; {per}.")

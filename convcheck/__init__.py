"""convcheck: verify the convergence theory of communication-compressed distributed optimization.

The objects the command line uses, for Python users::

    import convcheck

    problem = convcheck.build_problem("logistic", "breast-cancer", workers=10, split="sorted")
    algorithm = convcheck.make_algorithm("gd-sec", problem.constants, alpha="1/L", xi=0.1)
    result = convcheck.run(algorithm, problem, iterations=200)
    for bound in convcheck.bounds_for(algorithm, problem):
        print(bound.name, convcheck.check_bound(bound, result, problem, algorithm).holds)

Names are imported on first use, so ``import convcheck`` stays fast (numpy only); see
:data:`__all__` for what is offered and where each name lives.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from convcheck.environment import package_version

__version__ = package_version("convcheck")

#: Public name → the module that defines it.
_EXPORTS = {
    "ALGORITHMS": "convcheck.algorithms",
    "Algorithm": "convcheck.algorithms",
    "make_algorithm": "convcheck.algorithms",
    "COMPRESSORS": "convcheck.compressors",
    "Compressor": "convcheck.compressors",
    "make_compressor": "convcheck.compressors",
    "check_compressor": "convcheck.contracts",
    "Problem": "convcheck.problem",
    "build_problem": "convcheck.problem",
    "run": "convcheck.engine",
    "run_async": "convcheck.engine",
    "run_batch": "convcheck.engine",
    "write_run": "convcheck.engine",
    "bounds_for": "convcheck.theory.registry",
    "check_bound": "convcheck.theory.check",
    "certify": "convcheck.theory.certified",
    "load_case": "convcheck.verification.cases",
    "load_suite": "convcheck.verification.cases",
    "verify": "convcheck.verification",
    "mutation_score": "convcheck.verification.mutation",
    "write_report": "convcheck.report",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'convcheck' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

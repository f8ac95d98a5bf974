"""convcheck: verify the convergence theory of communication-compressed distributed optimization.

The objects the command line uses, for Python users::

    from convcheck import build_problem, make_algorithm, run

    problem = build_problem("logistic", "breast-cancer", workers=10, split="sorted")
    algorithm = make_algorithm("gd-sec", problem.constants, alpha="1/L", xi=0.1)
    result = run(algorithm, problem, iterations=200)
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("convcheck")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from convcheck.algorithms import ALGORITHMS, make_algorithm  # noqa: E402
from convcheck.compressors import COMPRESSORS, make_compressor  # noqa: E402
from convcheck.contracts import check_compressor  # noqa: E402
from convcheck.engine import run, run_async, write_run  # noqa: E402
from convcheck.problem import Problem, build_problem  # noqa: E402

__all__ = [
    "ALGORITHMS",
    "COMPRESSORS",
    "Problem",
    "__version__",
    "build_problem",
    "check_compressor",
    "make_algorithm",
    "make_compressor",
    "run",
    "run_async",
    "write_run",
]

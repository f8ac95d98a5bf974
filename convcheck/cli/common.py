"""Options several subcommands share: the problem they build, and progress lines."""

from __future__ import annotations

import argparse
import sys

from convcheck.keyvalue import parse_assignments

#: Help of every ``--data-dir`` option.
DATA_DIR_HELP = ("folder of the real datasets, searched before $CONVCHECK_DATA and the user "
                 "cache (see convcheck data path)")


def progress_line(line: str) -> None:
    """One progress line on standard error (standard output keeps the result)."""
    print(line, file=sys.stderr, flush=True)


def warning_line(text: str) -> None:
    """A warning on standard error: the command goes on."""
    print(f"convcheck: warning: {text}", file=sys.stderr, flush=True)


#: Seconds before a progress bar appears: quicker work shows none.
PROGRESS_DELAY = 2


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    """``--progress/--no-progress``; default: on when standard error is a terminal."""
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None,
        help=f"progress bar on standard error, shown after {PROGRESS_DELAY} s (default: on "
        "when standard error is a terminal)")


def wants_progress(args: argparse.Namespace) -> bool:
    """Whether to show progress bars: ``--progress/--no-progress``, else whether standard
    error is a terminal. Bars (tqdm) then appear only after :data:`PROGRESS_DELAY` seconds,
    so work that ends sooner prints nothing."""
    import os

    shown = sys.stderr.isatty() if args.progress is None else args.progress
    if shown:
        # tqdm (>= 4.66) reads its defaults from TQDM_* variables when it is first imported
        os.environ.setdefault("TQDM_DELAY", str(PROGRESS_DELAY))
    return shown


def add_problem_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that build a problem (``inspect``, ``run``, ``compare``)."""
    from convcheck.data import SCALINGS, SPLITS
    from convcheck.objectives import FAMILIES

    parser.add_argument("--problem", required=True, choices=FAMILIES)
    parser.add_argument(
        "--dataset", default="breast-cancer", help="name, svmlight:PATH or idx:DIR (breast-cancer)"
    )
    parser.add_argument("--workers", type=int, default=10, help="number of workers M (10)")
    parser.add_argument("--split", default="iid", choices=SPLITS, help="row split (iid)")
    parser.add_argument(
        "--dirichlet-alpha", type=float, help="Dirichlet concentration (split=dirichlet)"
    )
    parser.add_argument("--lam", type=float, help="L2 weight (logistic 1e-3, others 0)")
    parser.add_argument("--lam-nc", type=float, help="nonconvex weight (0.1)")
    parser.add_argument("--scaling", default="maxabs", choices=SCALINGS, help="(maxabs)")
    parser.add_argument("--intercept", action="store_true", help="append a constant feature")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the run, the split and the generators (0)"
    )
    parser.add_argument(
        "--split-seed", type=int, help="seed of the split and generators (default: --seed)"
    )
    parser.add_argument("--data-dir", help=DATA_DIR_HELP)
    parser.add_argument(
        "--dataset-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dataset loader parameter, e.g. n_features=50",
    )
    check = parser.add_mutually_exclusive_group()
    check.add_argument(
        "--cross-check",
        dest="cross_check",
        action="store_true",
        default=None,
        help="run the cvxpy cross-check of the optimum",
    )
    check.add_argument("--no-cross-check", dest="cross_check", action="store_false")


def problem_from(args: argparse.Namespace, workers: int | None = None):
    """The :class:`~convcheck.problem.Problem` the problem options describe."""
    from convcheck.data import find_data_dir
    from convcheck.problem import build_problem

    if args.data_dir is not None:
        find_data_dir(args.data_dir)  # an explicit folder must exist, used or not
    return build_problem(
        args.problem,
        args.dataset,
        workers=args.workers if workers is None else workers,
        split=args.split,
        dirichlet_alpha=args.dirichlet_alpha,
        lam=args.lam,
        lam_nc=args.lam_nc,
        scaling=args.scaling,
        intercept=args.intercept,
        seed=args.split_seed if args.split_seed is not None else args.seed,
        data_dir=args.data_dir,
        dataset_params=parse_assignments(args.dataset_param, "--dataset-param"),
        cross_check=args.cross_check,
    )

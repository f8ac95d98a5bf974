"""``convcheck verify``: the verification suite and its report.

Exit status: 0 verified, 1 a check failed, 2 bad input (nothing ran), 3 incomplete (cases
skipped for missing data), 130/143 interrupted (:mod:`convcheck.cli.exits`).
"""

from __future__ import annotations

import argparse

from convcheck.cli import exits
from convcheck.cli.common import (
    DATA_DIR_HELP,
    add_progress_argument,
    progress_line,
    wants_progress,
)
from convcheck.errors import InputError, check_int

#: Where the report goes by default (``.gitignore`` lists it, so the main job leaves a clone
#: clean).
DEFAULT_OUT = "reports"


def handle(args: argparse.Namespace) -> int:
    from convcheck.data import find_data_dir
    from convcheck.report import check_out_folder, write_report
    from convcheck.report.pages import summary_lines
    from convcheck.verification import default_folder, load_suite, verify

    check_out_folder(args.out)
    jobs = check_int("--jobs", args.jobs, 1)
    if args.data_dir is not None:
        find_data_dir(args.data_dir)  # an explicit folder must exist
    suite = args.suite if args.suite is not None or args.cases else "quick"
    cases = load_suite(args.cases or [default_folder()], suite)
    if not cases:
        raise InputError("cases", args.cases, f"case files of suite {suite!r}")
    document = verify(cases, jobs=jobs, seed=args.seed, suite=suite, data_dir=args.data_dir,
                      progress=progress_line, show_bar=wants_progress(args),
                      allow_any_path=args.allow_any_path)
    if args.mutate:
        from convcheck.verification.mutation import mutation_score

        document["mutation"] = mutation_score(cases, jobs=jobs, seed=args.seed,
                                              data_dir=args.data_dir, progress=progress_line)
    index = write_report(document, args.out)
    print("\n".join(summary_lines(document)))
    print(f"report: {index}")
    return {"verified": exits.VERIFIED, "failed": exits.FAILED,
            "incomplete": exits.INCOMPLETE}[document["summary"]["verdict"]]


def add_parser(commands: argparse._SubParsersAction) -> None:
    from convcheck.verification.cases import SUITES

    verification = commands.add_parser(
        "verify", help="run the verification suite and write its report (exit 0 iff verified)",
        epilog="exit status: 0 verified, 1 a check failed, 2 bad input (nothing ran), "
        "3 incomplete (cases SKIPPED: data missing), 130/143 interrupted (SIGINT/SIGTERM); "
        "see docs/reliability.md",
    )
    verification.add_argument(
        "cases", nargs="*", metavar="CASE",
        help="case files or folders (default: problems/, suite quick)",
    )
    verification.add_argument("--suite", choices=SUITES, help="keep the cases of this suite")
    verification.add_argument(
        "--out", default=DEFAULT_OUT,
        help=f"report folder ({DEFAULT_OUT}; git-ignored in a checkout of convcheck)")
    verification.add_argument("--jobs", type=int, default=1, help="cases run in parallel (1)")
    verification.add_argument("--seed", type=int, default=0, help="added to every run seed (0)")
    verification.add_argument("--data-dir", help=DATA_DIR_HELP)
    add_progress_argument(verification)
    verification.add_argument(
        "--allow-any-path", action="store_true",
        help="let case files read data outside their folder and the data folder",
    )
    verification.add_argument(
        "--mutate", action="store_true",
        help="also run every mutant of the cases' algorithms against their positive checks "
        "and put the mutation score in the report (as convcheck mutate)")
    verification.set_defaults(handler=handle)

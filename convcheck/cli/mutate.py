"""``convcheck mutate``: which injected bugs the suite's checks catch (the mutation score).

Exit status: 0 done (and the score is at least ``--fail-under``), 1 below ``--fail-under``,
2 bad input (nothing ran), 130/143 interrupted (:mod:`convcheck.cli.exits`).
"""

from __future__ import annotations

import argparse

from convcheck.cli import exits
from convcheck.cli.common import DATA_DIR_HELP, progress_line
from convcheck.errors import InputError, check_int, check_real


def handle(args: argparse.Namespace) -> int:
    from convcheck.data import find_data_dir
    from convcheck.jsonio import write_json
    from convcheck.outputs import check_output_file
    from convcheck.verification import default_folder, load_suite
    from convcheck.verification.mutation import catalog, mutation_score, score_line
    from convcheck.verification.preflight import preflight

    out = None if args.out is None else check_output_file(args.out, "--out", (".json",))
    jobs = check_int("--jobs", args.jobs, 1)
    floor = None if args.fail_under is None else check_real("--fail-under", args.fail_under,
                                                            0.0, 100.0)
    if args.data_dir is not None:
        find_data_dir(args.data_dir)  # an explicit folder must exist
    suite = args.suite if args.suite is not None or args.cases else "quick"
    cases = load_suite(args.cases or [default_folder()], suite)
    if not cases:
        raise InputError("cases", args.cases, f"case files of suite {suite!r}")
    catalog(cases, args.algorithm or ())  # an algorithm no case runs: exit 2 before any work
    preflight(cases, data_dir=args.data_dir, allow_any_path=args.allow_any_path)
    document = mutation_score(cases, jobs=jobs, seed=args.seed, data_dir=args.data_dir,
                              only=args.algorithm or (), progress=progress_line)
    for row in document["mutants"]:
        if not row["killed"]:
            print(f"survivor {row['algorithm']}[{row['mutant']}]: {row['description']} — "
                  f"{row['survives']}")
    print(score_line(document))
    if document["excluded"]:
        print("cases left out (data not available): " + ", ".join(document["excluded"]))
    if out is not None:
        write_json(out, document)
        print(f"written: {out}")
    if floor is not None and document["score"] is not None and 100 * document["score"] < floor:
        return exits.FAILED
    return exits.VERIFIED


def add_parser(commands: argparse._SubParsersAction) -> None:
    from convcheck.verification.cases import SUITES

    mutate = commands.add_parser(
        "mutate", help="run the cases' algorithms with injected bugs: the mutation score",
        epilog="exit status: 0 done, 1 score below --fail-under, 2 bad input (nothing ran), "
        "130/143 interrupted",
    )
    mutate.add_argument("cases", nargs="*", metavar="CASE",
                        help="case files or folders (default: problems/, suite quick)")
    mutate.add_argument("--suite", choices=SUITES, help="keep the cases of this suite")
    mutate.add_argument("--algorithm", action="append", metavar="NAME",
                        help="only the mutants of this algorithm (repeatable)")
    mutate.add_argument("--jobs", type=int, default=1, help="processes (1)")
    mutate.add_argument("--seed", type=int, default=0, help="added to every run seed (0)")
    mutate.add_argument("--data-dir", help=DATA_DIR_HELP)
    mutate.add_argument("--out", help="write the table as JSON (FILE.json)")
    mutate.add_argument("--fail-under", type=float, metavar="PERCENT",
                        help="exit 1 when the score is below this percentage")
    mutate.add_argument(
        "--allow-any-path", action="store_true",
        help="let case files read data outside their folder and the data folder",
    )
    mutate.set_defaults(handler=handle)

"""The ``convcheck`` command.

Subcommands: ``list`` (what is available), ``inspect`` (one problem's constants and certified
optimum), ``run`` (one run of an algorithm and its trace), ``compare`` (bits and iterations to a
target for several algorithms on one problem), ``certify`` (an LMI-certified linear rate),
``verify`` (the verification suite and its report) and ``bench`` (the engine's performance
figures). Errors on bad input print one line naming the field and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from convcheck.errors import ConvcheckError, InputError
from convcheck.jsonio import write_json


def parse_assignments(items: Sequence[str]) -> dict:
    """``["k=10", "ratio=0.1", "scaled=true", "name=x"]`` → typed dict (int, float, bool, str)."""
    values: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError("--set", item, "key=value")
        values[key] = _parse_value(raw)
    return values


def _parse_value(raw: str) -> int | float | bool | str:
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            continue
    return raw


def _list(args: argparse.Namespace) -> int:
    from convcheck.catalog import catalog, format_catalog

    entries = catalog(data_dir=args.data_dir)
    print(json.dumps(entries, indent=2) if args.json else format_catalog(entries))
    return 0


def _problem_from(args: argparse.Namespace, workers: int | None = None):
    """The :class:`~convcheck.problem.Problem` the problem options describe."""
    from convcheck.problem import build_problem

    return build_problem(
        args.problem,
        args.dataset,
        workers=args.workers if workers is None else workers,
        split=args.split,
        alpha=args.dirichlet_alpha,
        lam=args.lam,
        lam_nc=args.lam_nc,
        scaling=args.scaling,
        intercept=args.intercept,
        seed=args.split_seed if args.split_seed is not None else args.seed,
        data_dir=args.data_dir,
        dataset_params=parse_assignments(args.dataset_param),
        cross_check=args.cross_check,
    )


def _inspect(args: argparse.Namespace) -> int:
    description = _problem_from(args).describe()
    if args.out:
        write_json(args.out, description)
    print(_format_inspection(description))
    return 0


#: ``convcheck run`` options that only asynchronous algorithms take (argparse dest names).
ASYNC_OPTIONS = (
    "compute",
    "compute_mean",
    "compute_spread",
    "compute_sigma",
    "compute_shape",
    "compute_trace",
    "latency_up",
    "latency_down",
    "bandwidth_up",
    "bandwidth_down",
    "tau_max",
    "trace_every",
    "shared_data",
)


def _run(args: argparse.Namespace) -> int:
    from convcheck.algorithms import ASYNC_ALGORITHMS, make_algorithm
    from convcheck.engine import run, write_run

    asynchronous = args.algorithm in ASYNC_ALGORITHMS
    if not asynchronous:
        for name in ASYNC_OPTIONS:
            if getattr(args, name) not in (None, False):
                option = "--" + name.replace("_", "-")
                allowed = "only with an asynchronous algorithm: " + ", ".join(ASYNC_ALGORITHMS)
                raise InputError(option, getattr(args, name), allowed)
    problem = _problem_from(args, workers=1 if args.shared_data else None)
    algorithm = make_algorithm(args.algorithm, problem.constants, **parse_assignments(args.set))
    common = {
        "seed": args.seed,
        "target": args.target,
        "target_metric": args.target_metric,
        "stop_at_target": args.stop_at_target,
        "progress": args.progress,
    }
    if asynchronous:
        result = _run_async(args, algorithm, problem, common)
    else:
        result = run(algorithm, problem, args.iters, **common)
    if args.out:
        write_run(result, args.out)
    print(_format_run(result))
    return 0


def _run_async(args: argparse.Namespace, algorithm, problem, common: dict):
    """One run of an asynchronous algorithm with the timing options of ``args``."""
    from convcheck.engine import run_async
    from convcheck.engine.timing import Link, make_compute

    name = args.compute or ("trace" if args.compute_trace else "exponential")
    if name == "trace":
        if args.compute_trace is None:
            raise InputError("--compute-trace", None, "a .csv or .json file of durations")
        compute = make_compute("trace", path=args.compute_trace)
    else:
        if args.compute_trace is not None:
            raise InputError("--compute-trace", args.compute_trace, "only with --compute trace")
        extra = {"sigma": args.compute_sigma, "shape": args.compute_shape}
        params = {key: value for key, value in extra.items() if value is not None}
        params["mean"] = 1.0 if args.compute_mean is None else args.compute_mean
        params["spread"] = 1.0 if args.compute_spread is None else args.compute_spread
        compute = make_compute(name, **params)
    link_options = {
        key: getattr(args, key)
        for key in ("latency_up", "latency_down", "bandwidth_up", "bandwidth_down")
        if getattr(args, key) is not None
    }
    return run_async(
        algorithm,
        problem,
        args.iters,
        workers=args.workers,
        compute=compute,
        link=Link(**link_options),
        tau_max=args.tau_max,
        trace_every=1 if args.trace_every is None else args.trace_every,
        **common,
    )


def parse_numbers(field: str, text: str | None) -> list[float] | None:
    """``"1,2.5,3"`` → ``[1.0, 2.5, 3.0]``; errors name ``field``."""
    if text is None:
        return None
    try:
        return [float(item) for item in text.split(",")]
    except ValueError:
        raise InputError(field, text, "comma-separated numbers, e.g. 1,2,3") from None


def _certify(args: argparse.Namespace) -> int:
    from convcheck.theory.certified import certify

    certificate = certify(
        args.algorithm,
        L=args.L,
        mu=args.mu,
        workers=args.workers,
        L_workers=parse_numbers("L_workers", args.L_workers),
        mu_workers=parse_numbers("mu_workers", args.mu_workers),
        tol=args.tol,
        **parse_assignments(args.set),
    )
    described = certificate.as_dict()
    if args.out:
        write_json(args.out, described)
    print(json.dumps(described, indent=1) if args.json else _format_certificate(described))
    return 0


def _format_certificate(described: dict) -> str:
    params = dict(described["params"])
    constants = {key: params.pop(key) for key in ("L", "mu", "workers", "L_workers", "mu_workers")}
    lines = [
        f"algorithm  {described['algorithm']} {json.dumps(params)}",
        f"constants  L = {constants['L']:g}, mu = {constants['mu']:g}, "
        f"M = {constants['workers']}, L_m = {constants['L_workers']}, "
        f"mu_m = {constants['mu_workers']}",
    ]
    if described["certified"]:
        check = described["verification"]
        lines += [
            f"certified  rho = {described['rho']:.9g}: ‖θ^k − θ*‖² ≤ rho^(2k)·V(s⁰), "
            f"rho in ({described['rho_infeasible']:.9g}, {described['rho']:.9g}]",
            f"re-check   numpy: max eigenvalue of the LMI = "
            f"{max(check['lmi_max_eigenvalue']):.3g} ≤ −{max(check['lmi_tolerance']):.1g}; "
            f"min eigenvalue of P − e eᵀ = {check['p_min_eigenvalue']:.3g} ≥ "
            f"{check['p_tolerance']:.1g}",
        ]
    else:
        lines.append(f"result     {described['reason']}")
    lines.append(
        f"solves     {described['solves']} SDPs in {described['seconds']:.2f} s "
        f"({described['solver'] or 'no certificate'}), "
        f"bisection tolerance {described['tolerance']:g}"
    )
    return "\n".join(lines)


def _compare(args: argparse.Namespace) -> int:
    from convcheck.comparison import compare, format_comparison

    problem = _problem_from(args)
    rows = compare(
        problem,
        args.algorithms,
        target=args.target,
        iterations=args.iters,
        target_metric=args.target_metric,
        seed=args.seed,
    )
    if args.out:
        document = {"problem": problem.describe(), "target": args.target, "rows": rows}
        write_json(args.out, document)
    print(f"problem    {problem.objective.name} ({problem.settings['problem']})")
    print(format_comparison(rows, args.target))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from convcheck.report import check_out_folder, write_report
    from convcheck.verify import default_folder, load_suite, verify

    check_out_folder(args.out)
    suite = args.suite if args.suite is not None or args.cases else "quick"
    cases = load_suite(args.cases or [default_folder()], suite)
    if not cases:
        raise InputError("cases", args.cases, f"case files of suite {suite!r}")

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    document = verify(cases, jobs=args.jobs, seed=args.seed, suite=suite,
                      data_dir=args.data_dir, progress=progress, show_bar=args.progress)
    index = write_report(document, args.out)
    from convcheck.report.pages import summary_lines

    print("\n".join(summary_lines(document)))
    print(f"report: {index}")
    return 0 if document["summary"]["passed"] else 1


def _bench(args: argparse.Namespace) -> int:
    from convcheck import bench

    grid, settings = (
        (bench.QUICK_GRID, bench.QUICK_SETTINGS)
        if args.quick
        else (bench.FULL_GRID, bench.FULL_SETTINGS)
    )
    settings = dict(settings)
    for key in ("rounds", "repeats"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    progress(bench.HEADER)
    rows = bench.benchmark(grid, seed=args.seed, progress=progress, **settings)
    print(bench.format_table(rows))
    if args.profile:
        print()
        print(bench.profile_largest(grid, seed=args.seed))
    if args.out:
        write_json(args.out, bench.report(rows))
    return 0


def _torch_train(args: argparse.Namespace) -> int:
    try:
        from convcheck.torch.train import main as torch_train
    except ModuleNotFoundError as error:
        if error.name != "torch":
            raise
        raise InputError("torch", "not installed", "pip install 'convcheck[torch]'") from None
    return torch_train(args.args)


def _format_run(result) -> str:
    summary, final = result.summary, result.summary["final"]
    algorithm = result.meta["algorithm"]
    lines = [
        f"algorithm  {algorithm['name']} {json.dumps(algorithm['params'])}",
        f"status     {result.status}: {result.reason}",
        f"final      f − f_ref = {final['suboptimality']:.6g}, "
        f"‖∇f‖² = {final['grad_norm_sq']:.6g}, ‖θ − θ*‖² = {final['dist_sq']:.6g}",
        f"bits       up {final['bits_up_total']:,}, down {final['bits_down_total']:,} "
        f"(all workers, {summary['iterations']} "
        + ("server updates)" if result.meta.get("engine") == "async" else "rounds)"),
    ]
    if result.meta.get("engine") == "async":
        stale = summary["staleness"]
        lines.append(
            f"async      {result.meta['workers']} workers, simulated time {summary['time']:.6g} s, "
            f"staleness mean {stale['mean']:.3g} max {stale['max']}"
            + (f" (tau_max {stale['tau_max']})" if stale["tau_max"] is not None else "")
        )
    if summary["target"] is not None:
        where = summary["target_iteration"]
        lines.append(
            f"target     {summary['target_metric']} <= {summary['target']:g}: "
            + (
                f"iteration {where}, bits up {summary['bits_up_to_target']:,}, "
                f"down {summary['bits_down_to_target']:,}"
                + (
                    f", simulated time {summary['target_time']:.6g} s"
                    if summary.get("target_time") is not None
                    else ""
                )
                if where is not None
                else "not reached"
            )
        )
    return "\n".join(lines)


def _format_inspection(description: dict) -> str:
    settings, objective = description["settings"], description["objective"]
    constants, optimum = description["constants"], description["optimum"]
    sizes = objective["samples_per_worker"]
    lines = [
        f"problem    {settings['problem']} "
        f"(lam={settings['lam']:g}, lam_nc={settings['lam_nc']:g})",
        f"data       {settings['source']}",
        f"split      {settings['split']} over {objective['workers']} workers, "
        f"{min(sizes)}..{max(sizes)} samples each, d = {objective['dim']}",
        f"class      {constants['class']}",
        f"L          {constants['L']:.10g}   (L_tilde {constants['L_tilde']:.10g}, "
        f"L_max {constants['L_max']:.10g})",
        f"mu         {constants['mu']:.10g}   (curvature lower bound "
        f"{constants['curvature_lower']:.10g})",
        f"eigen      {constants['eigen_method']} (safety factor {constants['safety_factor']:g})",
        f"f_low      {optimum['f_low']:.15g}   [{optimum['certificate']}]",
    ]
    if optimum["value"] is not None:
        lines.append(
            f"optimum    f(theta_hat) = {optimum['value']:.15g}, ‖∇f‖ = {optimum['grad_norm']:.3g} "
            f"≤ {optimum['tolerance']:.3g} after {optimum['iterations']} Newton steps"
        )
        if optimum["gap_bound"] is not None:
            lines.append(f"gap        f(theta_hat) − f* ≤ {optimum['gap_bound']:.3g}")
    check = optimum["cross_check"]
    if check is not None:
        verdict = "agrees" if check["agrees"] else "DISAGREES"
        lines.append(
            f"cvxpy      {check['solver']} {check['status']}: {verdict}, "
            f"f(theta_cvx) − f(theta_hat) = "
            f"{check['value_difference']:.3g} (tolerance {check['tolerance']:.1g}), "
            f"‖theta_cvx − theta_hat‖ = {check['distance']:.3g}, {check['seconds']:.2f} s"
        )
    elif optimum["value"] is not None:
        lines.append("cvxpy      cross-check not run (problem too large; pass --cross-check)")
    return "\n".join(lines)


def _add_problem_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that build a problem (``inspect`` and ``run``)."""
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
    parser.add_argument("--data-dir", help="folder of the real datasets (default: ../shared/data)")
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


def _add_async_arguments(parser: argparse.ArgumentParser) -> None:
    """Timing and staleness options of ``run`` (asynchronous algorithms only)."""
    from convcheck.engine.timing import COMPUTE_MODELS

    group = parser.add_argument_group(
        "asynchronous algorithms (async-sgd, async-sparse-sgd, dgs): --iters counts server updates"
    )
    group.add_argument(
        "--compute", choices=list(COMPUTE_MODELS), help="compute-time model (exponential)"
    )
    group.add_argument("--compute-mean", type=float, help="mean compute time in seconds (1)")
    group.add_argument(
        "--compute-spread", type=float, help="slowest/fastest mean ratio, geometric (1)"
    )
    group.add_argument("--compute-sigma", type=float, help="lognormal log-sd (0.5)")
    group.add_argument("--compute-shape", type=float, help="pareto tail index > 1 (2.5)")
    group.add_argument(
        "--compute-trace", help="recorded durations (.csv/.json), one column per worker"
    )
    group.add_argument("--latency-up", type=float, help="uplink latency in seconds (0)")
    group.add_argument("--latency-down", type=float, help="downlink latency in seconds (0)")
    group.add_argument("--bandwidth-up", type=float, help="uplink bits per second (inf)")
    group.add_argument("--bandwidth-down", type=float, help="downlink bits per second (inf)")
    group.add_argument("--tau-max", type=int, help="hard staleness bound (none)")
    group.add_argument(
        "--trace-every", type=int, help="evaluate the server model every K updates (1)"
    )
    group.add_argument(
        "--shared-data",
        action="store_true",
        help="--workers workers all sampling the whole dataset (no split)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``convcheck`` command."""
    from convcheck.algorithms import ALGORITHMS
    from convcheck.engine import TARGET_METRICS
    from convcheck.verify.cases import SUITES

    parser = argparse.ArgumentParser(
        prog="convcheck",
        description="Verify the convergence theory of communication-compressed optimization.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="objectives, compressors, datasets, splits")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.add_argument("--data-dir", help="folder of the real datasets (default: ../shared/data)")
    listing.set_defaults(handler=_list)

    inspect = commands.add_parser(
        "inspect", help="constants and certified optimum of one problem on one dataset"
    )
    _add_problem_arguments(inspect)
    inspect.add_argument("--out", help="also write the description as JSON to this file")
    inspect.set_defaults(handler=_inspect)

    run = commands.add_parser("run", help="one run of an algorithm; writes its trace")
    run.add_argument("--algorithm", required=True, choices=list(ALGORITHMS))
    _add_problem_arguments(run)
    run.add_argument("--iters", type=int, required=True, help="number of rounds T")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="algorithm or compressor parameter, e.g. alpha=1/L, xi=0.1, compressor=top-k, k=5",
    )
    run.add_argument("--target", type=float, help="target accuracy (records bits to reach it)")
    run.add_argument(
        "--target-metric", choices=TARGET_METRICS, help="(suboptimality; nonconvex: grad_norm_sq)"
    )
    run.add_argument(
        "--no-stop-at-target",
        dest="stop_at_target",
        action="store_false",
        help="keep running after the target is reached",
    )
    run.add_argument("--progress", action="store_true", help="show a progress bar")
    run.add_argument("--out", help="trace file: .json (everything), .csv or .parquet (columns)")
    _add_async_arguments(run)
    run.set_defaults(handler=_run)

    from convcheck.theory.models import MODELS

    certify = commands.add_parser(
        "certify", help="certified linear rate of an algorithm on S(mu, L) by an LMI"
    )
    certify.add_argument("--algorithm", required=True, choices=list(MODELS))
    certify.add_argument("--L", type=float, required=True, help="smoothness L of f")
    certify.add_argument("--mu", type=float, required=True, help="strong convexity mu of f")
    certify.add_argument("--workers", type=int, default=1, help="number of workers M (1)")
    certify.add_argument(
        "--L-workers", help="per-worker L_m, comma-separated, M values (default: L for each)"
    )
    certify.add_argument(
        "--mu-workers", help="per-worker mu_m, comma-separated, M values (default: mu for each)"
    )
    certify.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="algorithm parameter, e.g. alpha=1/L, xi=0.1, delta=0.1 (or k=5 d=50), tau=2",
    )
    certify.add_argument("--tol", type=float, default=1e-7, help="bisection tolerance on rho")
    certify.add_argument("--json", action="store_true", help="print the certificate as JSON")
    certify.add_argument("--out", help="also write the certificate as JSON to this file")
    certify.set_defaults(handler=_certify)

    comparison = commands.add_parser(
        "compare", help="iterations and bits to a target accuracy for several algorithms"
    )
    comparison.add_argument(
        "algorithms",
        nargs="+",
        metavar="NAME[:key=value,...]",
        help="algorithms with their parameters, e.g. gd gd-sec:xi=0.2 ef:k=3; the first is "
        "the baseline of the ratios",
    )
    _add_problem_arguments(comparison)
    comparison.add_argument("--iters", type=int, required=True, help="at most T rounds each")
    comparison.add_argument("--target", type=float, required=True, help="target accuracy")
    comparison.add_argument(
        "--target-metric", choices=TARGET_METRICS, help="(suboptimality; nonconvex: grad_norm_sq)"
    )
    comparison.add_argument("--out", help="also write the table as JSON to this file")
    comparison.set_defaults(handler=_compare)

    verification = commands.add_parser(
        "verify", help="run the verification suite and write its report (exit 0 iff verified)"
    )
    verification.add_argument(
        "cases", nargs="*", metavar="CASE",
        help="case files or folders (default: problems/, suite quick)",
    )
    verification.add_argument("--suite", choices=SUITES, help="keep the cases of this suite")
    verification.add_argument("--out", default="reports", help="report folder (reports)")
    verification.add_argument("--jobs", type=int, default=1, help="cases run in parallel (1)")
    verification.add_argument("--seed", type=int, default=0, help="added to every run seed (0)")
    verification.add_argument(
        "--data-dir", help="folder of the real datasets (default: ../shared/data)"
    )
    verification.add_argument("--progress", action="store_true", help="show a progress bar")
    verification.set_defaults(handler=_verify)

    benchmark = commands.add_parser(
        "bench", help="engine round vs bare gradients, and vectorized vs per-worker loop"
    )
    benchmark.add_argument(
        "--quick", action="store_true", help="small grid (seconds) instead of the full one"
    )
    benchmark.add_argument("--rounds", type=int, help="rounds T of each timed engine run")
    benchmark.add_argument("--repeats", type=int, help="best of this many repeats")
    benchmark.add_argument("--seed", type=int, default=0, help="seed of the data and split (0)")
    benchmark.add_argument(
        "--profile", action="store_true", help="also profile one round on the largest case"
    )
    benchmark.add_argument("--out", help="write rows, versions and machine as JSON")
    benchmark.set_defaults(handler=_bench)

    torch_train = commands.add_parser(
        "torch-train",
        help="train a network with the torch backend on simulated workers (CONFIG.toml …)",
        description="Same as python -m convcheck.torch.train; see its --help.",
    )
    torch_train.add_argument("args", nargs=argparse.REMAINDER, help="CONFIG.toml [options]")
    torch_train.set_defaults(handler=_torch_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``convcheck`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ConvcheckError as error:
        print(f"convcheck: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Multi-process training with torch.distributed: ``torchrun … -m convcheck.torch.launch CONFIG``.

``torchrun --nproc-per-node N -m convcheck.torch.launch CONFIG.toml [--out DIR] [--epochs E]
[--data-dir DIR] [--only LABEL …] [--checkpoint-dir DIR [--resume]] [--backend B]
[--timeout S] [--quiet]`` runs every ``[[algorithm]]`` of a :mod:`convcheck.torch.train`
config on ``N`` processes, one after the other, and rank 0 writes ``DIR/results.json`` and
``DIR/accuracy.png`` (same schema as the single-process runs, plus the distributed details).
Multi-node: torchrun's rendezvous (``--nnodes``, ``--rdzv-backend c10d``,
``--rdzv-endpoint HOST:PORT``; see ``gpu_runs/slurm/launch.sbatch``).

The config is the single-process one with these additions (unknown keys are refused)::

    [distributed]              # optional
    backend = "auto"           # auto (NCCL with CUDA, else gloo) | gloo | nccl
    timeout_s = 300            # every collective / point-to-point operation; a rank that
                               # dies or hangs makes the others fail within it
    bucket_cap_mb = 25.0       # DDP bucket size (mode "ddp")

    [[algorithm]]
    name = "ef"
    alpha = 0.1
    ratio = 0.01
    [algorithm.distributed]    # optional
    mode = "allgather"         # see MODES; default per algorithm (default_mode)
    overlap = "alternate"      # lags: on | off | alternate (both, on alternate steps)
    calibration_repeats = 5    # lags with a measured cost model
    worker_delays = [0.0, 0.01]  # async-ps: extra seconds per local step, one per worker

    [algorithm.adaptive]       # lags: floor_ratio alone = counts from a MEASURED model
    floor_ratio = 0.001        # (alpha_c, beta_c and backward times given = that model)

Modes (:data:`MODES`; each accepts the registered algorithms it can run, plug-ins included):
``ps`` every synchronous algorithm, ``allgather`` every synchronous algorithm (the server half
is replicated on every rank), ``async-ps`` every asynchronous algorithm, ``ddp`` ``gd`` (plain
DDP) and the algorithms with a DDP hook (``ef``, ``gd-sec``), ``lags`` LAGS. Default: ``lags``
for LAGS, ``allgather`` for ``ef``, else ``ps`` or ``async-ps``.

``run.workers`` is not used: the world size fixes ``M`` — ``N − 1`` workers for the parameter
server modes (``ps``, ``async-ps``; rank 0 is the server), ``N`` for the others. Worker ``m``'s
data shard and minibatch stream are those of worker ``m`` of a single-process run with
``run.workers = M`` (same seed, same split), so the two can be compared directly.
``run.vectorize`` is ignored (each process computes one worker's gradient), ``run.device`` is
used with gloo only (NCCL puts rank ``r`` on ``cuda:LOCAL_RANK``). In the modes that train an
``nn.Module`` (``ddp``, ``lags``) ``run.weight_decay`` is the loss term ``(λ/2)‖θ‖²``, whose
gradient is the simulation's ``λθ``.

Checkpoints (``--checkpoint-dir``): one file per rank and algorithm after every epoch, holding
that rank's whole share of the state — the server's model and memories, each worker's error
memories, momentum and model copies, DDP hook memories, the minibatch generator, the ledger,
the counters — so ``--resume`` continues every mode exactly where it stopped (the synchronous
modes then follow the uninterrupted trajectory bit for bit on CPU; the asynchronous one
resumes from a consistent cut, its later arrival order being nondeterministic anyway). The
per-layer counts of an adaptive LAGS run are checkpointed and restored (the cost model is
measured again at start, but the counts of the checkpoint win). Not checkpointed: timings,
timelines and staleness records (they describe the session that measured them), and DDP's
bucket layout (rebuilt by DDP).

Exit status: 0 on success, 2 on bad input, 3 when communication failed (the message names the
rank, the operation and the step; the process exits at once, without a clean shutdown of the
broken group).
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from convcheck.algorithms import ALGORITHMS, make_algorithm
from convcheck.algorithms.base import Algorithm
from convcheck.algorithms.ef import ErrorFeedback
from convcheck.algorithms.gd import GD
from convcheck.algorithms.lags import LAGS
from convcheck.data import split_dataset
from convcheck.errors import ConvcheckError, InputError, check_choice, check_int, check_real
from convcheck.jsonio import write_json
from convcheck.torch.distributed.allgather import AllGather
from convcheck.torch.distributed.asynchronous import AsyncParameterServer
from convcheck.torch.distributed.base import DistributedRun, run_epochs
from convcheck.torch.distributed.group import (
    BACKENDS,
    DistributedFailure,
    Group,
    start_group,
    stop_group,
)
from convcheck.torch.distributed.hooks import HOOKS, DDPRun
from convcheck.torch.distributed.lags import OVERLAP, OverlappedLAGS
from convcheck.torch.distributed.ps import ParameterServer
from convcheck.torch.distributed.wire import Channel
from convcheck.torch.layout import Layout
from convcheck.torch.simulation import Simulation, WorkerShards, evaluate
from convcheck.torch.train import (
    LAYERED,
    adaptive_counts,
    apply_options,
    build_model,
    check_checkpoint_folder,
    check_model_memory,
    check_results_folder,
    checkpoint_name,
    default_out,
    device_description,
    environment,
    load_data,
    parse_config,
    plot_results,
    print_results,
    read_toml,
    select_algorithms,
)

#: Each mode, and which algorithm classes it runs.
MODES: dict[str, Callable[[type[Algorithm]], bool]] = {
    "ps": lambda cls: "sync" in cls.transports,
    "async-ps": lambda cls: "async" in cls.transports,
    "allgather": lambda cls: "sync" in cls.transports,
    "ddp": lambda cls: cls is GD or cls in HOOKS,
    "lags": lambda cls: cls is LAGS,
}
RUNS: dict[str, type[DistributedRun]] = {
    "ps": ParameterServer, "async-ps": AsyncParameterServer, "allgather": AllGather,
    "ddp": DDPRun, "lags": OverlappedLAGS,
}


def mode_algorithms(mode: str) -> list[str]:
    """The registered algorithms (plug-ins included) that mode ``mode`` runs."""
    return [name for name, cls in ALGORITHMS.items() if MODES[mode](cls)]


def algorithm_modes(name: str) -> list[str]:
    """The modes that run the registered algorithm ``name``."""
    return [mode for mode, accepts in MODES.items() if accepts(ALGORITHMS[name])]


def default_mode(name: str) -> str:
    """The mode of algorithm ``name`` when the config does not say: ``lags`` for LAGS,
    ``allgather`` for error feedback, else ``ps`` (synchronous) or ``async-ps``."""
    cls = ALGORITHMS[name]
    if cls is LAGS:
        return "lags"
    if cls is ErrorFeedback:
        return "allgather"
    return "ps" if "sync" in cls.transports else "async-ps"
#: Modes with a server on rank 0.
SERVER_MODES = ("ps", "async-ps")
DISTRIBUTED_KEYS = {"backend": "auto", "timeout_s": 300.0, "bucket_cap_mb": 25.0}
ALGORITHM_KEYS = {
    "mode": None, "overlap": "on", "calibration_repeats": 5, "worker_delays": None,
}
EXIT_FAILURE = 3


def read_launch_config(path: str | Path) -> dict[str, Any]:
    """A :func:`convcheck.torch.train.read_config` config plus the ``[distributed]`` table and
    each algorithm's ``distributed`` table (defaults filled in, modes checked)."""
    raw = read_toml(path)
    context = str(path)
    table = raw.pop("distributed", {})
    distributed = _filled(table, DISTRIBUTED_KEYS, "distributed", context)
    check_choice("distributed.backend", distributed["backend"], BACKENDS, context)
    extras = []
    for entry in raw.get("algorithm", []) if isinstance(raw.get("algorithm"), list) else []:
        extras.append(_filled(entry.pop("distributed", {}), ALGORITHM_KEYS,
                              "algorithm.distributed", context))
    config = parse_config(raw, context)
    config["distributed"] = distributed
    for entry, extra in zip(config["algorithms"], extras, strict=True):
        name = check_choice("algorithm.name", entry["params"]["name"], ALGORITHMS, context)
        if extra["mode"] is None:
            extra["mode"] = default_mode(name)
        mode = check_choice("algorithm.distributed.mode", extra["mode"], MODES, context)
        if name not in mode_algorithms(mode):
            raise InputError(
                "algorithm.distributed.mode", mode,
                f"a mode that runs {name}: " + ", ".join(algorithm_modes(name))
                + f" (mode {mode!r} runs " + ", ".join(mode_algorithms(mode)) + ")",
                context,
            )
        check_choice("algorithm.distributed.overlap", extra["overlap"], OVERLAP, context)
        entry["distributed"] = extra
    return config


def _filled(table: Any, defaults: dict[str, Any], name: str, context: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise InputError(name, table, "a table", context)
    for key in table:
        check_choice(f"{name}.{key}", key, defaults, context)
    return {key: table.get(key, default) for key, default in defaults.items()}


def _measured(adaptive: dict[str, Any] | None) -> bool:
    """Adaptive LAGS with no cost model given: measure it."""
    if adaptive is None:
        return False
    given = [k for k in ("alpha_c", "beta_c", "backward_time_per_param", "backward_times")
             if adaptive[k] is not None]
    return not given


def algorithm_of(entry: dict[str, Any], layout: Layout) -> tuple[Any, bool]:
    """The algorithm of one ``[[algorithm]]`` entry for a model's layout, and whether its
    (LAGS) counts are to be measured (it then starts at the floor density)."""
    params = dict(entry["params"])
    name = params.pop("name")
    if name in LAYERED:
        params["layers"] = layout.sizes
    adaptive = entry["adaptive"]
    measured = _measured(adaptive)
    if measured:
        params["ratio"] = check_real("algorithm.adaptive.floor_ratio", adaptive["floor_ratio"],
                                     0.0, 1.0, low_open=True)
    elif adaptive is not None:
        params["k"] = adaptive_counts(layout, adaptive)
    return make_algorithm(name, **params), measured


def build_run(
    entry: dict[str, Any],
    config: dict[str, Any],
    channel: Channel,
    template: torch.nn.Module,
    oracle: Simulation,
    theta0: torch.Tensor,
) -> DistributedRun:
    """The distributed run of one ``[[algorithm]]`` entry on this rank."""
    extra = entry["distributed"]
    algorithm, measured = algorithm_of(entry, Layout.of(template))
    adaptive = entry["adaptive"]
    mode = extra["mode"]
    weight_decay = config["run"]["weight_decay"]
    kwargs: dict[str, Any] = {"seed": check_int("run.seed", config["run"]["seed"], 0)}
    if mode == "ddp":
        kwargs.update(template=template, weight_decay=weight_decay,
                      bucket_cap_mb=config["distributed"]["bucket_cap_mb"])
    elif mode == "lags":
        kwargs.update(template=template, weight_decay=weight_decay, overlap=extra["overlap"])
    elif mode == "async-ps":
        kwargs.update(worker_delays=extra["worker_delays"])
    run = RUNS[mode](entry["label"], algorithm, channel, oracle, theta0, **kwargs)
    if measured:
        run.calibrate(adaptive["floor_ratio"],
                      check_int("algorithm.distributed.calibration_repeats",
                                extra["calibration_repeats"], 1))
    return run


def replica_spread(run: DistributedRun, channel: Channel) -> float:
    """``max_r ‖θ_r − θ_0‖_∞`` over the ranks holding a model copy (0 when they agree)."""
    theta = run.model().clone()
    reference = channel.broadcast(theta.clone())
    return channel.all_reduce_max([float((theta - reference).abs().max())])[0]


def run_config(
    config: dict[str, Any],
    out: str | Path,
    group: Group,
    *,
    command: str,
    only: Sequence[str] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any] | None:
    """Run the config's algorithms on the process group; rank 0 writes and returns the
    results (other ranks return ``None``)."""
    run_cfg = config["run"]
    if run_cfg["threads"]:
        torch.set_num_threads(check_int("run.threads", run_cfg["threads"], 0))
    seed = check_int("run.seed", run_cfg["seed"], 0)
    batch_size = check_int("run.batch_size", run_cfg["batch_size"], 1)
    channel = Channel(group)
    dataset, train, test = load_data(config, group.device)
    check_model_memory(config, train, workers=1, batch_size=batch_size, device=group.device)
    template = build_model(config, train, group.device)
    layout = Layout.of(template)
    theta0 = layout.flatten_module(template)
    selected = select_algorithms(config, only)
    out = Path(out)
    workers_used = sorted({group.world_size - (a["distributed"]["mode"] in SERVER_MODES)
                           for a in selected})
    results: dict[str, Any] = {
        "command": command,
        "config": config,
        "environment": {
            **environment(group.device), "distributed": group.describe(),
            "device": f"{device_description(group.device)}; {group.world_size} "
                      f"{group.backend} processes",
        },
        "data": {
            "source": dataset.source, "n_train": train.n_samples, "n_test": test.X.shape[0],
            "classes": train.classes,
            "workers": workers_used[0] if len(workers_used) == 1 else
            " or ".join(map(str, workers_used)),
            "split": run_cfg["split"],
        },
        "model": {"name": config["model"]["name"], "D": layout.dim,
                  "layers": dict(zip(layout.names, layout.sizes, strict=True))},
        "epochs": run_cfg["epochs"],
        "runs": [],
    }
    for entry in selected:
        mode = entry["distributed"]["mode"]
        workers = group.world_size - 1 if mode in SERVER_MODES else group.world_size
        if workers < 1:
            raise InputError("world_size", group.world_size, f"at least 2 for mode {mode!r}")
        split = split_dataset(dataset, workers, run_cfg["split"],
                              dirichlet_alpha=run_cfg["dirichlet_alpha"], seed=seed)
        oracle = Simulation(template, WorkerShards(train, split), batch_size, seed=seed,
                            weight_decay=run_cfg["weight_decay"], vectorize=False)
        run_channel = Channel(group)  # per run: its byte counts are the run's own
        run_channel.context = f"{entry['label']}, setup"
        run_channel.barrier(f"start of {entry['label']}")
        run = build_run(entry, config, run_channel, template, oracle, theta0.clone())
        steps_per_epoch = math.ceil(train.n_samples / (workers * batch_size))
        checkpoint = None
        if checkpoint_dir is not None:  # the folder names do not depend on --only
            checkpoint = Path(checkpoint_dir) / checkpoint_name(config, entry)
        started = time.perf_counter()
        history = run_epochs(
            run, run_cfg["epochs"], steps_per_epoch, lambda theta: evaluate(template, theta, test),
            checkpoint=checkpoint, resume=resume, progress=progress,
        )
        seconds = time.perf_counter() - started
        spread = None if mode == "async-ps" else replica_spread(run, run_channel)
        report = run.report()
        if group.rank == 0:
            results["runs"].append({
                "label": entry["label"],
                "mode": mode,
                "workers": workers,
                "steps_per_epoch": steps_per_epoch,
                "algorithm": run.algorithm.describe(),
                "status": "completed" if run.status == "running" else run.status,
                "history": history,
                "totals": run.ledger.totals(),
                "replica_max_abs_difference": spread,
                "wall_s_this_session": seconds,
                "report": report,
            })
    channel.context = "end"
    channel.barrier("end of the run")
    if group.rank != 0:
        return None
    write_json(out / "results.json", results)
    plot_results(results, out / "accuracy.png")
    return results


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torchrun --nproc-per-node N -m convcheck.torch.launch",
        description="Train with compressed distributed algorithms on torch.distributed "
        "processes (rank 0 is the server of the parameter-server modes).",
    )
    parser.add_argument("config", help="TOML config (see gpu_runs/configs/)")
    parser.add_argument("--out", help="output folder (default gpu_runs/results/<config name>)")
    parser.add_argument("--epochs", type=int, help="override run.epochs")
    parser.add_argument("--data-dir", help="override data.data_dir")
    parser.add_argument("--only", nargs="+", metavar="LABEL", help="run only these algorithms")
    parser.add_argument("--checkpoint-dir", help="one checkpoint per rank and algorithm")
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint-dir")
    parser.add_argument("--backend", choices=BACKENDS, help="override distributed.backend")
    parser.add_argument("--timeout", type=float, help="override distributed.timeout_s")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    return parser


def check_launch_outputs(config: dict[str, Any], out: str | Path, args: argparse.Namespace,
                         rank: int | None) -> None:
    """Before the group starts: the output folder (on rank 0, which alone writes it) and the
    checkpoint folder (on every rank, each reads its own files) must be usable; a resumed run
    must find checkpoints of this config there."""
    rank = int(os.environ.get("RANK", "0")) if rank is None else rank
    if rank == 0:
        check_results_folder(out)
    names = [checkpoint_name(config, entry) for entry in select_algorithms(config, args.only)]
    check_checkpoint_folder(args.checkpoint_dir, args.resume, names)


def main(argv: Sequence[str] | None = None, **group_args: Any) -> int:
    """Entry point of ``python -m convcheck.torch.launch`` (one process of the group).

    ``group_args`` (``rank``, ``world_size``, ``init_method``) replace torchrun's environment
    (tests start the processes themselves).
    """
    args = build_parser().parse_args(argv)
    group = None
    try:
        config = apply_options(read_launch_config(args.config), args)
        if args.backend is not None:
            config["distributed"]["backend"] = args.backend
        if args.timeout is not None:
            config["distributed"]["timeout_s"] = args.timeout
        out = args.out or default_out(args.config, "-dist")
        check_launch_outputs(config, out, args, group_args.get("rank"))
        given = sys.argv[1:] if argv is None else list(argv)
        command = "torchrun --nproc-per-node N -m convcheck.torch.launch " + shlex.join(given)
        distributed = config["distributed"]
        group = start_group(
            distributed["backend"], timeout_s=distributed["timeout_s"],
            device=config["run"]["device"], **group_args,
        )
        command = command.replace("N", str(group.world_size), 1)
        results = run_config(
            config, out, group, command=command, only=args.only,
            checkpoint_dir=args.checkpoint_dir, resume=args.resume, progress=not args.quiet,
        )
    except DistributedFailure as error:
        print(f"convcheck: error: {error}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(EXIT_FAILURE)  # a broken group cannot be shut down cleanly
    except ConvcheckError as error:
        print(f"convcheck: error: {error}", file=sys.stderr)
        stop_group()
        return 2
    stop_group()
    if results is not None:
        print_results(results, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Start ``N`` ranks of the launcher as separate processes (gloo on CPU), with optional faults.

Each rank runs :func:`convcheck.torch.launch.main` in its own spawned process with a file
rendezvous; its stdout and stderr (Python's and the C++ library's) go to files, so a test can
read every rank's messages. A *fault* makes one rank die (``os._exit``) or hang (sleep) at its
``n``-th minibatch, which is how the failure tests simulate a crashed or stuck process.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch.multiprocessing as mp


@dataclass
class RankResult:
    rank: int
    exitcode: int | None  # None: still running at the deadline (killed)
    stdout: str
    stderr: str
    seconds: float  # from the start of all ranks to this rank's exit


def _install_fault(fault: tuple[int, int, str], rank: int) -> None:
    """Rank ``fault[0]`` dies (``"exit"``) or hangs (``"hang"``) at its ``fault[1]``-th batch."""
    from convcheck.torch.simulation import Simulation

    target, call, kind = fault
    if rank != target:
        return
    original = Simulation.worker_batch
    calls = [0]

    def faulty(self, worker):
        calls[0] += 1
        if calls[0] == call:
            if kind == "exit":
                os._exit(17)
            time.sleep(3600)
        return original(self, worker)

    Simulation.worker_batch = faulty


def _rank_main(rank: int, world: int, argv: list[str], folder: str, fault) -> None:
    out = os.open(os.path.join(folder, f"rank-{rank}.out"), os.O_WRONLY | os.O_CREAT)
    err = os.open(os.path.join(folder, f"rank-{rank}.err"), os.O_WRONLY | os.O_CREAT)
    os.dup2(out, 1)
    os.dup2(err, 2)
    import torch

    torch.set_num_threads(1)
    if fault is not None:
        _install_fault(fault, rank)
    from convcheck.torch.launch import main

    code = main(argv, rank=rank, world_size=world,
                init_method=f"file://{os.path.join(folder, 'rendezvous')}")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_ranks(
    world: int, argv: list[str], folder: Path, *, fault=None, deadline: float = 240.0
) -> list[RankResult]:
    """Run the launcher on ``world`` processes; every rank's exit code and output.

    Waits until every rank has exited (a rank made to hang is not waited for) or until
    ``deadline`` seconds; ranks still running then are killed (exit code ``None``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rendezvous").unlink(missing_ok=True)  # a stale file store breaks the next run
    context = mp.get_context("spawn")
    processes = [
        context.Process(target=_rank_main, args=(rank, world, argv, str(folder), fault))
        for rank in range(world)
    ]
    started = time.monotonic()
    for process in processes:
        process.start()
    ended = [None] * world
    hanging = fault[0] if fault is not None and fault[2] == "hang" else None
    waited = [p for rank, p in enumerate(processes) if rank != hanging]
    while time.monotonic() - started < deadline and any(p.is_alive() for p in waited):
        for rank, process in enumerate(processes):
            if ended[rank] is None and not process.is_alive():
                ended[rank] = time.monotonic() - started
        time.sleep(0.05)
    results = []
    for rank, process in enumerate(processes):
        alive = process.is_alive()
        if alive:
            process.kill()
        process.join()
        if ended[rank] is None:
            ended[rank] = time.monotonic() - started
        results.append(RankResult(
            rank, None if alive else process.exitcode,
            (folder / f"rank-{rank}.out").read_text(errors="replace"),
            (folder / f"rank-{rank}.err").read_text(errors="replace"),
            ended[rank],
        ))
    return results


def check_success(results: list[RankResult]) -> None:
    """Every rank exited with status 0 (else the failing ranks' stderr)."""
    failed = [r for r in results if r.exitcode != 0]
    assert not failed, "\n".join(
        f"rank {r.rank} exit {r.exitcode}:\n{r.stderr[-3000:]}" for r in failed
    )


def simulate(config_path: Path, label: str, workers: int, steps: int, counts=None):
    """The single-process reference: the config's algorithm ``label`` run for ``steps`` rounds
    by :class:`convcheck.torch.runner.Runner` on ``M = workers`` simulated workers (the
    per-worker loop of :class:`~convcheck.torch.simulation.Simulation`), same seed and data.
    ``counts``: LAGS's per-layer ``k`` (those a distributed run measured)."""
    import torch
    from convcheck.torch.algorithms import LAYERED, make_algorithm

    from convcheck.data import split_dataset
    from convcheck.torch.launch import read_launch_config
    from convcheck.torch.layout import Layout
    from convcheck.torch.runner import Runner
    from convcheck.torch.simulation import Simulation, WorkerShards
    from convcheck.torch.train import build_model, load_data

    config = read_launch_config(config_path)
    run = config["run"]
    entry = next(a for a in config["algorithms"] if a["label"] == label)
    dataset, train, _ = load_data(config, torch.device("cpu"))
    model = build_model(config, train, torch.device("cpu"))
    layout = Layout.of(model)
    split = split_dataset(dataset, workers, run["split"], alpha=run["dirichlet_alpha"],
                          seed=run["seed"])
    oracle = Simulation(model, WorkerShards(train, split), run["batch_size"], seed=run["seed"],
                        weight_decay=run["weight_decay"], vectorize=False)
    params = dict(entry["params"])
    name = params.pop("name")
    if name in LAYERED:
        params["layer_sizes"] = layout.sizes
    if counts is not None:
        params.pop("ratio", None)
        params["k"] = list(counts)
    runner = Runner(make_algorithm(name, **params), oracle, layout.flatten_module(model),
                    seed=run["seed"])
    runner.run(steps)
    return runner

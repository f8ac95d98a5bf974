"""Timings of the torch backend on one device (CPU here; the GPU figures are owed).

``python -m convcheck.torch.bench [--device cpu|cuda] [--out FILE.json] [--repeats N]
[--threads N] [--quick]`` measures, on synthetic MNIST-shaped data (no files needed):

* ``oracle``: one call of the ``M``-worker gradient oracle with ``torch.func.vmap`` against the
  Python loop over workers (MLP 784-200-200-10 and LeNet, ``M = 8``, ``B = 32``), and the ratio;
* ``topk``: the tie-breaking top-k kernel (:func:`convcheck.torch.compressors.top_k`) and plain
  ``torch.topk`` on ``(M, d)`` float32 rows at density 1%, as bytes of input read per second,
  against the device's copy bandwidth (``x.clone()``: read + write) — the fraction of the
  memory-bandwidth bound that the kernel reaches;
* ``step``: the time of one training step (oracle + algorithm + bit ledger) of dense SGD and of
  each compressed algorithm on the MLP with 8 simulated workers, and the ratio to dense.

Each figure is the median of ``repeats`` timed calls after warm-up calls (CUDA synchronized).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from convcheck.algorithms import make_algorithm
from convcheck.atomic import write_atomic
from convcheck.data import Split
from convcheck.torch.compressors import top_k
from convcheck.torch.datasets import TensorData
from convcheck.torch.layout import Layout
from convcheck.torch.models import make_model
from convcheck.torch.runner import Runner
from convcheck.torch.simulation import Simulation, WorkerShards
from convcheck.torch.train import environment

#: Algorithms timed per step, with their parameters for a ~200k-parameter MLP.
STEP_ALGORITHMS = {
    "dense SGD": ("gd", {"alpha": 0.1}),
    "top-k EF 1%": ("ef", {"alpha": 0.1, "ratio": 0.01}),
    "bidirectional top-k 1%": ("bidir-topk", {"alpha": 0.1, "ratio_up": 0.01, "ratio_down": 0.01}),
    "GD-SEC xi=0.1": ("gd-sec", {"alpha": 0.1, "xi": 0.1}),
    "EF21 top-k 1%": ("ef21", {"alpha": 0.1, "ratio": 0.01}),
    "LAGS 1%": ("lags", {"alpha": 0.1, "ratio": 0.01}),
    "DGS 1%": ("dgs", {"alpha": 0.1, "rho_up": 0.01, "rho_down": 0.01}),
}


def timed(
    functions: dict[str, Callable[[], Any]], device: torch.device, repeats: int, warmup: int = 3
) -> dict[str, float]:
    """Median seconds per call of each function; calls are interleaved (one of each per round)
    so that a change in the machine's load affects all of them alike."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for function in functions.values():
        for _ in range(warmup):
            function()
    sync()
    samples: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            started = time.perf_counter()
            function()
            sync()
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in samples.items()}


def synthetic_workers(workers: int, rows: int, device: torch.device) -> tuple[TensorData, Split]:
    """MNIST-shaped random data (784 features in [0, 1], 10 classes), iid shards."""
    generator = torch.Generator().manual_seed(0)
    X = torch.rand((rows, 784), generator=generator).to(device)
    y = torch.randint(0, 10, (rows,), generator=generator).to(device)
    shards = tuple(np.array_split(np.arange(rows), workers))
    return TensorData(X, y, 10, (1, 28, 28)), Split(shards, "iid")


def bench_oracle(device: torch.device, repeats: int) -> list[dict[str, Any]]:
    data, split = synthetic_workers(8, 8 * 256, device)
    out = []
    for name, params in (("mlp", {"hidden": [200, 200]}), ("lenet", {})):
        model = make_model(name, input_dim=784, classes=10, image_shape=(1, 28, 28),
                           **params).to(device)
        theta = Layout.of(model).flatten_module(model)
        oracles = {
            mode: Simulation(model, WorkerShards(data, split), 32, vectorize=mode == "vmap")
            for mode in ("vmap", "loop")
        }
        seconds = timed(
            {mode: (lambda o=oracle, t=theta: o(t)) for mode, oracle in oracles.items()},
            device, repeats,
        )
        out.append({
            "model": name, "D": theta.numel(), "workers": 8, "batch_size": 32,
            "vmap_s": seconds["vmap"], "loop_s": seconds["loop"],
            "loop_over_vmap": seconds["loop"] / seconds["vmap"],
        })
    return out


def bench_topk(device: torch.device, repeats: int, sizes: Sequence[int]) -> list[dict[str, Any]]:
    out = []
    for d in sizes:
        x = torch.randn((8, d), generator=torch.Generator().manual_seed(1)).to(device)
        k = max(1, d // 100)
        nbytes = x.numel() * x.element_size()
        seconds = timed(
            {
                "copy": x.clone,
                "ours": lambda x=x, k=k: top_k(x, k),
                "plain": lambda x=x, k=k: torch.topk(x.abs(), k, dim=1, sorted=False),
            },
            device, repeats,
        )
        copy, ours, plain = seconds["copy"], seconds["ours"], seconds["plain"]
        bandwidth = 2 * nbytes / copy
        out.append({
            "rows": 8, "d": d, "k": k, "dtype": "float32", "input_bytes": nbytes,
            "copy_bandwidth_GBps": bandwidth / 1e9,
            "top_k_s": ours, "top_k_GBps": nbytes / ours / 1e9,
            "top_k_fraction_of_copy_bandwidth": nbytes / ours / bandwidth,
            "torch_topk_s": plain, "torch_topk_GBps": nbytes / plain / 1e9,
        })
    return out


def bench_steps(device: torch.device, repeats: int) -> list[dict[str, Any]]:
    data, split = synthetic_workers(8, 8 * 256, device)
    model = make_model("mlp", input_dim=784, classes=10, hidden=[200, 200]).to(device)
    layout = Layout.of(model)
    theta0 = layout.flatten_module(model)
    runners = {}
    for label, (name, params) in STEP_ALGORITHMS.items():
        params = dict(params)
        if name in ("lags", "dgs"):
            params["layers"] = layout.sizes
        oracle = Simulation(model, WorkerShards(data, split), 32)
        runners[label] = Runner(make_algorithm(name, **params), oracle, theta0)
    seconds = timed({label: (lambda r=r: r.step()) for label, r in runners.items()}, device,
                    repeats)
    dense = seconds["dense SGD"]
    return [
        {"label": label, "algorithm": runner.algorithm.name, "D": layout.dim,
         "step_s": seconds[label], "over_dense": seconds[label] / dense}
        for label, runner in runners.items()
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convcheck.torch.bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", help="write the figures as JSON")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads when > 0")
    parser.add_argument("--quick", action="store_true", help="smaller top-k sizes")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sizes = (10**5, 10**6) if args.quick or device.type == "cpu" else (10**5, 10**6, 10**7)
    given = sys.argv[1:] if argv is None else list(argv)
    results = {
        "command": "python -m convcheck.torch.bench " + " ".join(given),
        "environment": environment(device),
        "oracle": bench_oracle(device, args.repeats),
        "topk": bench_topk(device, args.repeats, sizes),
        "step": bench_steps(device, args.repeats),
    }
    text = json.dumps(results, indent=1) + "\n"
    if args.out:
        write_atomic(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

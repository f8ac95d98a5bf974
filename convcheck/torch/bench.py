"""Timings of the torch backend on one device.

``python -m convcheck.torch.bench [--device cpu|cuda] [--out FILE.json] [--repeats N]
[--threads N] [--quick] [--models mlp,resnet18] [--skip oracle,topk,step]`` measures, on
synthetic data (no files needed), and writes to ``gpu_runs/results/bench/<device>.json`` (or
``--out``) with the device string and the command:

* ``oracle``: one call of the ``M``-worker gradient oracle with ``torch.func.vmap`` against the
  Python loop over workers (MLP 784-200-200-10 and LeNet, ``M = 8``, ``B = 32``), and the ratio;
* ``topk``: exact top-k (ties to the lowest index) on ``(rows, d)`` float32 at ``k = 1%`` —
  ours (:func:`convcheck.torch.compressors.top_k`, the device's default selection strategy),
  each strategy of :mod:`convcheck.torch.select` by name, the previous kernel (``torch.topk``
  plus a host-synchronizing tie check, :func:`previous_top_k`) and plain ``torch.topk``, and
  ours and the previous kernel again on the values rounded to 0.01 (``*_tied``: ties at the
  ``k``-th value, where the previous kernel takes its slower path) — as seconds and as the
  fraction of the device's copy bandwidth reached: a kernel that reads its
  ``n`` input bytes in ``t`` s reaches ``(n/t) / (2n/t_copy)`` of the bandwidth of ``x.clone()``
  (``t_copy``: read + write). Sizes: 8 rows of ``d = 10⁵, 10⁶, 10⁷``, 64 rows of ``10⁶``, and
  on CUDA one row of ``10⁸``;
* ``step``: the time of one training step (oracle + algorithm + bit ledger) of dense SGD and of
  each compressed algorithm with 8 simulated workers, on the MLP (MNIST-shaped input) and on
  ResNet-18 (11.2M parameters, synthetic CIFAR-shaped 3×32×32 input: CIFAR-10 itself is not
  available offline), the ratio to dense, and the share of the step that the uplink
  compression of ``(M, D)`` rows takes (timed alone); for ResNet-18 also its per-layer
  backward profile and the LAGS counts it selects for a modelled link.

Each figure is the median of ``repeats`` timed calls after warm-up calls (CUDA synchronized),
the calls of one table interleaved.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from convcheck.algorithms import make_algorithm
from convcheck.algorithms.lags import select_layer_counts
from convcheck.atomic import write_atomic
from convcheck.data import Split
from convcheck.torch.compressors import layer_top_k, threshold, top_k
from convcheck.torch.datasets import TensorData
from convcheck.torch.layout import Layout
from convcheck.torch.models import make_model
from convcheck.torch.profile import backward_profile
from convcheck.torch.runner import Runner
from convcheck.torch.select import STRATEGIES, magnitude_keys, top_k_words
from convcheck.torch.simulation import Simulation, WorkerShards
from convcheck.torch.train import environment

#: Algorithms timed per step (density 1%); LAGS and DGS get the model's layers.
STEP_ALGORITHMS = {
    "dense SGD": ("gd", {"alpha": 0.1}),
    "top-k EF 1%": ("ef", {"alpha": 0.1, "ratio": 0.01}),
    "bidirectional top-k 1%": ("bidir-topk", {"alpha": 0.1, "ratio_up": 0.01, "ratio_down": 0.01}),
    "GD-SEC xi=0.1": ("gd-sec", {"alpha": 0.1, "xi": 0.1}),
    "EF21 top-k 1%": ("ef21", {"alpha": 0.1, "ratio": 0.01}),
    "LAGS 1%": ("lags", {"alpha": 0.1, "ratio": 0.01}),
    "DGS 1%": ("dgs", {"alpha": 0.1, "rho_up": 0.01, "rho_down": 0.01}),
}

#: Models of the step table: input shape (C, H, W) and extra parameters.
STEP_MODELS = {
    "mlp": ((1, 28, 28), {"hidden": [200, 200]}),
    "resnet18": ((3, 32, 32), {}),
}

#: Modelled link for the LAGS counts of the profiled model: 20 µs latency, 10 Gbit/s.
LINK = {"alpha_c": 2e-5, "beta_c": 1e-10}


def previous_top_k(x: torch.Tensor, k: int) -> torch.Tensor:
    """The top-k kernel before the radix select, the bench's baseline: ``torch.topk``, then
    one host synchronization (``bool``) to choose between its indices and a tie-breaking
    cumulative count."""
    magnitude = x.abs()
    values, indices = torch.topk(magnitude, k, dim=1, sorted=False)
    t = values.amin(dim=1, keepdim=True)
    at_least = magnitude >= t
    if bool((at_least.sum(dim=1) == k).all()):
        mask = torch.zeros_like(at_least).scatter_(1, indices, True)
    else:
        keep = magnitude > t
        tied = at_least & ~keep
        mask = keep | (tied & (torch.cumsum(tied, dim=1) <= k - keep.sum(dim=1, keepdim=True)))
    return torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))


def top_k_by(strategy: str, x: torch.Tensor, k: int) -> torch.Tensor:
    """:func:`top_k` with a given selection strategy."""
    keys = magnitude_keys(x)
    words = top_k_words(keys, (x.shape[1],), (k,), strategy)
    return (x.view(keys.dtype) & words).view(x.dtype)


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


def synthetic_workers(
    workers: int, rows: int, device: torch.device, image_shape: Sequence[int] = (1, 28, 28)
) -> tuple[TensorData, Split]:
    """Random images (features in [0, 1], 10 classes) of ``image_shape``, iid shards."""
    generator = torch.Generator().manual_seed(0)
    features = int(np.prod(image_shape))
    X = torch.rand((rows, features), generator=generator).to(device)
    y = torch.randint(0, 10, (rows,), generator=generator).to(device)
    shards = tuple(np.array_split(np.arange(rows), workers))
    return TensorData(X, y, 10, tuple(image_shape)), Split(shards, "iid")


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


def topk_sizes(device: torch.device, quick: bool) -> list[tuple[int, int]]:
    """``(rows, d)`` of the top-k table."""
    if quick:
        return [(8, 10**5), (8, 10**6)]
    sizes = [(8, 10**5), (8, 10**6), (8, 10**7), (64, 10**6)]
    return sizes + ([(1, 10**8)] if device.type == "cuda" else [])


def bench_topk(
    device: torch.device, repeats: int, sizes: Sequence[tuple[int, int]], compile: bool = False
) -> list[dict[str, Any]]:
    """Exact top-k at 1% against the copy bandwidth (see the module docstring).

    ``compile``: also time the radix strategy under ``torch.compile`` (``radix_compiled``,
    after checking that it returns the same tensor: ``radix_compiled_equal``), a probe for
    the fused kernel that the target needs.
    """
    out = []
    for rows, d in sizes:
        x = torch.randn((rows, d), generator=torch.Generator().manual_seed(1)).to(device)
        k = max(1, d // 100)
        tied = x.round(decimals=2)
        nbytes = x.numel() * x.element_size()
        kernels: dict[str, Callable[[], Any]] = {
            "copy": x.clone,
            "ours": lambda x=x, k=k: top_k(x, k),
            **{strategy: functools.partial(top_k_by, strategy, x, k) for strategy in STRATEGIES},
            "previous": lambda x=x, k=k: previous_top_k(x, k),
            "torch_topk": lambda x=x, k=k: torch.topk(x.abs(), k, dim=1, sorted=False),
            # values rounded to 0.01: ties at the threshold, the previous kernel's slow path
            "ours_tied": functools.partial(top_k, tied, k),
            "previous_tied": functools.partial(previous_top_k, tied, k),
        }
        row: dict[str, Any] = {"rows": rows, "d": d, "k": k, "dtype": "float32",
                               "input_bytes": nbytes}
        if compile:
            compiled = torch.compile(functools.partial(top_k_by, "radix"), dynamic=False)
            row["radix_compiled_equal"] = bool(torch.equal(compiled(x, k), top_k(x, k)))
            kernels["radix_compiled"] = functools.partial(compiled, x, k)
        # fewer calls for the big inputs (at least 3)
        calls = max(3, min(repeats, int(repeats * 8e6 / x.numel())))
        seconds = timed(kernels, device, calls, warmup=1 if x.numel() > 8e7 else 3)
        copy = seconds.pop("copy")
        bandwidth = 2 * nbytes / copy
        row.update({"repeats": calls, "copy_s": copy, "copy_bandwidth_GBps": bandwidth / 1e9})
        for name, t in seconds.items():
            row[f"{name}_s"] = t
            row[f"{name}_fraction_of_copy_bandwidth"] = nbytes / t / bandwidth
        row["ours_over_torch_topk"] = seconds["ours"] / seconds["torch_topk"]
        row["ours_over_previous"] = seconds["ours"] / seconds["previous"]
        row["ours_over_previous_tied"] = seconds["ours_tied"] / seconds["previous_tied"]
        out.append(row)
        del x, tied
    return out


def compress_uplink(label: str, layer_sizes: Sequence[int], G: torch.Tensor) -> torch.Tensor:
    """The uplink compression of one step of algorithm ``label`` on gradient rows ``G``
    (GD-SEC: thresholds ``ξ·|g_0|``, standing in for ``ξ·|θ^k − θ^{k−1}|/α``)."""
    name, params = STEP_ALGORITHMS[label]
    if name == "gd-sec":
        return threshold(G, G[0].abs().to(torch.float64) * params["xi"])
    ratio = next(params[key] for key in ("ratio", "ratio_up", "rho_up") if key in params)
    if name in ("lags", "dgs"):
        return layer_top_k(G, layer_sizes, [max(1, int(ratio * s)) for s in layer_sizes])
    return top_k(G, max(1, int(ratio * G.shape[1])))


def bench_steps(
    device: torch.device, repeats: int, model_name: str = "mlp", workers: int = 8,
    batch_size: int = 32,
) -> dict[str, Any]:
    """Step time of every algorithm on one model, its ratio to dense SGD, and the share of
    the uplink compression; for ResNet-18 also the backward profile and LAGS counts."""
    image_shape, params = STEP_MODELS[model_name]
    data, split = synthetic_workers(workers, workers * 64, device, image_shape)
    model = make_model(model_name, input_dim=int(np.prod(image_shape)), classes=10,
                       image_shape=image_shape, **params).to(device)
    layout = Layout.of(model)
    theta0 = layout.flatten_module(model)
    algorithms = dict(STEP_ALGORITHMS)
    out: dict[str, Any] = {"model": model_name, "D": layout.dim, "layers": len(layout.sizes),
                           "workers": workers, "batch_size": batch_size}
    if model_name != "mlp":
        X, y = data.X[:batch_size], data.y[:batch_size]
        times = backward_profile(model, X, y, repeats=max(3, repeats // 4))
        counts = select_layer_counts(layout.sizes, times, LINK["alpha_c"], LINK["beta_c"],
                                     floor_ratio=0.01)
        out["backward_profile"] = {"names": list(layout.names), "sizes": list(layout.sizes),
                                   "seconds": list(times), "link": LINK,
                                   "lags_counts": list(counts)}
        algorithms["LAGS profiled"] = ("lags", {"alpha": 0.1, "k": list(counts)})
    runners = {}
    for label, (name, algorithm_params) in algorithms.items():
        algorithm_params = dict(algorithm_params)
        if name in ("lags", "dgs"):
            algorithm_params["layers"] = layout.sizes
        oracle = Simulation(model, WorkerShards(data, split), batch_size)
        runners[label] = Runner(make_algorithm(name, **algorithm_params), oracle, theta0)
    seconds = timed({label: (lambda r=r: r.step()) for label, r in runners.items()}, device,
                    repeats)
    G = torch.randn((workers, layout.dim), generator=torch.Generator().manual_seed(2)).to(device)
    compressions = {label: functools.partial(compress_uplink, label, layout.sizes, G)
                    for label in STEP_ALGORITHMS if label != "dense SGD"}
    compress = timed(compressions, device, repeats)
    dense = seconds["dense SGD"]
    out["steps"] = [
        {"label": label, "algorithm": runner.algorithm.name, "step_s": seconds[label],
         "over_dense": seconds[label] / dense,
         "uplink_compress_s": compress.get(label),
         "uplink_compress_share": (compress[label] / seconds[label]) if label in compress
         else None}
        for label, runner in runners.items()
    ]
    return out


#: The issue's targets (H100/H200): ours ≥ 25% of copy bandwidth and ≥ 3× torch.topk for
#: 8 rows of d ≥ 10⁷, not slower than torch.topk at d = 10⁵; compressed steps ≤ 1.3× dense
#: SGD on the MLP and ≤ 1.15× on the 10M-parameter model.
STEP_TARGETS = {"mlp": 1.3, "resnet18": 1.15}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target that the figures in ``results`` speak to: what, bound, measured, met."""
    out = []

    def check(what: str, measured: float, bound: float, at_most: bool) -> None:
        met = measured <= bound if at_most else measured >= bound
        out.append({"target": what, "bound": bound, "measured": measured, "met": met})

    for row in results.get("topk", []):
        size = f"{row['rows']}x{row['d']:.0e}"
        if row["rows"] == 8 and row["d"] >= 10**7:
            check(f"top-k {size}: fraction of copy bandwidth >= 0.25",
                  row["ours_fraction_of_copy_bandwidth"], 0.25, at_most=False)
            check(f"top-k {size}: time / torch.topk's <= 1/3", row["ours_over_torch_topk"],
                  1 / 3, at_most=True)
        if row["d"] == 10**5:
            check(f"top-k {size}: time / torch.topk's <= 1", row["ours_over_torch_topk"], 1.0,
                  at_most=True)
    for table in results.get("step", []):
        bound = STEP_TARGETS.get(table["model"])
        for row in table["steps"] if bound is not None else []:
            if row["label"] != "dense SGD":
                check(f"step {table['model']} {row['label']}: time / dense SGD's <= {bound}",
                      row["over_dense"], bound, at_most=True)
    return out


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"8x100000,1x1e8"`` → ``[(8, 100000), (1, 100000000)]``."""
    sizes = []
    for part in text.split(","):
        rows, _, d = part.partition("x")
        sizes.append((int(rows), int(float(d))))
    return sizes


def device_tag(device: torch.device) -> str:
    """File name of a device's figures: ``cuda-<device name>``, ``cpu-1thread`` or
    ``cpu-<N>threads``."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return "cuda-" + re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    threads = torch.get_num_threads()
    return f"cpu-{threads}thread" + ("s" if threads > 1 else "")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convcheck.torch.bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", help="JSON file (default gpu_runs/results/bench/<device>.json)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads when > 0")
    parser.add_argument("--quick", action="store_true", help="two top-k sizes only")
    parser.add_argument("--models", help="models of the step table (default: mlp on CPU, "
                        "mlp,resnet18 on CUDA)")
    parser.add_argument("--skip", default="", help="tables to leave out: oracle,topk,step")
    parser.add_argument("--sizes", help="top-k sizes ROWSxD,… (default: see the docstring)")
    parser.add_argument("--compile", action="store_true",
                        help="also time the radix top-k under torch.compile")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    skip = {part for part in args.skip.split(",") if part}
    models = (args.models.split(",") if args.models
              else ["mlp", "resnet18"] if device.type == "cuda" else ["mlp"])
    given = sys.argv[1:] if argv is None else list(argv)
    out = Path(args.out) if args.out else Path("gpu_runs/results/bench") / (
        device_tag(device) + ".json")
    results: dict[str, Any] = {
        "command": "python -m convcheck.torch.bench " + " ".join(given),
        "environment": environment(device),
    }
    if "oracle" not in skip:
        results["oracle"] = bench_oracle(device, args.repeats)
    if "topk" not in skip:
        sizes = parse_sizes(args.sizes) if args.sizes else topk_sizes(device, args.quick)
        results["topk"] = bench_topk(device, args.repeats, sizes, compile=args.compile)
    if "step" not in skip:
        results["step"] = [bench_steps(device, args.repeats, name) for name in models]
    results["targets"] = targets(results)
    text = json.dumps(results, indent=1) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Train a network with several algorithms on ``M`` simulated workers, from a TOML config.

``python -m convcheck.torch.train CONFIG.toml [--out DIR] [--epochs N] [--device D]
[--data-dir DIR] [--only LABEL …] [--checkpoint-dir DIR [--resume]] [--quiet]`` (also
``convcheck torch-train``). Every algorithm
starts from the same seeded model and uses the same worker split and minibatch stream seed.
Writes ``DIR/results.json`` (per-epoch test accuracy and loss, training loss, bits up and down,
diagnostics; the config, the exact command, the device, torch and package versions) and
``DIR/accuracy.png`` (test accuracy against epochs, uplink bits and total bits).

Config (every table and key is checked; unknown keys are refused)::

    [data]
    dataset = "mnist"          # a convcheck dataset name, "idx:DIR" or "svmlight:PATH"
    data_dir = "/path/to/data"  # optional (searched before $CONVCHECK_DATA and the user cache)
    params = {}                # loader parameters, e.g. {kind = "fashion-mnist"} for idx:
    scaling = "none"           # none | maxabs | standard (training statistics)
    train_size = 20000         # optional seeded subset of the training rows
    test_fraction = 0.2        # hold-out for sets without a test part

    [model]
    name = "mlp"               # mlp | lenet | resnet8
    hidden = [200, 200]        # mlp widths

    [run]
    workers = 8
    split = "iid"              # iid | sorted | dirichlet
    dirichlet_alpha = 0.5      # for split = "dirichlet"
    batch_size = 32            # per worker per step
    epochs = 3                 # an epoch is ceil(n_train / (workers·batch_size)) steps
    seed = 0                   # model init, split, minibatches, algorithm randomness
    device = "cpu"             # cpu | cuda | cuda:N
    dtype = "float32"          # float32 | float64
    weight_decay = 0.0
    vectorize = true           # torch.func.vmap over workers (false: a Python loop)
    threads = 0                # torch.set_num_threads when > 0

    [[algorithm]]
    label = "top-k EF"         # optional, default the name
    name = "ef"                # gd | gd-sec | ef | ef21 | bidir-topk | lags | dgs | …
    alpha = 0.1                # and the algorithm's (and compressor's) parameters
    ratio = 0.01

    [algorithm.adaptive]       # lags only: k_l from select_layer_counts
    alpha_c = 1e-4             # latency per layer message (s)
    beta_c = 1e-9              # seconds per bit
    floor_ratio = 0.001
    backward_time_per_param = 1e-9   # t_l = c·d_l (or backward_times = [...], forward order)
"""

from __future__ import annotations

import argparse
import math
import re
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from convcheck.algorithms import make_algorithm
from convcheck.algorithms.lags import select_layer_counts
from convcheck.data import split_dataset
from convcheck.environment import environment as base_environment
from convcheck.environment import processor
from convcheck.errors import ConvcheckError, DataFileError, InputError, check_choice, check_int
from convcheck.jsonio import write_json
from convcheck.outputs import check_output_folder
from convcheck.processes import exit_status, interrupt_name, interruptible
from convcheck.torch.checkpoint import check_matches, load_checkpoint
from convcheck.torch.datasets import load_train_test
from convcheck.torch.layout import Layout
from convcheck.torch.models import make_model
from convcheck.torch.runner import Runner
from convcheck.torch.simulation import Simulation, WorkerShards, evaluate

DATA_KEYS = {
    "dataset": None, "data_dir": None, "params": {}, "scaling": "none", "train_size": None,
    "test_fraction": 0.2,
}
RUN_KEYS = {
    "workers": 8, "split": "iid", "dirichlet_alpha": None, "batch_size": 32, "epochs": 3,
    "seed": 0, "device": "cpu", "dtype": "float32", "weight_decay": 0.0, "vectorize": True,
    "threads": 0,
}
ADAPTIVE_KEYS = {
    "alpha_c": None, "beta_c": None, "floor_ratio": None, "backward_time_per_param": None,
    "backward_times": None,
}
DTYPES = {"float32": torch.float32, "float64": torch.float64}
TOP_LEVEL = ("data", "model", "run", "algorithm")


def read_config(path: str | Path) -> dict[str, Any]:
    """Parse and validate a config file; defaults filled in.

    Raises
    ------
    DataFileError
        Missing file or malformed TOML.
    InputError
        Unknown table or key, missing required key, or a bad value (the message names the
        file, the field and the allowed values).
    """
    return parse_config(read_toml(path), str(path))


def read_toml(path: str | Path) -> dict[str, Any]:
    """The tables of a TOML file, unvalidated; :class:`DataFileError` if missing or malformed."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"config file not found: {path}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path}: malformed TOML: {exc}") from exc


def parse_config(raw: dict[str, Any], context: str) -> dict[str, Any]:
    """Validate the tables of a config (:func:`read_config`); ``context`` names the file."""
    for key in raw:
        check_choice("table", key, TOP_LEVEL, context)
    config = {
        "data": _filled(raw.get("data", {}), DATA_KEYS, "data", context),
        "run": _filled(raw.get("run", {}), RUN_KEYS, "run", context),
        "model": dict(raw.get("model", {"name": "mlp"})),
    }
    if config["data"]["dataset"] is None:
        raise InputError("data.dataset", None, "a dataset name", context)
    config["model"].setdefault("name", "mlp")
    algorithms = raw.get("algorithm")
    if not isinstance(algorithms, list) or not algorithms:
        raise InputError("algorithm", algorithms, "one or more [[algorithm]] tables", context)
    config["algorithms"] = []
    for entry in algorithms:
        entry = dict(entry)
        if "name" not in entry:
            raise InputError("algorithm.name", None, "an algorithm name", context)
        label = str(entry.pop("label", entry["name"]))
        adaptive = entry.pop("adaptive", None)
        if adaptive is not None:
            if entry["name"] != "lags":
                raise InputError("algorithm.adaptive", adaptive, "only for name = 'lags'", context)
            adaptive = _filled(adaptive, ADAPTIVE_KEYS, "algorithm.adaptive", context)
        config["algorithms"].append({"label": label, "params": entry, "adaptive": adaptive})
    labels = [a["label"] for a in config["algorithms"]]
    if len(set(labels)) != len(labels):
        raise InputError("algorithm.label", labels, "distinct labels", context)
    check_choice("run.dtype", config["run"]["dtype"], DTYPES, context)
    return config


#: Algorithms that take the model's layer sizes (parameter ``layers``).
LAYERED = ("dgs", "lags")


def _filled(table: Any, defaults: dict[str, Any], name: str, context: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise InputError(name, table, "a table", context)
    for key in table:
        check_choice(f"{name}.{key}", key, defaults, context)
    return {key: table.get(key, default) for key, default in defaults.items()}


def adaptive_counts(layout: Layout, adaptive: dict[str, Any]) -> tuple[int, ...]:
    """LAGS counts from the config's communication model and backward times."""
    sizes = layout.sizes
    per_param, times = adaptive["backward_time_per_param"], adaptive["backward_times"]
    if (per_param is None) == (times is None):
        raise InputError(
            "algorithm.adaptive.backward_times", times,
            "exactly one of backward_times (one per layer) or backward_time_per_param",
        )
    if times is None:
        times = [float(per_param) * size for size in sizes]
    for key in ("alpha_c", "beta_c", "floor_ratio"):
        if adaptive[key] is None:
            raise InputError(f"algorithm.adaptive.{key}", None, "a number")
    return select_layer_counts(
        sizes, times, adaptive["alpha_c"], adaptive["beta_c"], floor_ratio=adaptive["floor_ratio"]
    )


def resolve_device(name: Any) -> torch.device:
    """A usable torch device from its name, or an :class:`InputError` naming ``run.device``."""
    allowed = "cpu" + (", cuda or cuda:N" if torch.cuda.is_available() else
                       " (CUDA is not available on this machine)")
    try:
        device = torch.device(str(name))
    except RuntimeError:
        raise InputError("run.device", name, allowed) from None
    if device.type not in ("cpu", "cuda") or (
        device.type == "cuda" and not torch.cuda.is_available()
    ):
        raise InputError("run.device", name, allowed)
    return device


def device_description(device: torch.device) -> str:
    """The accelerator's name, or the CPU model and thread count."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (cuda)"
    return f"CPU {processor()}, {torch.get_num_threads()} torch threads"


def environment(device: torch.device) -> dict[str, Any]:
    """Versions, machine, device and torch threads of a training run."""
    return {
        **base_environment(("torch",)),
        "device": device_description(device),
        "threads": torch.get_num_threads(),
    }


def train_from_config(
    config: dict[str, Any],
    out: str | Path,
    *,
    command: str,
    only: Sequence[str] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every algorithm of ``config``; write ``out/results.json`` and ``out/accuracy.png``.

    Before any work: the output folder must be usable (:func:`check_run_outputs`), a resumed
    run must find its checkpoints, and the run must fit in memory
    (:func:`convcheck.torch.memory.check_memory`).
    """
    run_cfg = config["run"]
    selected = select_algorithms(config, only)
    out = check_run_outputs(out, checkpoint_dir, resume,
                            [checkpoint_name(config, entry) + ".pt" for entry in selected])
    if run_cfg["threads"]:
        torch.set_num_threads(check_int("run.threads", run_cfg["threads"], 0))
    device = resolve_device(run_cfg["device"])
    seed = check_int("run.seed", run_cfg["seed"], 0)
    dataset, train, test = load_data(config, device)
    workers = check_int("run.workers", run_cfg["workers"], 1)
    split = split_dataset(
        dataset, workers, run_cfg["split"], dirichlet_alpha=run_cfg["dirichlet_alpha"], seed=seed
    )
    model_params = {k: v for k, v in config["model"].items() if k != "name"}
    batch_size = check_int("run.batch_size", run_cfg["batch_size"], 1)
    check_model_memory(config, train, workers=workers, batch_size=batch_size, device=device)
    model = build_model(config, train, device)
    layout = Layout.of(model)
    theta0 = layout.flatten_module(model)
    steps_per_epoch = math.ceil(train.n_samples / (workers * batch_size))
    results: dict[str, Any] = {
        "command": command,
        "config": config,
        "environment": environment(device),
        "data": {
            "source": dataset.source, "n_train": train.n_samples, "n_test": test.X.shape[0],
            "classes": train.classes, "workers": workers, "split": split.method,
            "shard_sizes": split.sizes.tolist(),
        },
        "model": {"name": config["model"]["name"], "params": model_params, "D": layout.dim,
                  "layers": dict(zip(layout.names, layout.sizes, strict=True))},
        "steps_per_epoch": steps_per_epoch,
        "epochs": run_cfg["epochs"],
        "runs": [],
    }
    for entry in selected:
        params = dict(entry["params"])
        name = params.pop("name")
        if name in LAYERED:
            params["layers"] = layout.sizes
        if entry["adaptive"] is not None:
            params["k"] = adaptive_counts(layout, entry["adaptive"])
        algorithm = make_algorithm(name, **params)
        oracle = Simulation(
            model, WorkerShards(train, split), batch_size, seed=seed,
            weight_decay=run_cfg["weight_decay"], vectorize=run_cfg["vectorize"],
        )
        layers = dict(zip(layout.names, layout.sizes, strict=True))
        runner = Runner(algorithm, oracle, theta0, seed=seed, identity={"layers": layers})
        checkpoint = None
        if checkpoint_dir is not None:
            checkpoint = Path(checkpoint_dir) / (checkpoint_name(config, entry) + ".pt")
            if resume and checkpoint.is_file():  # a later algorithm may not have started yet
                saved = load_checkpoint(checkpoint)
                state = saved.get("server", {})
                check_matches(checkpoint, {"algorithm": saved.get("algorithm"),
                                           "D": _dim(state.get("theta")),
                                           "model layers": saved.get("identity", {}).get("layers")},
                              {"algorithm": algorithm.describe(), "D": layout.dim,
                               "model layers": layers})
                runner.load_state_dict(saved)
        started = time.perf_counter()
        history = runner.train(
            run_cfg["epochs"], steps_per_epoch, lambda theta: evaluate(model, theta, test),
            checkpoint=checkpoint, progress=entry["label"] if progress else None,
        )
        results["runs"].append({
            "label": entry["label"],
            "algorithm": algorithm.describe(),
            "status": "completed" if runner.status == "running" else runner.status,
            "history": history,
            "totals": runner.ledger.totals(),
            "wall_s_this_session": time.perf_counter() - started,
        })
    write_json(out / "results.json", results)
    plot_results(results, out / "accuracy.png")
    return results


def select_algorithms(config: dict[str, Any], only: Sequence[str] | None) -> list[dict]:
    """The config's ``[[algorithm]]`` entries, or those whose labels ``--only`` names."""
    selected = config["algorithms"]
    if only:
        known = [a["label"] for a in selected]
        for label in only:
            check_choice("--only", label, known)
        selected = [a for a in selected if a["label"] in only]
    return selected


def checkpoint_name(config: dict[str, Any], entry: dict[str, Any]) -> str:
    """``NN-label``: the checkpoint name of an algorithm entry (``NN``: its place in the
    config, whatever ``--only`` selects)."""
    return f"{config['algorithms'].index(entry):02d}-{slug(entry['label'])}"


def check_run_outputs(out: str | Path, checkpoint_dir: str | Path | None, resume: bool,
                      checkpoints: Sequence[str]) -> Path:
    """Check where a run writes before it starts (:func:`check_results_folder`,
    :func:`check_checkpoint_folder`); ``out`` as a :class:`Path`."""
    out = check_results_folder(out)
    check_checkpoint_folder(checkpoint_dir, resume, checkpoints)
    return out


def check_results_folder(out: str | Path) -> Path:
    """``out`` is a new folder in an existing one, or a folder (its ``results.json`` and
    ``accuracy.png`` are replaced)."""
    out = check_output_folder(out, "--out")
    for name in ("results.json", "accuracy.png"):
        if (out / name).exists() and not (out / name).is_file():
            raise InputError("--out", str(out), f"a folder where {name} can be written "
                             "(it is a folder there)")
    return out


def check_checkpoint_folder(folder: str | Path | None, resume: bool,
                            checkpoints: Sequence[str]) -> None:
    """``folder`` (if any) is a folder or can be made; with ``resume`` it must exist and hold
    at least one of ``checkpoints`` (names relative to it)."""
    if folder is None:
        return
    folder = check_output_folder(folder, "--checkpoint-dir")
    if resume and not folder.is_dir():
        raise InputError("--checkpoint-dir", str(folder), "an existing folder of checkpoints "
                         "to resume from (it does not exist)")
    if resume and not any((folder / name).exists() for name in checkpoints):
        raise InputError("--checkpoint-dir", str(folder),
                         "a folder holding the checkpoints of this config (none of "
                         + ", ".join(checkpoints) + " is there)")


def check_model_memory(config: dict[str, Any], train: Any, *, workers: int, batch_size: int,
                       device: torch.device) -> int:
    """The config's model, built on the ``meta`` device (no storage), must fit
    (:func:`convcheck.torch.memory.check_memory`); the estimated floor in bytes."""
    from convcheck.torch.memory import check_memory

    meta = torch.device("meta")
    with meta:
        shape_model = build_model(config, train, meta)
    return check_memory(shape_model, workers=workers, batch_size=batch_size,
                        features=train.X.shape[1], itemsize=DTYPES[config["run"]["dtype"]].itemsize,
                        device=device)


def _dim(theta: Any) -> int | None:
    return int(theta.shape[-1]) if isinstance(theta, torch.Tensor) else None


def load_data(config: dict[str, Any], device: torch.device) -> tuple[Any, Any, Any]:
    """``(training Dataset, training tensors, test tensors)`` of a config's ``[data]``."""
    data_cfg, run_cfg = config["data"], config["run"]
    return load_train_test(
        data_cfg["dataset"], data_dir=data_cfg["data_dir"], dataset_params=data_cfg["params"],
        scaling=data_cfg["scaling"], train_size=data_cfg["train_size"],
        test_fraction=data_cfg["test_fraction"], seed=check_int("run.seed", run_cfg["seed"], 0),
        dtype=DTYPES[run_cfg["dtype"]], device=device,
    )


def build_model(config: dict[str, Any], train: Any, device: torch.device) -> torch.nn.Module:
    """The config's ``[model]``, seeded with ``run.seed``, for the training tensors ``train``."""
    params = {k: v for k, v in config["model"].items() if k != "name"}
    return make_model(
        config["model"]["name"], input_dim=train.X.shape[1], classes=train.classes,
        image_shape=train.image_shape, seed=check_int("run.seed", config["run"]["seed"], 0),
        dtype=DTYPES[config["run"]["dtype"]], **params,
    ).to(device)


def slug(label: str) -> str:
    """A file-name form of a run label."""
    return re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-").lower() or "run"


def plot_results(results: dict[str, Any], path: str | Path) -> Path:
    """Test accuracy against epochs, cumulative uplink bits and cumulative total bits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    low = 1.0
    for run in results["runs"]:
        rows = [r for r in run["history"] if r.get("test_accuracy") is not None]
        label = run["label"]
        if run["status"] != "completed":
            label += f" ({run['status']} in epoch {run['history'][-1]['epoch']})"
        accuracy = [r["test_accuracy"] for r in rows]
        axes[0].plot([r["epoch"] for r in rows], accuracy, marker="o", label=label)
        later = [r for r in rows if r["epoch"] > 0]
        if run["status"] == "completed" and later:
            low = min(low, later[0]["test_accuracy"])
        axes[1].plot([r["bits_up"] for r in later], [r["test_accuracy"] for r in later],
                     marker="o", label=label)
        axes[2].plot([r["bits_up"] + r["bits_down"] for r in later],
                     [r["test_accuracy"] for r in later], marker="o", label=label)
    axes[0].set_xlabel("epoch")
    axes[1].set_xlabel("uplink bits, all workers (log)")
    axes[2].set_xlabel("uplink + downlink bits, all workers (log)")
    for axis in axes:
        axis.set_ylabel("test accuracy")
        axis.grid(True, alpha=0.3)
    for axis in axes[1:]:
        axis.set_xscale("log")
        axis.set_ylim(max(0.0, low - 0.02), None)  # zoom on the completed runs after epoch 0
    axes[0].legend(fontsize=8)
    data, model = results["data"], results["model"]
    figure.suptitle(
        f"{model['name']} (D = {model['D']:,}) on {data['n_train']:,} training rows, "
        f"{data['workers']} workers ({data['split']}); {results['environment']['device']}",
        fontsize=10,
    )
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m convcheck.torch.train",
        description="Train a network with compressed distributed algorithms on simulated workers.",
    )
    parser.add_argument("config", help="TOML config (see gpu_runs/configs/)")
    parser.add_argument("--out", help="output folder (default gpu_runs/results/<config name>)")
    parser.add_argument("--epochs", type=int, help="override run.epochs")
    parser.add_argument("--device", help="override run.device (cpu, cuda, cuda:N)")
    parser.add_argument("--data-dir", help="override data.data_dir")
    parser.add_argument("--only", nargs="+", metavar="LABEL", help="run only these algorithms")
    parser.add_argument("--checkpoint-dir", help="save a checkpoint per algorithm each epoch")
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint-dir")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    return parser


def apply_options(config: dict, args: argparse.Namespace) -> dict:
    """``config`` with the command line's ``--epochs`` and ``--data-dir`` applied; checks that
    ``--resume`` comes with ``--checkpoint-dir`` (options shared with the launcher)."""
    if args.resume and not args.checkpoint_dir:
        raise InputError("--resume", True, "only with --checkpoint-dir")
    if args.epochs is not None:
        config["run"]["epochs"] = check_int("--epochs", args.epochs, 0)
    if args.data_dir is not None:
        config["data"]["data_dir"] = args.data_dir
    return config


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m convcheck.torch.train`` and ``convcheck torch-train``."""
    args = build_parser().parse_args(argv)
    with interruptible():
        try:
            config = apply_options(read_config(args.config), args)
            if args.device is not None:
                config["run"]["device"] = args.device
            out = args.out or default_out(args.config)
            given = sys.argv[1:] if argv is None else list(argv)
            command = "python -m convcheck.torch.train " + shlex.join(given)
            results = train_from_config(
                config, out, command=command, only=args.only,
                checkpoint_dir=args.checkpoint_dir, resume=args.resume, progress=not args.quiet,
            )
        except ConvcheckError as error:
            print(f"convcheck: error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as interrupt:
            print(f"convcheck: interrupted ({interrupt_name(interrupt)})", file=sys.stderr)
            return exit_status(interrupt)
    print_results(results, out)
    return 0


def default_out(config: str | Path, suffix: str = "") -> Path:
    """``gpu_runs/results/<config name><suffix>``; its parent folders are created (the only
    output folder made without being named)."""
    out = Path("gpu_runs") / "results" / (Path(config).stem + suffix)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def print_results(results: dict, out: str | Path) -> None:
    """One line per run (status, test accuracy, bits), then where the files are."""
    for run in results["runs"]:
        last = run["history"][-1]
        where = f" ({run['mode']}, M = {run['workers']})" if "mode" in run else ""
        print(
            f"{run['label']:>22}{where}: {run['status']}, test accuracy "
            f"{last.get('test_accuracy', float('nan')):.4f}, "
            f"bits up {run['totals']['bits_up']:.3e}, down {run['totals']['bits_down']:.3e}"
        )
    print(f"wrote {Path(out) / 'results.json'} and {Path(out) / 'accuracy.png'}")


if __name__ == "__main__":
    sys.exit(main())

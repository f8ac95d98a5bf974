"""The distributed tests need torch.distributed with gloo; they skip with a message otherwise.

``scenario`` runs every distributed mode once on 3 gloo processes (a small MLP on
scikit-learn digits, float64, 2 epochs, a checkpoint per rank and algorithm after every
epoch); the tests compare its checkpoints and results with the single-process simulation (or,
for the asynchronous server, with a replay of its arrival order).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

try:
    import torch.distributed as dist

    AVAILABLE = dist.is_available() and dist.is_gloo_available()
except ImportError:  # torch itself is missing: tests/torch/conftest.py already skips
    AVAILABLE = False

if not AVAILABLE:
    pytest.skip(
        "torch.distributed with the gloo backend is not available: distributed tests skipped",
        allow_module_level=True,
    )

from tests.torch.distributed.helpers import check_success, run_ranks  # noqa: E402

CONFIG = """
[data]
dataset = "digits"
scaling = "maxabs"
train_size = 240

[model]
name = "mlp"
hidden = [16]

[run]
batch_size = 8
epochs = 2
threads = 1
dtype = "float64"
seed = 3
weight_decay = 1e-4

[distributed]
backend = "gloo"
timeout_s = 60
bucket_cap_mb = 100

[[algorithm]]
label = "bidir"
name = "bidir-topk"
alpha = 0.2
ratio_up = 0.05
ratio_down = 0.1

[[algorithm]]
label = "gd-sec"
name = "gd-sec"
alpha = 0.2
xi = 0.3
beta = 0.5

[[algorithm]]
label = "dense"
name = "gd"
alpha = 0.2

[[algorithm]]
label = "ef allgather"
name = "ef"
alpha = 0.2
ratio = 0.05

[[algorithm]]
label = "ef hook"
name = "ef"
alpha = 0.2
ratio = 0.05
[algorithm.distributed]
mode = "ddp"

[[algorithm]]
label = "gd-sec hook"
name = "gd-sec"
alpha = 0.2
xi = 0.3
beta = 0.5
[algorithm.distributed]
mode = "ddp"

[[algorithm]]
label = "lags"
name = "lags"
alpha = 0.2
ratio = 0.05
[algorithm.distributed]
overlap = "alternate"

[[algorithm]]
label = "lags measured"
name = "lags"
alpha = 0.2
[algorithm.adaptive]
floor_ratio = 0.02
[algorithm.distributed]
calibration_repeats = 2

[[algorithm]]
label = "dgs"
name = "dgs"
alpha = 0.05
momentum = 0.7
rho_up = 0.05
rho_down = 0.05
resync = 7
[algorithm.distributed]
worker_delays = [0.0, 0.002]

[[algorithm]]
label = "ef21"
name = "ef21"
alpha = 0.2
ratio = 0.05

[[algorithm]]
label = "gd-sec allgather"
name = "gd-sec"
alpha = 0.2
xi = 0.3
beta = 0.5
[algorithm.distributed]
mode = "allgather"

[[algorithm]]
label = "async top-k"
name = "async-sparse-sgd"
alpha = 0.05
ratio = 0.05

[[algorithm]]
label = "lags ps"
name = "lags"
alpha = 0.2
ratio = 0.05
[algorithm.distributed]
mode = "ps"

[[algorithm]]
label = "ef ps"
name = "ef"
alpha = 0.2
ratio = 0.05
[algorithm.distributed]
mode = "ps"

[[algorithm]]
label = "ef21-bc"
name = "ef21-bc"
alpha = 0.2
ratio = 0.05
ratio_down = 0.1
"""

WORLD = 3


@pytest.fixture(scope="session")
def scenario(tmp_path_factory) -> dict:
    """Run :data:`CONFIG` on 3 ranks; its config path, results, checkpoint folder, outputs."""
    folder = tmp_path_factory.mktemp("scenario")
    config = folder / "scenario.toml"
    config.write_text(CONFIG)
    out, checkpoints = folder / "out", folder / "checkpoints"
    results = run_ranks(
        WORLD, [str(config), "--out", str(out), "--checkpoint-dir", str(checkpoints), "--quiet"],
        folder / "ranks",
    )
    check_success(results)
    return {
        "config": config,
        "results": json.loads((out / "results.json").read_text()),
        "checkpoints": checkpoints,
        "ranks": results,
        "out": out,
    }


def rank_states(folder: Path, label_index: int, slug: str) -> list[dict]:
    """The last checkpoint of every rank for one algorithm."""
    from convcheck.torch.checkpoint import load_checkpoint

    run_folder = folder / f"{label_index:02d}-{slug}"
    return [load_checkpoint(run_folder / f"rank-{r}-of-{WORLD}.pt")["run"] for r in range(WORLD)]

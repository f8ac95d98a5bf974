"""The launcher: torchrun end to end with checkpoint and resume, and config validation."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from convcheck.errors import InputError
from convcheck.torch.launch import read_launch_config
from tests.torch.distributed.conftest import CONFIG, WORLD, rank_states

RESUMED = [("bidir", 0, "bidir"), ("ef hook", 4, "ef-hook"), ("lags measured", 7, "lags-measured")]


def torchrun(*args: str) -> subprocess.CompletedProcess:
    """``torchrun --standalone`` (as ``python -m torch.distributed.run``) on this config."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", str(WORLD), "-m", "convcheck.torch.launch", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=240)


def test_torchrun_resume_equals_uninterrupted(scenario, tmp_path) -> None:
    """One epoch, stop, resume for the second (through torchrun and the command line): every
    rank's state and ledger at the end are the uninterrupted scenario's, bit for bit, for the
    parameter server, the DDP hook and LAGS with measured counts; DGS resumes and completes."""
    config = scenario["config"]
    checkpoints, out = tmp_path / "checkpoints", tmp_path / "out"
    common = ["--out", str(out), "--checkpoint-dir", str(checkpoints), "--quiet", "--only",
              *[label for label, _, _ in RESUMED], "dgs"]
    first = torchrun(str(config), "--epochs", "1", *common)
    assert first.returncode == 0, first.stderr[-3000:]
    second = torchrun(str(config), "--resume", *common)
    assert second.returncode == 0, second.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["command"].startswith(f"torchrun --nproc-per-node {WORLD} -m convcheck.")
    assert results["environment"]["distributed"]["backend"] == "gloo"
    assert results["environment"]["distributed"]["world_size"] == WORLD
    for label, index, slug in RESUMED:
        resumed = rank_states(checkpoints, index, slug)
        straight = rank_states(scenario["checkpoints"], index, slug)
        for mine, theirs in zip(resumed, straight, strict=True):
            assert mine["steps"] == theirs["steps"] > 0
            assert set(mine["tensors"]) == set(theirs["tensors"])
            for name, tensor in mine["tensors"].items():
                assert torch.equal(tensor, theirs["tensors"][name]), (label, name)
            assert ("ledger" in mine) == ("ledger" in theirs)
            for part in ("up", "down") if "ledger" in mine else ():
                assert np.array_equal(mine["ledger"][part], theirs["ledger"][part])
        run = next(r for r in results["runs"] if r["label"] == label)
        reference = next(r for r in scenario["results"]["runs"] if r["label"] == label)
        timing = ("wall_s", "step_s")
        strip = [{k: v for k, v in r.items() if k not in timing} for r in run["history"]]
        assert strip == [{k: v for k, v in r.items() if k not in timing}
                         for r in reference["history"]]
    dgs = rank_states(checkpoints, 8, "dgs")
    assert dgs[0]["steps"] == 30 and int(dgs[0]["tensors"]["server.versions"]) == 60
    assert dgs[0]["tensors"]["events"] == 60 and dgs[0]["tensors"]["broadcasts"].shape[0] == 0
    assert all(state["steps"] == 30 for state in dgs[1:])


def write(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("addition", "field"),
    [
        ("[distributed]\ncolour = 1\n", "distributed.colour"),
        ("[distributed]\nbackend = 'mpi'\n", "distributed.backend"),
    ],
)
def test_bad_distributed_tables(tmp_path, addition, field) -> None:
    head = CONFIG.split("[distributed]")[0]
    text = head + addition + "[[algorithm]]\nname = 'gd'\nalpha = 0.1\n"
    with pytest.raises(InputError, match=f"'{field}'"):
        read_launch_config(write(tmp_path, text))


@pytest.mark.parametrize(
    ("algorithm", "field"),
    [
        ("name = 'bidir-topk'\nalpha = 0.1\nk_up = 1\nk_down = 1\n"
         "[algorithm.distributed]\nmode = 'lags'\n", "algorithm.distributed.mode"),
        ("name = 'ef'\nalpha = 0.1\n[algorithm.distributed]\nmode = 'gossip'\n",
         "algorithm.distributed.mode"),
        ("name = 'lags'\nalpha = 0.1\nratio = 0.1\n[algorithm.distributed]\noverlap = 'yes'\n",
         "algorithm.distributed.overlap"),
        ("name = 'ef'\nalpha = 0.1\n[algorithm.distributed]\nspeed = 2\n",
         "algorithm.distributed.speed"),
        ("name = 'nonesuch'\nalpha = 0.1\n", "algorithm.name"),
        ("name = 'dgs'\nalpha = 0.1\n[algorithm.distributed]\nmode = 'ps'\n",
         "algorithm.distributed.mode"),
    ],
)
def test_bad_algorithm_tables(tmp_path, algorithm, field) -> None:
    text = CONFIG.split("[[algorithm]]")[0] + "[[algorithm]]\n" + algorithm
    with pytest.raises(InputError, match=f"'{field}'") as info:
        read_launch_config(write(tmp_path, text))
    assert str(tmp_path / "config.toml") in str(info.value)


def test_a_bad_mode_names_the_modes_and_the_algorithms(tmp_path) -> None:
    text = (CONFIG.split("[[algorithm]]")[0] + "[[algorithm]]\nname = 'bidir-topk'\n"
            "alpha = 0.1\nk_up = 1\nk_down = 1\n[algorithm.distributed]\nmode = 'ddp'\n")
    with pytest.raises(InputError) as info:
        read_launch_config(write(tmp_path, text))
    message = str(info.value)
    assert "a mode that runs bidir-topk: ps, allgather" in message
    assert "mode 'ddp' runs gd, gd-sec, ef" in message


def test_modes_cover_the_registry() -> None:
    """Every registered algorithm has a mode; ps and allgather take every synchronous one,
    async-ps every asynchronous one."""
    from convcheck.algorithms import ALGORITHMS
    from convcheck.torch.launch import algorithm_modes, default_mode, mode_algorithms

    synchronous = [n for n, cls in ALGORITHMS.items() if "sync" in cls.transports]
    assert mode_algorithms("ps") == mode_algorithms("allgather") == synchronous
    assert set(mode_algorithms("async-ps")) == {"dgs", "async-sgd", "async-sparse-sgd"}
    for name in ALGORITHMS:
        assert default_mode(name) in algorithm_modes(name)


def test_default_modes_and_defaults(tmp_path) -> None:
    config = read_launch_config(write(tmp_path, CONFIG))
    modes = {a["label"]: a["distributed"]["mode"] for a in config["algorithms"]}
    assert modes == {"bidir": "ps", "gd-sec": "ps", "dense": "ps", "ef allgather": "allgather",
                     "ef hook": "ddp", "gd-sec hook": "ddp", "lags": "lags",
                     "lags measured": "lags", "dgs": "async-ps", "ef21": "ps",
                     "gd-sec allgather": "allgather", "async top-k": "async-ps",
                     "lags ps": "ps", "ef ps": "ps", "ef21-bc": "ps"}
    assert config["distributed"] == {"backend": "gloo", "timeout_s": 60, "bucket_cap_mb": 100}


def test_launch_without_torchrun_names_the_environment(tmp_path, monkeypatch, capsys) -> None:
    from convcheck.torch.launch import main

    monkeypatch.delenv("RANK", raising=False)
    assert main([str(write(tmp_path, CONFIG)), "--out", str(tmp_path / "out")]) == 2
    assert "'RANK'" in capsys.readouterr().err


def test_shipped_distributed_configs_are_valid() -> None:
    """Every config in gpu_runs/configs/distributed parses, and its algorithms build for the
    model."""
    from pathlib import Path

    from convcheck.torch.launch import algorithm_of
    from convcheck.torch.layout import Layout
    from convcheck.torch.models import make_model

    folder = Path(__file__).parents[3] / "gpu_runs" / "configs" / "distributed"
    configs = sorted(folder.glob("*.toml"))
    assert len(configs) >= 2
    for path in configs:
        config = read_launch_config(path)
        params = {k: v for k, v in config["model"].items() if k != "name"}
        layout = Layout.of(make_model(config["model"]["name"], input_dim=784, classes=10,
                                      image_shape=(1, 28, 28), **params))
        for entry in config["algorithms"]:
            algorithm, _ = algorithm_of(entry, layout)
            assert algorithm.name == entry["params"]["name"], (path.name, entry["label"])

"""Bad torch configs, outputs and checkpoints: exit status 2 before any training, one message
naming the field or file and what is allowed, no traceback (same table form as
tests/cli/test_bad_input.py; ``{ck}`` is a checkpoint folder written by a real run)."""

from __future__ import annotations

import shutil

import pytest

from convcheck.cli import main
from tests.cli.test_bad_input import Row, check_row

CONFIG = """
[data]
dataset = "digits"
scaling = "maxabs"
train_size = 200
[model]
name = "mlp"
hidden = [8]
[run]
workers = 2
batch_size = 10
epochs = 1
threads = 1
[[algorithm]]
label = "ef"
name = "ef"
alpha = 0.2
ratio = 0.1
"""


def config(old: str = "", new: str = "") -> dict[str, str]:
    assert old in CONFIG, old
    return {"config.toml": CONFIG.replace(old, new, 1)}


def train(*extra: str) -> list[str]:
    return ["torch-train", "{tmp}/config.toml", "--out", "{tmp}/out", "--quiet", *extra]


TORCH_ROWS = {
    "unknown table": Row(train(), ["'table'", "'data'"], config("[run]", "[colour]\nx=1\n[run]")),
    "unknown data key": Row(train(), ["'data.colour'", "'dataset'"],
                            config("train_size = 200", "train_size = 200\ncolour = 1")),
    "unknown dtype": Row(train(), ["'run.dtype'", "float32"],
                         config("threads = 1", "threads = 1\ndtype = 'half'")),
    "no algorithm": Row(train(), ["'algorithm'", "[[algorithm]]"],
                        {"config.toml": CONFIG.split("[[algorithm]]")[0]}),
    "unknown device": Row(train(), ["'run.device'", "cpu"],
                          config("threads = 1", "threads = 1\ndevice = 'tpu'")),
    "missing config": Row(["torch-train", "{tmp}/none.toml"], ["{tmp}/none.toml", "not found"]),
    "malformed config": Row(train(), ["config.toml", "malformed TOML"],
                            {"config.toml": "[data\n"}),
    "unknown label": Row(train("--only", "nosuch"), ["'--only'", "'ef'"], config()),
    "huge hidden layer": Row(train(), ["'run.batch_size / model'", "GiB", "free"],
                             config("hidden = [8]", "hidden = [100000000]")),
    "huge batch": Row(train(), ["'run.batch_size / model'", "GiB", "lower run.batch_size"],
                      config("batch_size = 10", "batch_size = 100000000000")),
    "out is a file": Row(train(), ["'--out'", "existing file"], {**config(), "out": "mine"}),
    "out in a missing folder": Row(
        ["torch-train", "{tmp}/config.toml", "--out", "{tmp}/no/out"],
        ["'--out'", "does not exist"], config()),
    "resume without a folder": Row(
        train("--checkpoint-dir", "{tmp}/missing", "--resume"),
        ["'--checkpoint-dir'", "{tmp}/missing", "does not exist"], config()),
    "resume from an empty folder": Row(
        train("--checkpoint-dir", "{tmp}/empty", "--resume"),
        ["'--checkpoint-dir'", "00-ef.pt"], {**config(), "empty/readme.txt": "x"}),
    "resume without the folder option": Row(train("--resume"), ["'--resume'",
                                                                "--checkpoint-dir"], config()),
    "resume another algorithm": Row(
        train("--checkpoint-dir", "{tmp}/ck", "--resume"),
        ["'checkpoint'", "00-ef.pt", "algorithm:", "another"], config("alpha = 0.2",
                                                                       "alpha = 0.3")),
    "resume another model": Row(
        train("--checkpoint-dir", "{tmp}/ck", "--resume"),
        ["'checkpoint'", "00-ef.pt", "D:"], config("hidden = [8]", "hidden = [9]")),
    "corrupt checkpoint": Row(
        train("--checkpoint-dir", "{tmp}/bad", "--resume"),
        ["bad/00-ef.pt", "not a torch checkpoint"],
        {**config(), "bad/00-ef.pt": "API_TOKEN=s3cr3t\n"}, absent=("s3cr3t",)),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A checkpoint of CONFIG after one epoch."""
    folder = tmp_path_factory.mktemp("trained")
    (folder / "config.toml").write_text(CONFIG)
    assert main(["torch-train", str(folder / "config.toml"), "--out", str(folder / "out"),
                 "--quiet", "--checkpoint-dir", str(folder / "ck")]) == 0
    return folder / "ck"


@pytest.mark.parametrize("row", TORCH_ROWS.values(), ids=TORCH_ROWS)
def test_bad_torch_input_exits_2_before_training(row, tmp_path, capsys, checkpoints,
                                                 monkeypatch):
    from convcheck.torch.runner import Runner

    shutil.copytree(checkpoints, tmp_path / "ck")
    before = {p.name: p.read_bytes() for p in (tmp_path / "ck").iterdir()}

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(Runner, "train", no_training)
    check_row(row, tmp_path, capsys)
    assert not (tmp_path / "out" / "results.json").exists()
    assert {p.name: p.read_bytes() for p in (tmp_path / "ck").iterdir()} == before

"""The training entry point: config validation, outputs, resume through the command line."""

from __future__ import annotations

import json

import pytest

from convcheck.cli import main as convcheck_main
from convcheck.errors import DataFileError, InputError
from convcheck.torch.train import main, read_config

CONFIG = """
[data]
dataset = "digits"
scaling = "maxabs"
train_size = 400

[model]
name = "mlp"
hidden = [16]

[run]
workers = 4
batch_size = 10
epochs = 2
threads = 1

[[algorithm]]
label = "dense SGD"
name = "gd"
alpha = 0.2

[[algorithm]]
label = "top-k EF"
name = "ef"
alpha = 0.2
ratio = 0.05

[[algorithm]]
label = "LAGS adaptive"
name = "lags"
alpha = 0.2
[algorithm.adaptive]
alpha_c = 1e-5
beta_c = 1e-9
floor_ratio = 0.01
backward_time_per_param = 1e-9
"""


def test_run_writes_results_and_plot(tmp_path) -> None:
    config = tmp_path / "small.toml"
    config.write_text(CONFIG)
    out = tmp_path / "out"
    assert main([str(config), "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert (out / "accuracy.png").stat().st_size > 10_000
    assert results["command"].startswith("python -m convcheck.torch.train ")
    assert results["environment"]["device"].startswith("CPU") and results["environment"]["torch"]
    assert results["steps_per_epoch"] == 10  # ceil(400 / (4·10))
    labels = [run["label"] for run in results["runs"]]
    assert labels == ["dense SGD", "top-k EF", "LAGS adaptive"]
    dense, topk, lags = results["runs"]
    assert [r["epoch"] for r in dense["history"]] == [0, 1, 2]
    D = results["model"]["D"]
    assert dense["totals"]["bits_up"] == 20 * 4 * 32 * D  # 20 steps, 4 workers, dense
    assert topk["totals"]["bits_up"] < dense["totals"]["bits_up"] / 10
    assert lags["algorithm"]["params"]["k"][0] == max(1, int(0.01 * 64 * 16))  # first: floor
    assert all(run["status"] == "completed" for run in results["runs"])


def test_resume_through_the_command_line(tmp_path) -> None:
    config = tmp_path / "small.toml"
    config.write_text(CONFIG)
    straight, parts, checkpoints = tmp_path / "a", tmp_path / "b", tmp_path / "ck"
    assert main([str(config), "--out", str(straight), "--quiet", "--only", "top-k EF"]) == 0
    common = ["--quiet", "--only", "top-k EF", "--checkpoint-dir", str(checkpoints)]
    assert main([str(config), "--out", str(parts), "--epochs", "1", *common]) == 0
    assert convcheck_main(["torch-train", str(config), "--out", str(parts), *common,
                           "--resume"]) == 0

    def history(folder):
        run = json.loads((folder / "results.json").read_text())["runs"][0]
        return [{k: v for k, v in r.items() if k != "wall_s"} for r in run["history"]]

    assert history(parts) == history(straight)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[data]\ndataset='digits'\ncolour=1\n[[algorithm]]\nname='gd'\nalpha=1", "data.colour"),
        ("[data]\n[[algorithm]]\nname='gd'\nalpha=1", "data.dataset"),
        ("[data]\ndataset='digits'\n", "algorithm"),
        ("[data]\ndataset='digits'\n[extra]\n[[algorithm]]\nname='gd'\nalpha=1", "table"),
        ("[data]\ndataset='digits'\n[run]\ndtype='half'\n[[algorithm]]\nname='gd'\nalpha=1",
         "run.dtype"),
        ("[data]\ndataset='digits'\n[[algorithm]]\nname='gd'\nalpha=1\n[algorithm.adaptive]\n",
         "algorithm.adaptive"),
    ],
)
def test_bad_configs_name_the_field(tmp_path, text, field) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=f"'{field}'") as info:
        read_config(path)
    assert str(path) in str(info.value)


def test_unreadable_configs(tmp_path, capsys) -> None:
    with pytest.raises(DataFileError, match="not found"):
        read_config(tmp_path / "missing.toml")
    (tmp_path / "broken.toml").write_text("[data\n")
    with pytest.raises(DataFileError, match="malformed TOML"):
        read_config(tmp_path / "broken.toml")
    assert main([str(tmp_path / "broken.toml")]) == 2
    assert "malformed TOML" in capsys.readouterr().err
    good = tmp_path / "good.toml"
    good.write_text(CONFIG)
    assert main([str(good), "--only", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "'--only'" in capsys.readouterr().err
    assert main([str(good), "--device", "tpu", "--out", str(tmp_path / "x")]) == 2
    assert "'run.device'" in capsys.readouterr().err


def test_shipped_configs_are_valid() -> None:
    """Every config in gpu_runs/configs parses and builds its model and algorithms."""
    from pathlib import Path

    from convcheck.algorithms import make_algorithm
    from convcheck.torch.layout import Layout
    from convcheck.torch.models import make_model
    from convcheck.torch.train import LAYERED, adaptive_counts

    configs = sorted((Path(__file__).parents[2] / "gpu_runs" / "configs").glob("*.toml"))
    assert len(configs) >= 3
    for path in configs:
        config = read_config(path)
        params = {k: v for k, v in config["model"].items() if k != "name"}
        model = make_model(config["model"]["name"], input_dim=784, classes=10,
                           image_shape=(1, 28, 28), **params)
        layout = Layout.of(model)
        for entry in config["algorithms"]:
            params = dict(entry["params"])
            name = params.pop("name")
            if name in LAYERED:
                params["layers"] = layout.sizes
            if entry["adaptive"] is not None:
                params["k"] = adaptive_counts(layout, entry["adaptive"])
            assert make_algorithm(name, **params).name == name, (path.name, entry["label"])

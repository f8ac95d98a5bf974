"""``convcheck certify``: the lower bound, the gap, the model and the class in the output; the
size guard; ``--case`` with class, instance and measured rates; bad input exits 2."""

from __future__ import annotations

import json
import time

import pytest

from convcheck.cli import main
from convcheck.verification.cases import default_folder


def test_certify_says_which_model_and_class(capsys):
    argv = ["certify", "--algorithm", "ef21", "--L", "1", "--mu", "0.1", "--set", "alpha=0.15",
            "--set", "delta=0.3"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "model        interpolation" in text
    assert "sparsifier (error orthogonal to the message)" in text
    assert "lower bound  rho_low = 0.98" in text and "gap          rho − rho_low" in text
    argv += ["--workers", "2"]
    assert main(argv + ["--model", "sector", "--json", "--no-lower-bound"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["model"]["name"] == "sector"
    assert described["rho_low"] is None and described["lower_bound_method"] == ""
    assert described["assumptions"].startswith("Every f = (1/M)Σ f_m")


def test_certify_guards_the_size_quickly(capsys):
    started = time.perf_counter()
    argv = ["certify", "--algorithm", "gd-delay", "--L", "1", "--mu", "0.1", "--set",
            "alpha=0.01", "--set", "tau=10000"]
    assert main(argv) == 2
    assert time.perf_counter() - started < 20
    error = capsys.readouterr().err
    assert "'tau'" in error and "tau ≤" in error and "--force" in error and "GB" in error


def test_certify_many_workers_in_classes(capsys):
    argv = ["certify", "--algorithm", "gd-sec", "--L", "1", "--mu", "0.1", "--workers", "1000",
            "--set", "alpha=0.5", "--set", "xi=0.2", "--json", "--no-lower-bound"]
    assert main(argv) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["certified"] and len(described["blocks"]) == 2
    assert described["size"]["lmi_rows"] < 20


def test_certify_case_prints_class_instance_and_measured(capsys):
    case = str(default_folder() / "gd" / "ridge-divergent-step.toml")
    assert main(["certify", "--case", case, "--class", "quadratic"]) == 0
    text = capsys.readouterr().out
    assert "class      rho = " in text and "instance   rho = " in text
    assert "measured   0.99" in text


@pytest.mark.parametrize(("argv", "field"), [
    (["--algorithm", "gd", "--L", "1", "--mu", "0.1", "--workers", "0", "--set", "alpha=1"],
     "'workers'"),
    (["--algorithm", "gd", "--L", "1", "--mu", "0.1", "--workers", "3", "--classes", "4",
      "--set", "alpha=1"], "'classes'"),
    (["--algorithm", "gd", "--mu", "0.1", "--set", "alpha=1"], "'L'"),
    (["--L", "1", "--mu", "0.1"], "'algorithm'"),
    (["--algorithm", "ef21", "--L", "1", "--mu", "0.1", "--set", "alpha=0.1", "--set",
      "delta=0.3", "--model", "sector", "--window", "2"], "'window'"),
    (["--case", str(default_folder() / "gd" / "logistic-strongly-convex.toml"), "--class",
      "quadratic"], "'class'"),
])
def test_certify_bad_input_exits_2(argv, field, capsys):
    assert main(["certify", *argv]) == 2
    assert field in capsys.readouterr().err


def test_certify_prints_and_writes_the_certificate(tmp_path, capsys):
    out = tmp_path / "certificate.json"
    argv = ["certify", "--algorithm", "gd", "--L", "2", "--mu", "0.2", "--set", "alpha=1/L"]
    assert main(argv + ["--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "certified    rho = 0.9" in text and "re-check     numpy" in text
    assert "lower bound  rho_low = 0.9" in text and "gap          rho − rho_low" in text
    written = json.loads(out.read_text())
    assert written["certified"] and abs(written["rho"] - 0.9) <= 1e-6
    assert written["params"]["alpha"] == 0.5 and written["P"] is not None
    argv = ["certify", "--algorithm", "ef", "--L", "1", "--mu", "0.1", "--workers", "3"]
    argv += ["--L-workers", "0.5,1,1.5", "--set", "alpha=0.1", "--set", "k=2", "--set", "d=10"]
    assert main(argv + ["--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert not described["certified"] and described["params"]["delta"] == 0.2
    assert described["params"]["L_workers"] == [0.5, 1.0, 1.5]


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["--algorithm", "gd", "--L", "1", "--mu", "2", "--set", "alpha=1"], "'mu'"),
        (["--algorithm", "gd", "--L", "-1", "--mu", "0", "--set", "alpha=1"], "'L'"),
        (["--algorithm", "gd", "--L", "1", "--mu", "-0.1", "--set", "alpha=1"], "'mu'"),
        (["--algorithm", "gd", "--L", "1", "--mu", "0.1"], "'alpha'"),
        (
            ["--algorithm", "gd", "--L", "1", "--mu", "0.1", "--workers", "3"]
            + ["--L-workers", "1,2", "--set", "alpha=1"],
            "'L_workers'",
        ),
        (
            ["--algorithm", "gd", "--L", "1", "--mu", "0.1", "--workers", "2"]
            + ["--mu-workers", "0.1,x", "--set", "alpha=1"],
            "'mu_workers'",
        ),
        (
            ["--algorithm", "gd", "--L", "1", "--mu", "0.1", "--set", "alpha=1", "--tol", "0"],
            "'tol'",
        ),
        (["--algorithm", "ef21", "--L", "1", "--mu", "0.1", "--set", "alpha=1"], "'delta'"),
        (
            ["--algorithm", "gd", "--L", "1", "--mu", "0.1", "--set", "alpha=1", "--set", "k=2"],
            "'k'",
        ),
    ],
)
def test_certify_bad_input_names_the_field(argv, field, capsys):
    assert main(["certify", *argv]) == 2
    assert field in capsys.readouterr().err

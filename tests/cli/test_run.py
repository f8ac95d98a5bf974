"""``convcheck run``: synchronous and asynchronous runs, their traces and bad input."""

from __future__ import annotations

import json

import pytest

from convcheck.cli import main


def test_run_writes_a_trace(tmp_path, capsys):
    out = tmp_path / "trace.json"
    argv = [
        "run",
        "--algorithm",
        "gd-sec",
        "--problem",
        "logistic",
        "--dataset",
        "iris",
        "--lam",
        "0.01",
        "--workers",
        "3",
        "--split",
        "sorted",
        "--iters",
        "400",
        "--set",
        "alpha=1/L",
        "--set",
        "xi=0.2",
        "--target",
        "1e-4",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "target reached" in printed and "bits" in printed
    trace = json.loads(out.read_text())
    assert trace["meta"]["algorithm"]["params"]["xi"] == 0.2
    assert trace["summary"]["target_iteration"] == trace["summary"]["iterations"]


def test_run_compressor_parameters_and_csv(tmp_path):
    out = tmp_path / "trace.csv"
    argv = [
        "run",
        "--algorithm",
        "ef",
        "--problem",
        "ridge",
        "--dataset",
        "diabetes",
        "--iters",
        "5",
        "--set",
        "compressor=top-k",
        "--set",
        "k=3",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert out.read_text().startswith("iteration,value,suboptimality")


@pytest.mark.parametrize(
    "extra, field",
    [(["--set", "alpha=-1"], "alpha"), (["--set", "beta=2"], "beta"), (["--set", "xi"], "--set")],
)
def test_run_bad_parameters_exit_2(extra, field, capsys):
    argv = [
        "run",
        "--algorithm",
        "gd-sec",
        "--problem",
        "ridge",
        "--dataset",
        "diabetes",
        "--iters",
        "5",
        *extra,
    ]
    assert main(argv) == 2
    assert field in capsys.readouterr().err


def test_run_unknown_algorithm_exits_2(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["run", "--algorithm", "sgd", "--problem", "ridge", "--iters", "5"])
    assert raised.value.code == 2
    assert "--algorithm" in capsys.readouterr().err


def test_run_async_with_timing_options(tmp_path, capsys):
    durations = tmp_path / "durations.csv"
    durations.write_text("w0,w1\n1.0,3.0\n2.0,1.0\n")
    out = tmp_path / "trace.json"
    argv = [
        "run", "--algorithm", "dgs", "--problem", "logistic", "--dataset", "iris",
        "--workers", "3", "--iters", "60", "--set", "alpha=0.1/L", "--set", "rho_up=0.5",
        "--set", "rho_down=0.5", "--set", "layers=2", "--set", "resync=10",
        "--compute-trace", str(durations), "--bandwidth-up", "1000", "--latency-down", "0.5",
        "--tau-max", "2", "--trace-every", "5", "--out", str(out),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "staleness mean" in printed and "server updates" in printed
    trace = json.loads(out.read_text())
    assert trace["meta"]["engine"] == "async" and trace["meta"]["tau_max"] == 2
    assert trace["meta"]["compute"]["name"] == "trace"
    assert trace["summary"]["staleness"]["max"] <= 2
    assert trace["columns"]["iteration"] == list(range(0, 61, 5))
    # some worker made >= 20 of the 60 updates, each >= 1 s of compute + 0.5 s of downlink
    assert trace["columns"]["time"][-1] >= 30


def test_run_async_shared_data(tmp_path):
    out = tmp_path / "trace.csv"
    argv = [
        "run", "--algorithm", "async-sparse-sgd", "--problem", "nonconvex-logistic",
        "--workers", "6", "--shared-data", "--iters", "30", "--set", "ratio=0.2",
        "--set", "batch_size=4", "--compute", "pareto", "--compute-spread", "3",
        "--out", str(out),
    ]
    assert main(argv) == 0
    header = out.read_text().splitlines()[0].split(",")
    assert "time" in header and "staleness" in header and "worker" in header


@pytest.mark.parametrize(
    ("algorithm", "extra", "field"),
    [
        ("gd", ["--tau-max", "3"], "'--tau-max'"),
        ("ef", ["--set", "k=1", "--shared-data"], "'--shared-data'"),
        ("async-sgd", ["--tau-max", "-1"], "'tau_max'"),
        ("async-sgd", ["--compute-mean", "-2"], "'mean'"),
        ("async-sgd", ["--latency-up", "-1"], "'latency_up'"),
        ("async-sgd", ["--compute", "trace"], "'--compute-trace'"),
        ("async-sgd", ["--compute-trace", "missing.csv"], "missing.csv"),
        ("dgs", ["--set", "rho_up=0"], "'rho_up'"),
        ("dgs", ["--set", "momentum=0"], "'momentum'"),
    ],
)
def test_run_async_bad_input_exits_2(algorithm, extra, field, capsys):
    argv = ["run", "--algorithm", algorithm, "--problem", "logistic", "--dataset", "iris",
            "--workers", "2", "--iters", "5", *extra]
    assert main(argv) == 2
    assert field in capsys.readouterr().err



def test_run_help_has_examples_and_every_set_key(capsys):
    from convcheck.algorithms import ALGORITHMS
    from convcheck.catalog import algorithm_parameters, parameter_line

    with pytest.raises(SystemExit) as raised:
        main(["run", "--help"])
    assert raised.value.code == 0
    text = capsys.readouterr().out
    assert "examples:\n  convcheck run --algorithm gd-sec --problem logistic" in text
    for name in ALGORITHMS:
        block = "\n".join([f"  {name}:"] + [f"    {parameter_line(row)}"
                                            for row in algorithm_parameters(name)])
        assert block + "\n" in text, name
    assert "xi (float; a real number >= 0 or a list of reals >= 0; default 0.0)" in text
    assert "--progress, --no-progress" in text


def test_run_warns_when_no_bound_covers_the_step(capsys):
    argv = ["run", "--algorithm", "async-sgd", "--problem", "nonconvex-logistic", "--workers",
            "4", "--iters", "40"]
    assert main(argv) == 0  # a warning, not an error
    captured = capsys.readouterr()
    assert "convcheck: warning: step α" in captured.err and "asynchronous bound" in captured.err
    assert "warning" not in captured.out and "status     completed" in captured.out
    assert main(argv + ["--set", "alpha=0.4/L"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_progress_follows_the_terminal(monkeypatch):
    import argparse
    import sys

    from convcheck.cli.common import wants_progress

    monkeypatch.delenv("TQDM_DELAY", raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert wants_progress(argparse.Namespace(progress=None)) is False
    assert wants_progress(argparse.Namespace(progress=True)) is True
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert wants_progress(argparse.Namespace(progress=None)) is True
    assert wants_progress(argparse.Namespace(progress=False)) is False
    import os

    assert os.environ["TQDM_DELAY"] == "2"  # a bar only for work past 2 s

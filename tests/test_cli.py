"""The convcheck command: list, inspect, run, and one-line errors naming the field."""

from __future__ import annotations

import json

import pytest

from convcheck.cli import main, parse_assignments


def test_list_and_inspect(tmp_path, capsys):
    assert main(["list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert "top-k" in listing["compressors"] and "logistic" in listing["objectives"]
    out = tmp_path / "p.json"
    assert (
        main(
            [
                "inspect",
                "--problem",
                "logistic",
                "--dataset",
                "breast-cancer",
                "--workers",
                "4",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    description = json.loads(out.read_text())
    assert description["optimum"]["cross_check"]["agrees"]
    assert description["optimum"]["grad_norm"] <= description["optimum"]["tolerance"]


def test_bad_input_exits_2_with_named_field(capsys):
    assert main(["inspect", "--problem", "ridge", "--dataset", "nosuch"]) == 2
    assert "'dataset'" in capsys.readouterr().err
    assert (
        main(["inspect", "--problem", "ridge", "--dataset", "diabetes", "--workers", "100000"]) == 2
    )
    assert "'workers'" in capsys.readouterr().err


def test_parse_assignments():
    assert parse_assignments(["k=3", "r=0.5", "s=true", "n=x"]) == {
        "k": 3,
        "r": 0.5,
        "s": True,
        "n": "x",
    }


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


def test_compare_prints_and_writes_the_table(tmp_path, capsys):
    out = tmp_path / "compare.json"
    argv = ["compare", "gd", "gd-sec:xi=0.2", "--problem", "logistic", "--workers", "4",
            "--split", "sorted", "--iters", "2000", "--target", "1e-4", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "gd-sec:xi=0.2" in printed and "bits up" in printed
    document = json.loads(out.read_text())
    assert [row["spec"] for row in document["rows"]] == ["gd", "gd-sec:xi=0.2"]
    assert main(argv[:2] + ["nosuch:k=1"] + argv[3:]) == 2
    assert "'algorithm'" in capsys.readouterr().err


def test_bench_quick(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--out", str(out)]) == 0
    assert "speed-up" in capsys.readouterr().out
    assert json.loads(out.read_text())["rows"]
    assert main(["bench", "--quick", "--repeats", "0"]) == 2
    assert "'repeats'" in capsys.readouterr().err


def test_list_names_sync_and_async_algorithms(capsys):
    assert main(["list", "--json"]) == 0
    algorithms = json.loads(capsys.readouterr().out)["algorithms"]
    assert algorithms["dgs"]["engine"] == "async" and algorithms["gd"]["engine"] == "sync"


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

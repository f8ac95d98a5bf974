"""Bad input, table-driven: every row exits with status 2 before any work, prints one message
naming the field or file and what is allowed, and no traceback.

Rows run the command in this process (``convcheck.cli.main``); files a row needs are written
into its own temporary folder first (``{tmp}`` in arguments and expectations is that folder).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from convcheck.cli import main
from tests.helpers import TINY_CASE


@dataclass(frozen=True)
class Row:
    argv: list[str]
    expect: list[str]  # substrings of the error (formatted with {tmp})
    files: dict[str, str | bytes] = field(default_factory=dict)
    absent: tuple[str, ...] = ()  # substrings that must not appear (file contents)


def run_row(argv: list[str]) -> list[str]:
    return ["run", "--algorithm", "gd", "--problem", "ridge", "--dataset", "diabetes",
            "--iters", "5", *argv]


def case(old: str, new: str) -> dict[str, str]:
    """A case folder holding TINY_CASE with one change."""
    assert old in TINY_CASE, old
    return {"cases/case.toml": TINY_CASE.replace(old, new, 1)}


VERIFY = ["verify", "{tmp}/cases", "--out", "{tmp}/report"]
#: TINY_CASE's dataset and its parameters (a file form takes other parameters).
DATASET = ('dataset = "synthetic-regression"\nworkers = 3\n'
           "dataset_params = { n_samples = 60, n_features = 4 }")

SECRET = b"API_TOKEN=s3cr3t-value\n"
PASSWD = b"operator:x:11:0:operator:/root:/sbin/nologin\n"

CLI_ROWS = {
    "unknown dataset": Row(run_row(["--dataset", "nosuch"]), ["'dataset'", "breast-cancer"]),
    "no workers": Row(run_row(["--workers", "0"]), ["'workers'", "an integer"]),
    "more workers than rows": Row(run_row(["--workers", "100000"]), ["'workers'", "442"]),
    "no iterations": Row(run_row(["--iters", "0"]), ["iter", ">= 1"]),
    "negative step": Row(run_row(["--set", "alpha=-1"]), ["'alpha'", "real number"]),
    "k above d": Row(["run", "--algorithm", "ef", "--problem", "ridge", "--dataset", "diabetes",
                      "--iters", "5", "--set", "k=1000"], ["d=10"]),
    "key given twice": Row(run_row(["--set", "alpha=0.1", "--set", "alpha=0.2"]),
                           ["'--set'", "given twice"]),
    "assignment without value": Row(run_row(["--set", "xi"]), ["'--set'", "KEY=VALUE"]),
    "dirichlet without alpha": Row(run_row(["--split", "dirichlet"]),
                                   ["'dirichlet_alpha'", "required"]),
    "negative dirichlet alpha": Row(run_row(["--split", "dirichlet", "--dirichlet-alpha", "-1"]),
                                    ["'dirichlet_alpha'", "real number"]),
    "negative lam": Row(run_row(["--lam", "-1"]), ["'lam'", "a real number in [0, inf]"]),
    "lam lost in rounding": Row(run_row(["--lam", "1e-300"]),
                                ["'lam'", "0 or a value in [", "rounding"]),
    "lam overflowing": Row(run_row(["--lam", "1e300"]), ["'lam'", "0 or a value in [", "overflow"]),
    "lam_nc on ridge": Row(run_row(["--lam-nc", "0.1"]), ["'lam_nc'", "nonconvex-logistic"]),
    "regression data for logistic": Row(run_row(["--problem", "logistic"]),
                                        ["'dataset'", "a classification dataset"]),
    "out in a missing folder": Row(run_row(["--out", "{tmp}/missing/trace.json"]),
                                   ["'--out'", "{tmp}/missing does not exist"]),
    "out with an unknown suffix": Row(run_row(["--out", "{tmp}/trace.xyz"]),
                                      ["'--out'", ".json, .csv, .parquet"]),
    "out is a folder": Row(run_row(["--out", "{tmp}/adir.json"]), ["'--out'", "existing folder"],
                           files={"adir.json/keep": "x"}),
    "out under a file": Row(run_row(["--out", "{tmp}/afile/trace.json"]),
                            ["'--out'", "is not a folder"], files={"afile": "x"}),
    "negative target": Row(run_row(["--target", "-1"]), ["'target'", "real number"]),
    "svmlight of a token file": Row(
        run_row(["--dataset", "svmlight:{tmp}/.env"]),
        ["{tmp}/.env", "line 1: the label (first entry) is not a number"],
        files={".env": SECRET}, absent=("s3cr3t", "API_TOKEN")),
    "svmlight of a password file": Row(
        run_row(["--dataset", "svmlight:{tmp}/passwd"]), ["{tmp}/passwd", "line 1"],
        files={"passwd": PASSWD}, absent=("operator", "nologin")),
    "missing svmlight file": Row(run_row(["--dataset", "svmlight:{tmp}/missing.svm"]),
                                 ["{tmp}/missing.svm", "expected an existing file"]),
    "missing idx folder": Row(run_row(["--dataset", "idx:{tmp}/nodir"]),
                              ["{tmp}/nodir", "expected a folder"]),
    "unknown dataset parameter": Row(run_row(["--dataset", "synthetic-regression",
                                              "--dataset-param", "bogus=1"]),
                                     ["'bogus'", "a parameter of dataset", "n_samples"]),
    "bad dataset parameter": Row(run_row(["--dataset", "synthetic-regression",
                                          "--dataset-param", "n_features=-2"]),
                                 ["'n_features'", "an integer"]),
    "async option on a sync algorithm": Row(run_row(["--tau-max", "3"]),
                                            ["'--tau-max'", "asynchronous algorithm"]),
    "compute trace quoting nothing": Row(
        ["run", "--algorithm", "async-sgd", "--problem", "logistic", "--dataset", "iris",
         "--workers", "2", "--iters", "5", "--compute-trace", "{tmp}/trace.csv"],
        ["{tmp}/trace.csv", "row 2, column 1 is not a number"],
        files={"trace.csv": "1.0\nx9secret\n"}, absent=("x9secret",)),
    "missing data folder": Row(run_row(["--data-dir", "{tmp}/missing"]),
                               ["{tmp}/missing", "--data-dir",
                                            "convcheck data download"]),
    "unknown algorithm": Row(["run", "--algorithm", "sgd", "--problem", "ridge", "--iters", "5"],
                             ["--algorithm", "invalid choice", "gd-sec"]),
    "unknown problem": Row(["run", "--algorithm", "gd", "--problem", "lasso", "--iters", "5"],
                           ["--problem", "invalid choice", "logistic"]),
    "inspect into a missing folder": Row(
        ["inspect", "--problem", "ridge", "--dataset", "diabetes", "--out", "{tmp}/no/p.json"],
        ["'--out'", "does not exist"]),
    "inspect with lam 1e-300": Row(
        ["inspect", "--problem", "logistic", "--lam", "1e-300", "--workers", "4"],
        ["'lam'", "0 or a value in ["]),
    "inspect unknown scaling": Row(["inspect", "--problem", "ridge", "--scaling", "weird"],
                                   ["--scaling", "invalid choice", "maxabs"]),
    "certify negative L": Row(["certify", "--algorithm", "gd", "--L", "-1", "--mu", "0",
                               "--set", "alpha=1"], ["'L'", "real number"]),
    "certify mu above L": Row(["certify", "--algorithm", "gd", "--L", "1", "--mu", "2",
                               "--set", "alpha=1"], ["'mu'"]),
    "certify into a missing folder": Row(
        ["certify", "--algorithm", "gd", "--L", "1", "--mu", "0.1", "--set", "alpha=1",
         "--out", "{tmp}/no/c.json"], ["'--out'", "does not exist"]),
    "compare unknown algorithm": Row(["compare", "gd", "nosuch:k=1", "--problem", "ridge",
                                      "--dataset", "diabetes", "--iters", "5", "--target", "1"],
                                     ["'algorithm'", "gd-sec"]),
    "compare into a missing folder": Row(
        ["compare", "gd", "--problem", "ridge", "--dataset", "diabetes", "--iters", "5",
         "--target", "1", "--out", "{tmp}/no/c.json"], ["'--out'", "does not exist"]),
    "list with a missing data folder": Row(["list", "--data-dir", "{tmp}/missing"],
                                           ["{tmp}/missing", "--data-dir",
                                            "convcheck data download"]),
    "bench without repeats": Row(["bench", "--quick", "--repeats", "0"], ["'repeats'"]),
    "verify an empty folder": Row(["verify", "{tmp}/empty", "--out", "{tmp}/report"],
                                  ["{tmp}/empty", "none found there", "*.toml"],
                                  files={"empty/readme.txt": "no cases"}),
    "verify a missing case": Row(["verify", "{tmp}/missing.toml", "--out", "{tmp}/report"],
                                 ["{tmp}/missing.toml", "an existing case file or folder"]),
    "verify with no jobs": Row([*VERIFY, "--jobs", "0"], ["'--jobs'", "an integer >= 1"],
                               files={"cases/case.toml": TINY_CASE}),
    "verify into a file": Row(["verify", "{tmp}/cases", "--out", "{tmp}/file"],
                              ["'--out'", "existing file"],
                              files={"cases/case.toml": TINY_CASE, "file": "x"}),
    "verify into a missing folder": Row(["verify", "{tmp}/cases", "--out", "{tmp}/no/report"],
                                        ["'--out'", "does not exist"],
                                        files={"cases/case.toml": TINY_CASE}),
    "verify into a user's folder": Row(
        ["verify", "{tmp}/cases", "--out", "{tmp}/notes"],
        ["'--out'", "has no .convcheck-report.json", "nothing in it is touched"],
        files={"cases/case.toml": TINY_CASE, "notes/index.md": "my notes"}),
    "verify a suite no case belongs to": Row([*VERIFY, "--suite", "full"],
                                             ["'suite'", "their suites: quick"],
                                             files={"cases/case.toml": TINY_CASE}),
    "verify with a missing data folder": Row([*VERIFY, "--data-dir", "{tmp}/missing"],
                                             ["{tmp}/missing", "--data-dir",
                                            "convcheck data download"],
                                             files={"cases/case.toml": TINY_CASE}),
}

ASYNC_CASE = """
description = "asynchronous SGD with recorded compute times"
[problem]
family = "logistic"
dataset = "wine"
workers = 1
[algorithm]
name = "async-sgd"
alpha = "0.1/L"
[async]
workers = 2
compute = {{ model = "trace", path = "{path}" }}
[run]
iterations = 20
[[checks]]
bound = "async-sparse-sgd/nonconvex"
"""

CASE_ROWS = {
    "compute trace outside the case's folder": Row(
        VERIFY, ["case.toml", "[async]", "'compute.path'", "/etc/passwd", "--allow-any-path"],
        {"cases/case.toml": ASYNC_CASE.format(path="/etc/passwd")}),
    "compute trace quoting nothing": Row(
        VERIFY, ["case.toml", "[async]", "'compute.path'", "times.csv: row 2, column 1 is not a "
                 "number", "a readable compute-time trace"],
        {"cases/case.toml": ASYNC_CASE.format(path="times.csv"),
         "cases/times.csv": "1.0,2.0\nx9secret,1.0\n"}, absent=("x9secret",)),

    "theta0 of the wrong length": Row(VERIFY, ["case.toml", "'theta0'", "d = 4"],
                                      case("target = 1e-6", "target = 1e-6\ntheta0 = [1, 2]")),
    "k above d": Row(VERIFY, ["case.toml", "'compressor'", "d=4"],
                     case('name = "gd"', 'name = "ef"\nk = 50')),
    "negative workers": Row(VERIFY, ["case.toml", "[problem]", "'workers'", "an integer"],
                            case("workers = 3", "workers = -3")),
    "negative lam": Row(VERIFY, ["case.toml", "[problem]", "'lam'", "a real number in [0, inf]"],
                        case("workers = 3", "workers = 3\nlam = -1")),
    "lam lost in rounding": Row(VERIFY, ["case.toml", "[problem]", "'lam'", "0 or a value in"],
                                case("workers = 3", "workers = 3\nlam = 1e-300")),
    "bogus dataset parameter": Row(VERIFY, ["case.toml", "[problem]", "'bogus'", "n_samples"],
                                   case("n_features = 4 }", "n_features = 4, bogus = 1 }")),
    "more workers than rows": Row(VERIFY, ["case.toml", "'workers'", "60"],
                                  case("workers = 3", "workers = 1000")),
    "dirichlet without alpha": Row(VERIFY, ["case.toml", "'dirichlet_alpha'", "required"],
                                   case("workers = 3", 'workers = 3\nsplit = "dirichlet"')),
    "system file as data": Row(
        VERIFY, ["case.toml", "'dataset'", "/etc/passwd", "--allow-any-path"],
        case('dataset = "synthetic-regression"', 'dataset = "svmlight:/etc/passwd"')),
    "data beside the case quoting nothing": Row(
        VERIFY, ["case.toml", "'dataset'", ".env", "line 1: the label"],
        {**case(DATASET, 'dataset = "svmlight:.env"'), "cases/.env": SECRET},
        absent=("s3cr3t", "API_TOKEN")),
    "missing data file": Row(VERIFY, ["case.toml", "'dataset'", "missing.svm", "existing file"],
                             case(DATASET, 'dataset = "svmlight:missing.svm"')),
    "unknown problem key": Row(VERIFY, ["case.toml", "'colour'", "unknown key", "'workers'"],
                               case("workers = 3", "workers = 3\ncolour = 1")),
    "no iterations": Row(VERIFY, ["case.toml", "'iterations'", "an integer >= 1"],
                         case("iterations = 50", "iterations = 0")),
    "unknown suite": Row(VERIFY, ["case.toml", "'suites'", "quick, full"],
                         case('suites = ["quick"]', 'suites = ["fast"]')),
    "unknown bound": Row(VERIFY, ["case.toml", "'bound'", "converges"],
                         case('bound = "converges"\n\n[[neg', 'bound = "nosuch"\n\n[[neg')),
    "converges without a target": Row(VERIFY, ["case.toml", "'target'", "target accuracy"],
                                      case("target = 1e-6\n", "")),
    "not TOML": Row(VERIFY, ["case.toml", "a valid TOML file"], {"cases/case.toml": "a = "}),
    "async table on a sync algorithm": Row(VERIFY, ["case.toml", "'async'", "asynchronous"],
                                           case("[run]", "[async]\nworkers = 2\n\n[run]")),
    "missing description": Row(VERIFY, ["case.toml", "'description'", "required"],
                               case('description = "GD converges on a tiny ridge problem"', "")),
    "unknown family": Row(VERIFY, ["case.toml", "'family'", "logistic"],
                          case('family = "ridge"', 'family = "lasso"')),
    "bad override": Row(VERIFY, ["case.toml", "too few iterations", "'alpha'"],
                        case('why = "two rounds',
                             'algorithm = { alpha = -1.0 }\nwhy = "two rounds')),
    "separable data without L2": Row(
        VERIFY, ["case.toml", "'lam'", "minimizer"],
        case('family = "ridge"\ndataset = "synthetic-regression"\nworkers = 3\n'
             'dataset_params = { n_samples = 60, n_features = 4 }',
             'family = "logistic"\ndataset = "iris"\nworkers = 3\nlam = 0')),
    "unknown injected bug": Row(VERIFY, ["case.toml", "'inject'", "frozen-error-memory"],
                                case('why = "two rounds', 'inject = "bogus"\nwhy = "two rounds')),
}


@pytest.mark.parametrize("row", [*CLI_ROWS.values(), *CASE_ROWS.values()],
                         ids=[*CLI_ROWS, *(f"case: {k}" for k in CASE_ROWS)])
def test_bad_input_exits_2_with_a_clear_message(row: Row, tmp_path, capsys):
    check_row(row, tmp_path, capsys)


def check_row(row: Row, tmp_path, capsys) -> str:
    for name, content in row.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    argv = [arg.format(tmp=tmp_path) for arg in row.argv]
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse's own refusals
        status = exit_.code
    captured = capsys.readouterr()
    error = captured.err
    assert status == 2, (status, error, captured.out)
    assert "Traceback" not in error + captured.out
    for text in row.expect:
        assert text.format(tmp=tmp_path) in error, (text, error)
    for text in row.absent:
        assert text not in error + captured.out
    assert not (tmp_path / "report").exists()  # nothing was written
    return error


def test_there_are_at_least_sixty_rows():
    """The issue's target, without the torch rows (tests/torch/test_bad_input.py)."""
    assert len(CLI_ROWS) + len(CASE_ROWS) >= 60

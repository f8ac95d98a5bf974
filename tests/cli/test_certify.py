"""``convcheck certify``."""

from __future__ import annotations

import json

import pytest

from convcheck.cli import main


def test_certify_prints_and_writes_the_certificate(tmp_path, capsys):
    out = tmp_path / "certificate.json"
    argv = ["certify", "--algorithm", "gd", "--L", "2", "--mu", "0.2", "--set", "alpha=1/L"]
    assert main(argv + ["--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "certified  rho = 0.9" in text and "re-check   numpy" in text
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


"""The convcheck command: list, inspect, and one-line errors naming the field."""

from __future__ import annotations

import json

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

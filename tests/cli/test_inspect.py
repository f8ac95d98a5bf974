"""``convcheck inspect``, and one-line errors naming the field."""

from __future__ import annotations

import json

from convcheck.cli import main


def test_inspect_writes_the_description(tmp_path):
    out = tmp_path / "p.json"
    argv = ["inspect", "--problem", "logistic", "--dataset", "breast-cancer", "--workers", "4",
            "--out", str(out)]
    assert main(argv) == 0
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


"""KEY=VALUE parsing (``--set``, ``--dataset-param``)."""

from __future__ import annotations

import pytest

from convcheck.errors import InputError
from convcheck.keyvalue import parse_assignments


def test_parse_assignments():
    assert parse_assignments(["k=3", "r=0.5", "s=true", "n=x"]) == {
        "k": 3,
        "r": 0.5,
        "s": True,
        "n": "x",
    }


def test_duplicate_keys_are_refused():
    with pytest.raises(InputError, match="given twice") as info:
        parse_assignments(["k=3", "k=4"])
    assert info.value.field == "--set"


def test_lists_of_numbers():
    assert parse_assignments(["k=3,3", "layers=[10, 20]", "xi=0.1,0.2", "n=a,b"]) == {
        "k": [3, 3],
        "layers": [10, 20],
        "xi": [0.1, 0.2],
        "n": "a,b",
    }


def test_list_parameters_from_the_command_line(capsys):
    from convcheck.cli import main

    common = ["run", "--problem", "ridge", "--dataset", "synthetic-regression", "--iters", "3",
              "--no-cross-check"]
    assert main([*common, "--algorithm", "lags", "--set", "layers=10,10", "--set", "k=3,2"]) == 0
    assert main([*common, "--algorithm", "lags", "--set", "layers=10,10",
                 "--set", "k=3,2,1"]) == 2
    assert "one integer per layer" in capsys.readouterr().err

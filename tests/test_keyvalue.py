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

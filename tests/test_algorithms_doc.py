"""docs/algorithms.md cannot silently fall behind the code: every registered algorithm, its
parameters, every compressor and every bound are described there."""

from __future__ import annotations

import re
from pathlib import Path

from convcheck.algorithms import ALGORITHMS
from convcheck.compressors import COMPRESSORS
from convcheck.theory import BOUNDS

DOC = Path(__file__).parents[1] / "docs" / "algorithms.md"


def sections() -> dict[str, str]:
    """Each ``### `name` …`` section of §3, by the names in its title."""
    text = DOC.read_text(encoding="utf-8")
    out = {}
    for block in re.split(r"\n(?=### )", text):
        title = block.splitlines()[0]
        for name in re.findall(r"`([a-z0-9-]+)`", title):
            out[name] = block
    return out


def test_every_algorithm_and_its_parameters_are_described():
    described = sections()
    for name, cls in ALGORITHMS.items():
        assert name in described, f"{name} has no section in docs/algorithms.md"
        for param in cls.parameters:
            assert re.search(rf"`{param.name}[` ]", described[name]), (name, param.name)


def test_every_compressor_and_bound_is_listed():
    text = DOC.read_text(encoding="utf-8")
    for name in COMPRESSORS:
        assert f"| `{name}` |" in text, name
    for name in BOUNDS:
        assert f"`{name}`" in text, name

"""The package's public API: every name offered resolves, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import convcheck


def test_every_public_name_resolves():
    for name in convcheck.__all__:
        assert getattr(convcheck, name) is not None, name
    assert set(convcheck.__all__) <= set(dir(convcheck))


def test_import_loads_neither_scipy_nor_hypothesis_nor_torch():
    code = ("import sys, convcheck; print(sorted(m for m in ('scipy', 'hypothesis', 'torch', "
            "'cvxpy', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_an_unknown_name_is_an_attribute_error():
    try:
        convcheck.nosuch  # noqa: B018
    except AttributeError as error:
        assert "nosuch" in str(error)
    else:
        raise AssertionError("convcheck.nosuch resolved")

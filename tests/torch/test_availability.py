"""torch stays optional: ``import convcheck`` never imports it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.torch.conftest import HAVE_TORCH


def test_torch_tests_need_torch() -> None:
    if not HAVE_TORCH:
        pytest.skip("torch is not installed: the torch backend tests (tests/torch) are skipped")
    import convcheck.torch

    assert convcheck.torch.make_compressor("top-k", k=1).name == "top-k"


def test_import_convcheck_does_not_import_torch() -> None:
    code = "import sys, convcheck, convcheck.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

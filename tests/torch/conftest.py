"""The torch backend tests run only where torch is installed.

Without torch, every module here except ``test_availability.py`` is left uncollected, and
that module's test is skipped with a message saying why.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

HAVE_TORCH = importlib.util.find_spec("torch") is not None


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    if HAVE_TORCH or collection_path.name in ("test_availability.py", "conftest.py"):
        return None
    return collection_path.suffix == ".py" or None

if HAVE_TORCH:
    import torch

    # One intra-op thread: the tests' tensors are small, and on a busy 2-core machine torch's
    # spinning worker threads cost far more than they save. Results do not depend on it.
    torch.set_num_threads(1)

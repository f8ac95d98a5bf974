"""The names a case may give a check (``bound = ...`` in a case file)."""

from __future__ import annotations

#: The in-expectation bound of asynchronous sparsified SGD, checked on the mean over seeds.
ASYNC_BOUND = "async-sparse-sgd/nonconvex"


def known_checks() -> tuple[str, ...]:
    """Names a case may use in ``bound``: every per-run bound of the theory, the
    asynchronous bound in expectation, and ``converges``."""
    from convcheck.theory import BOUNDS

    return (*BOUNDS, ASYNC_BOUND, "converges")

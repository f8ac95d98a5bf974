"""Where independent grid tasks run: this process, local worker processes, or a Dask cluster.

:func:`make_executor` returns a context manager with one method, ``map(function, items)``: the
results in the order of ``items``. ``function`` must be a module-level function and the items
plain data (they are pickled).

* ``jobs = 1`` and no scheduler: in this process.
* ``jobs > 1``: a :class:`concurrent.futures.ProcessPoolExecutor` of fresh interpreters
  (``spawn``: forked workers deadlock inside Clarabel once the parent has solved an SDP).
* ``scheduler="tcp://host:port"``: the workers of a running Dask distributed scheduler (e.g.
  ``dask scheduler`` + ``dask worker``, or a SLURM allocation through dask-jobqueue). Needs the
  optional extra ``convcheck[cluster]``; an address that does not answer within ``timeout``
  seconds is a clear error, not a hang.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol

from convcheck.errors import InputError, check_int, check_real

#: Seconds to wait for a Dask scheduler to answer.
CONNECT_TIMEOUT = 10.0


class Executor(Protocol):
    def map(self, function: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]: ...


class _InProcess:
    def map(self, function: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        return [function(item) for item in items]


class _Processes:
    def __init__(self, pool: ProcessPoolExecutor) -> None:
        self.pool = pool

    def map(self, function: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        return list(self.pool.map(function, list(items)))


class _Dask:
    def __init__(self, client: Any) -> None:
        self.client = client

    def map(self, function: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        futures = self.client.map(function, list(items), pure=False)
        return self.client.gather(futures)


@contextmanager
def make_executor(
    jobs: int = 1, scheduler: str | None = None, timeout: float = CONNECT_TIMEOUT
) -> Iterator[Executor]:
    """An executor for ``jobs`` local processes, or for the Dask scheduler at ``scheduler``.

    Raises
    ------
    InputError
        ``jobs < 1``; ``scheduler`` given but Dask is not installed, the address is malformed,
        or no scheduler answers within ``timeout`` seconds.
    """
    jobs = check_int("jobs", jobs, 1)
    timeout = check_real("timeout", timeout, 0.0, low_open=True)
    if scheduler is not None:
        with _dask_client(scheduler, timeout) as client:
            yield _Dask(client)
        return
    if jobs == 1:
        yield _InProcess()
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        yield _Processes(pool)


@contextmanager
def _dask_client(address: str, timeout: float) -> Iterator[Any]:
    try:
        from distributed import Client
    except ImportError:
        raise InputError(
            "scheduler", address,
            "a Dask scheduler address with Dask installed: pip install 'convcheck[cluster]'",
        ) from None
    if not isinstance(address, str) or "://" not in address and ":" not in address:
        raise InputError("scheduler", address, "an address like tcp://host:8786")
    try:
        client = Client(address, timeout=f"{timeout}s")
    except Exception as error:  # noqa: BLE001 — any failure to connect is the same user error
        # (a closed port times out; something else on the port may answer garbage)
        raise InputError(
            "scheduler", address,
            f"a reachable Dask scheduler (e.g. tcp://host:8786); none answered within "
            f"{timeout:g} s ({type(error).__name__}: {str(error)[:200]})",
        ) from None
    try:
        yield client
    finally:
        client.close()

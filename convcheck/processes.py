"""Worker processes that never outlive their parent, and termination handled like Ctrl-C.

- :func:`worker_pool` runs a ``spawn`` process pool whose workers ignore Ctrl-C (the parent
  handles it and stops them) and die with their parent: on Linux the kernel kills a worker
  when its parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), even while it computes inside a
  native library; everywhere a watcher thread in the worker exits it within
  :data:`WATCH_SECONDS` once its parent is gone. The multiprocessing resource tracker exits by
  itself once the parent and the workers have (it reads until every one of them has closed its
  end of a pipe).
- :func:`stop_pool` terminates the workers at once (an interrupted run does not wait for the
  cases under way).
- :func:`interruptible` makes ``SIGTERM`` raise :class:`Interrupted` (a
  :class:`KeyboardInterrupt`) like ``SIGINT`` does, so both unwind the same way: cleanup in
  ``finally`` blocks, one line, exit status ``128 + signal``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

#: Seconds between two checks of the portable parent watcher.
WATCH_SECONDS = 0.5
#: Seconds a worker gets to exit after SIGTERM before it is killed.
TERMINATE_SECONDS = 2.0
_PR_SET_PDEATHSIG = 1


class Interrupted(KeyboardInterrupt):
    """The process was asked to stop (``SIGINT`` or ``SIGTERM``); ``signum`` says which."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_status(interrupt: KeyboardInterrupt) -> int:
    """``128 + signal number``: 130 for Ctrl-C / ``SIGINT``, 143 for ``SIGTERM``."""
    return 128 + getattr(interrupt, "signum", signal.SIGINT)


def interrupt_name(interrupt: KeyboardInterrupt) -> str:
    """``"SIGINT"`` or ``"SIGTERM"``."""
    return signal.Signals(getattr(interrupt, "signum", signal.SIGINT)).name


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Inside, ``SIGTERM`` raises :class:`Interrupted` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_interrupted(signum, frame):
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_now_on_signals() -> None:
    """From now on, ``SIGINT`` or ``SIGTERM`` flushes the standard streams and ends the
    process at once with ``128 +`` the signal number. For a command whose work and output are
    complete: an interrupt while the interpreter shuts down then exits as every interrupt does,
    instead of a ``KeyboardInterrupt`` escaping the program (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def leave(signum, frame):
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(128 + signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, leave)


def die_with_parent(parent: int) -> None:
    """Make this process exit when ``parent`` (its parent's id) is gone."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request above took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="convcheck-parent-watch", daemon=True).start()


def _start_worker(parent: int) -> None:
    """Initializer of every pool worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    die_with_parent(parent)


@contextlib.contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` fresh interpreters (``spawn``) that die with this process.

    The workers and the resource tracker are started at once, with ``SIGINT`` ignored while
    they start (a Ctrl-C in those milliseconds would otherwise print their tracebacks; they
    inherit the ignored signal and keep it). Leaving the block normally waits for the pool to
    shut down; leaving it by an exception (an interrupt included) stops the workers at once
    (:func:`stop_pool`).
    """
    context = multiprocessing.get_context("spawn")
    with _sigint_ignored():
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                   initializer=_start_worker, initargs=(os.getpid(),))
        for _ in range(workers):
            pool._adjust_process_count()  # start them now, not at the first submissions
    try:
        yield pool
    except BaseException:
        stop_pool(pool)
        raise
    pool.shutdown(wait=True)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and terminate the workers now (then kill the stubborn)."""
    processes = list((pool._processes or {}).values())  # no public accessor before 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(OSError, ValueError):
            process.terminate()
    deadline = time.monotonic() + TERMINATE_SECONDS
    for process in processes:
        with contextlib.suppress(OSError, ValueError):
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()

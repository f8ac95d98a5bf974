"""Simulated parameter server: synchronous rounds, batches of runs, asynchronous events, bit
ledger, traces."""

from convcheck.engine.batch import run_batch
from convcheck.engine.common import TARGET_METRICS, Recorder, RunsRecorder
from convcheck.engine.events import ASYNC_COLUMNS, run_async
from convcheck.engine.oracle import Oracle
from convcheck.engine.sync import run
from convcheck.engine.trace import BASE_COLUMNS, FORMATS, Ledger, Run, write_run

__all__ = [
    "ASYNC_COLUMNS",
    "BASE_COLUMNS",
    "FORMATS",
    "TARGET_METRICS",
    "Ledger",
    "Oracle",
    "Recorder",
    "Run",
    "RunsRecorder",
    "run",
    "run_async",
    "run_batch",
    "write_run",
]

"""Simulated parameter server: synchronous rounds, bit ledger, traces and their export."""

from convcheck.engine.oracle import Oracle
from convcheck.engine.sync import TARGET_METRICS, run
from convcheck.engine.trace import BASE_COLUMNS, FORMATS, Ledger, Run, write_run

__all__ = [
    "BASE_COLUMNS",
    "FORMATS",
    "TARGET_METRICS",
    "Ledger",
    "Oracle",
    "Run",
    "run",
    "write_run",
]

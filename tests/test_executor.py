"""Executors: results in order in this process, in spawned processes and on a Dask cluster
(a LocalCluster, skipped without dask); an unreachable scheduler is an error naming the field
within the timeout, not a hang."""

from __future__ import annotations

import time

import pytest

from convcheck.errors import InputError
from convcheck.executor import make_executor


def test_local_executors_keep_the_order():
    items = [-3, 1, -2, 5]
    with make_executor(1) as executor:
        assert executor.map(abs, items) == [3, 1, 2, 5]
    with make_executor(2) as executor:
        assert executor.map(abs, items) == [3, 1, 2, 5]


def test_dask_local_cluster_runs_the_tasks():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        with make_executor(scheduler=cluster.scheduler_address, timeout=10) as executor:
            assert executor.map(abs, [-1, 2, -3]) == [1, 2, 3]


def test_unreachable_scheduler_is_a_clear_error_within_the_timeout():
    pytest.importorskip("distributed")
    started = time.perf_counter()
    with pytest.raises(InputError, match="'scheduler'") as error:
        with make_executor(scheduler="tcp://127.0.0.1:1", timeout=1):
            pass
    assert time.perf_counter() - started < 15
    assert "none answered within 1 s" in str(error.value)
    with pytest.raises(InputError, match="'scheduler'"):
        with make_executor(scheduler="no-address"):
            pass


def test_jobs_are_validated():
    with pytest.raises(InputError, match="'jobs'"):
        with make_executor(0):
            pass

"""Failures: a rank that dies or hangs makes the others stop with a clear error, in time."""

from __future__ import annotations

import pytest
import torch

from convcheck.errors import InputError
from convcheck.torch.distributed.group import (
    DistributedFailure,
    check_visible_gpus,
    choose_backend,
    start_group,
)
from tests.torch.distributed.helpers import check_success, run_isolated, run_ranks

GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0

CONFIG = """
[data]
dataset = "digits"
scaling = "maxabs"
train_size = 240
[model]
name = "mlp"
hidden = [8]
[run]
batch_size = 8
epochs = 3
threads = 1
[distributed]
backend = "gloo"
timeout_s = {timeout}
[[algorithm]]
name = "{name}"
alpha = 0.1
{extra}
"""


def failing_run(tmp_path, name, extra, fault, timeout):
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(timeout=timeout, name=name, extra=extra))
    return run_ranks(3, [str(config), "--out", str(tmp_path / "out"), "--quiet"],
                     tmp_path / "ranks", fault=fault, deadline=timeout + 60)


def check_clear_errors(results, victim, exit_status, within):
    """The others exit with status 3 and one line, ``within`` seconds of the fault (timed
    from the fault, not from the start: starting three interpreters on a loaded machine takes
    anything from 5 to 60 s)."""
    assert results[victim].exitcode == exit_status
    for result in results:
        if result.rank == victim:
            continue
        assert result.exitcode == 3, result.stderr[-2000:]
        assert f"convcheck: error: rank {result.rank} of 3:" in result.stderr
        assert "failed during" in result.stderr and "Traceback" not in result.stderr
        assert result.after_fault is not None and result.after_fault < within


def test_a_killed_rank_stops_the_others_with_a_clear_error(tmp_path) -> None:
    """Rank 2 (a worker) dies (``os._exit``) at its 4th minibatch of a parameter-server run;
    the server and the other worker notice the closed connection long before the 60 s timeout
    and exit with status 3 and a one-line error naming the rank and the step."""
    results = failing_run(tmp_path, "bidir-topk", "ratio_up = 0.05\nratio_down = 0.05",
                          (2, 4, "exit"), timeout=60)
    check_clear_errors(results, 2, 17, within=30)


@pytest.mark.slow
def test_a_killed_rank_in_an_allgather_run(tmp_path) -> None:
    results = failing_run(tmp_path, "ef", "ratio = 0.05", (2, 4, "exit"), timeout=60)
    check_clear_errors(results, 2, 17, within=30)


def check_timeouts(results, timeout):
    """The two others report a timeout within ``timeout`` plus a margin for a loaded machine
    (timed from the moment rank 1 started hanging). The hung rank itself is not judged: it is
    either still sleeping when the test kills it or was taken down when the others' connections
    closed (gloo may abort it), never a success."""
    assert results[1].exitcode != 0
    for result in (results[0], results[2]):
        assert result.exitcode == 3, result.stderr[-2000:]
        assert f"rank {result.rank} of 3:" in result.stderr and "timeout" in result.stderr
        assert result.after_fault is not None and result.after_fault < timeout + 25


def test_a_hung_rank_times_the_others_out(tmp_path) -> None:
    """Rank 1 hangs at its 4th minibatch of a parameter-server run; with a 4 s timeout the
    server and the other worker report a timeout instead of waiting forever."""
    results = failing_run(tmp_path, "bidir-topk", "ratio_up = 0.05\nratio_down = 0.05",
                          (1, 4, "hang"), timeout=4)
    check_timeouts(results, 4)


@pytest.mark.slow
def test_a_hung_worker_times_out_the_asynchronous_server(tmp_path) -> None:
    results = failing_run(tmp_path, "dgs", "", (1, 4, "hang"), timeout=4)
    check_timeouts(results, 4)


def test_backend_choice() -> None:
    assert choose_backend("gloo") == "gloo"
    assert choose_backend("auto") == ("nccl" if torch.cuda.is_available() else "gloo")
    with pytest.raises(InputError, match="'distributed.backend'"):
        choose_backend("mpi")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA or NCCL is not available"):
            choose_backend("nccl")


def test_outside_torchrun_the_environment_is_named(monkeypatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(InputError, match="'RANK'.*torchrun"):
        start_group("gloo")


def test_an_unreachable_rendezvous_is_a_clear_failure(tmp_path) -> None:
    """Rank 0 of 2 alone: joining times out (1 s) with a DistributedFailure, not a hang (in a
    subprocess: it tries to make a group)."""
    run_isolated("tests.torch.distributed.test_group:lonely_rank", str(tmp_path), timeout=120)


def lonely_rank(folder: str) -> None:
    """The body of :func:`test_an_unreachable_rendezvous_is_a_clear_failure`."""
    from pathlib import Path

    with pytest.raises(DistributedFailure, match="joining the gloo process group failed"):
        start_group("gloo", timeout_s=1, rank=0, world_size=2,
                    init_method=f"file://{Path(folder) / 'rendezvous'}")


def test_more_nccl_ranks_than_gpus_is_refused_with_both_numbers() -> None:
    check_visible_gpus(2, 1, 2)
    check_visible_gpus(1, 0, 8)
    with pytest.raises(InputError, match=r"'--nproc-per-node'.*2 NCCL ranks.*1 visible CUDA"
                                         r".*at most 1 ranks.*--nproc-per-node 1.*'gloo'"):
        check_visible_gpus(2, 1, 1)
    with pytest.raises(InputError, match=r"3 NCCL ranks.*2 visible.*at most 2"):
        check_visible_gpus(3, 0, 2)
    with pytest.raises(InputError, match=r"0 visible.*'gloo'"):
        check_visible_gpus(1, 0, 0)


def test_a_cuda_device_without_cuda_is_refused() -> None:
    if GPUS:
        pytest.skip("CUDA is visible here: the refusal is for machines without it")
    with pytest.raises(InputError, match="'run.device'"):
        start_group("gloo", device="cuda", rank=0, world_size=1, init_method="file:///dev/null")


def small_run(tmp_path, backend: str, device: str, world: int):
    """One epoch of a small MLP on ``world`` ranks: a parameter server, an all-gather, a DDP
    hook and LAGS (the modes that move CUDA tensors through the backend)."""
    config = tmp_path / "config.toml"
    config.write_text(f"""
[data]
dataset = "digits"
scaling = "maxabs"
train_size = 64
[model]
name = "mlp"
hidden = [8]
[run]
batch_size = 8
epochs = 1
threads = 1
device = "{device}"
[distributed]
backend = "{backend}"
timeout_s = 60
[[algorithm]]
label = "bidir"
name = "bidir-topk"
alpha = 0.1
ratio_up = 0.1
ratio_down = 0.1
[[algorithm]]
label = "ef allgather"
name = "ef"
alpha = 0.1
ratio = 0.1
[[algorithm]]
label = "ef hook"
name = "ef"
alpha = 0.1
ratio = 0.1
[algorithm.distributed]
mode = "ddp"
[[algorithm]]
label = "lags"
name = "lags"
alpha = 0.1
ratio = 0.1
""")
    return run_ranks(world, [str(config), "--out", str(tmp_path / "out"), "--quiet"],
                     tmp_path / "ranks", deadline=300)


@pytest.mark.skipif(GPUS < 1, reason="needs a CUDA device (none visible)")
def test_gloo_with_cuda_tensors_shares_one_gpu(tmp_path) -> None:
    """The fallback when a node has fewer GPUs than ranks: 3 gloo ranks, CUDA tensors."""
    results = small_run(tmp_path, "gloo", "cuda", 3)
    check_success(results)
    assert (tmp_path / "out" / "results.json").exists()


@pytest.mark.skipif(GPUS < 1, reason="needs a CUDA device (none visible)")
def test_too_many_nccl_ranks_exit_with_a_clear_error(tmp_path) -> None:
    """``GPUS + 1`` NCCL ranks on this node: every rank exits with status 2 and the one-line
    error, before any CUDA call (not "invalid device ordinal")."""
    results = small_run(tmp_path, "nccl", "cuda", GPUS + 1)
    for result in results:
        assert result.exitcode == 2, result.stderr[-2000:]
        assert f"{GPUS + 1} NCCL ranks on this node, which has {GPUS} visible" in result.stderr
        assert "Traceback" not in result.stderr and "invalid device ordinal" not in result.stderr


@pytest.mark.skipif(GPUS < 2, reason=f"NCCL needs >= 2 CUDA devices; {GPUS} visible")
def test_nccl_on_two_gpus(tmp_path) -> None:
    results = small_run(tmp_path, "nccl", "cuda", 2)
    check_success(results)
    assert (tmp_path / "out" / "results.json").exists()


@pytest.mark.slow
def test_the_small_run_passes_on_cpu(tmp_path) -> None:
    """The GPU tests' run, on gloo and CPU tensors (so that its config is known to work)."""
    results = small_run(tmp_path, "gloo", "cpu", 2)
    check_success(results)

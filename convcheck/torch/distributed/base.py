"""What every distributed run is, and the epoch loop with evaluation and checkpoints.

A :class:`DistributedRun` is one algorithm on the process group: ``step`` does one round on
this rank (its part of the protocol: the algorithm's worker or server half on the states this
rank holds, :mod:`convcheck.algorithms.base`), the bit ledger prices every message with the
algorithm's codecs exactly as :class:`~convcheck.torch.runner.Runner` does in one process, and
``state_dict`` holds this rank's share of the state. The worker of a rank draws its minibatches
from :meth:`~convcheck.torch.simulation.Simulation.worker_batch`, i.e. from the same stream as
worker ``m`` of the single-process simulation with the same seed, which is what makes the
multi-process runs comparable with (and, for the synchronous parameter server, equal to) the
simulation. A worker's randomized compressor draws from its own generator (seeded with the run's
seed and the worker's index), not from the simulation's single ``(M, d)`` draw: such runs have
the same distribution as the simulation's, not the same draws.

:func:`run_epochs` is the loop every mode shares: steps, then at each epoch's end one
all-reduce of the statistics (mean training loss over the workers, error norms, wire bytes),
the evaluation of rank 0's model, one history record (on rank 0) and, if asked, one checkpoint
file per rank.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from convcheck.algorithms.base import Algorithm
from convcheck.errors import InputError, check_int
from convcheck.torch.checkpoint import (
    check_matches,
    load_checkpoint,
    save_checkpoint,
    state_fields,
)
from convcheck.torch.distributed.wire import Channel
from convcheck.torch.ledger import BitLedger
from convcheck.torch.simulation import Simulation

Tensor = torch.Tensor


class DistributedRun(abc.ABC):
    """One algorithm on the process group, seen from one rank.

    Parameters
    ----------
    label : str
    algorithm : Algorithm
        Its worker and server halves do the arithmetic. Its ``batch_size`` must be none (the
        minibatch is the oracle's).
    channel : Channel
    oracle : Simulation
        The minibatch stream and gradients of this rank's worker (the server ignores it).
    theta0 : Tensor of shape (D,)
        The same initial model on every rank.
    seed : int
        Seeds the worker's generator (randomized compressors).

    Attributes
    ----------
    workers : int
        ``M``: ranks that compute gradients.
    worker : int or None
        This rank's worker index ``m`` (``None`` on a parameter server).
    ledger : BitLedger or None
        Bits per worker and round; complete on rank 0 (on every rank for all-gather modes).
    generator : torch.Generator or None
        The worker's generator (``None`` on a server).
    steps : int
    status : {"running", "diverged"}
    """

    mode: ClassVar[str]

    def __init__(
        self, label: str, algorithm: Algorithm, channel: Channel, oracle: Simulation,
        theta0: Tensor, *, seed: int = 0,
    ) -> None:
        if getattr(algorithm, "batch_size", None) is not None:
            raise InputError("batch_size", algorithm.batch_size,
                             "none: a distributed run's minibatch is run.batch_size")
        self.label, self.algorithm, self.channel, self.oracle = label, algorithm, channel, oracle
        self.dim = theta0.shape[0]
        self.dtype = theta0.dtype
        self.steps = 0
        self.status = "running"
        self.loss_sum, self.loss_count = 0.0, 0
        self.ledger: BitLedger | None = None
        self.generator: torch.Generator | None = None
        if self.worker is not None:
            self.generator = torch.Generator(device=theta0.device).manual_seed(
                worker_seed(check_int("seed", seed, 0), self.worker))

    #: Rank 0 is a server and ranks 1…N−1 the ``M = N − 1`` workers; else every rank is one.
    server: ClassVar[bool] = False

    @property
    def workers(self) -> int:
        """``M``."""
        return self.channel.size - 1 if self.server else self.channel.size

    @property
    def worker(self) -> int | None:
        """This rank's worker index, or ``None`` on the server."""
        if not self.server:
            return self.channel.rank
        return None if self.channel.rank == 0 else self.channel.rank - 1

    @abc.abstractmethod
    def step(self) -> None:
        """One round of this rank's part of the protocol (sets ``status`` on divergence)."""

    @abc.abstractmethod
    def model(self) -> Tensor:
        """This rank's current model ``(D,)`` (rank 0's is evaluated)."""

    @abc.abstractmethod
    def tensors(self) -> dict[str, Any]:
        """This rank's state (tensors and numbers: the algorithm's states, model copies, ...)
        for checkpoints."""

    @abc.abstractmethod
    def load_tensors(self, values: dict[str, Any]) -> None:
        """Restore :meth:`tensors` (tensors already on this rank's device)."""

    def statistics(self) -> dict[str, tuple[float, float]]:
        """``name → (sum, count)`` over this rank; averaged over all ranks at each epoch's end.
        Every rank must return the same names."""
        return {"train_loss": (self.loss_sum, float(self.loss_count))}

    def finish(self) -> None:
        """End-of-run protocol (the asynchronous server's last deliveries); none by default."""
        self.channel.context = f"{self.label}, finished"

    def report(self) -> dict[str, Any]:
        """Extra results of the mode (timings, staleness, ...), on rank 0."""
        return {}

    def run(self, steps: int) -> None:
        """Up to ``steps`` rounds; stops once the run diverged."""
        for _ in range(steps):
            if self.status != "running":
                return
            self.channel.context = f"{self.label}, step {self.steps + 1}"
            self.step()
            self.steps += 1

    def note_loss(self, losses: Tensor | None = None) -> bool:
        """Add this worker's minibatch loss (default: the oracle's last) to the epoch's sum;
        whether it is finite."""
        losses = self.oracle.last_losses if losses is None else losses.detach().reshape(-1)
        loss = float(losses.sum())
        self.loss_sum += loss
        self.loss_count += int(losses.numel())
        return bool(np.isfinite(loss))

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mode": self.mode,
            "label": self.label,
            "algorithm": self.algorithm.describe(),
            "rank": self.channel.rank,
            "world_size": self.channel.size,
            "dim": self.dim,
            "steps": self.steps,
            "status": self.status,
            "oracle": self.oracle.state_dict(),
            "tensors": {k: v.detach().clone() if isinstance(v, Tensor) else v
                        for k, v in self.tensors().items()},
            "bytes": [self.channel.bytes_sent, self.channel.bytes_received],
        }
        if self.generator is not None:
            out["generator"] = self.generator.get_state()
        if self.ledger is not None:
            saved = self.ledger.state_dict()
            out["ledger"] = {
                "workers": saved["workers"],
                "up": torch.as_tensor(saved["up"]),
                "down": torch.as_tensor(saved["down"]),
            }
        return out

    def identity(self) -> dict[str, Any]:
        """What a checkpoint of this run must record: mode, algorithm, world size, rank, ``D``."""
        return {"mode": self.mode, "algorithm": self.algorithm.describe(),
                "world_size": self.channel.size, "rank": self.channel.rank, "dim": self.dim}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output; a checkpoint of another run is refused, naming
        what differs (:meth:`identity`)."""
        check_matches("checkpoint", saved, self.identity())
        self.steps, self.status = int(saved["steps"]), saved["status"]
        self.oracle.load_state_dict(saved["oracle"])
        device = self.channel.group.device
        self.load_tensors({k: v.to(device) if isinstance(v, Tensor) else v
                           for k, v in saved["tensors"].items()})
        if self.generator is not None:
            self.generator.set_state(saved["generator"])
        self.channel.bytes_sent, self.channel.bytes_received = saved["bytes"]
        if self.ledger is not None:
            ledger = saved["ledger"]
            self.ledger.load_state_dict({
                "workers": ledger["workers"], "up": ledger["up"].numpy(),
                "down": ledger["down"].numpy(),
            })


def error_statistic(workers: Any) -> tuple[float, float]:
    """``(‖e_m‖², 1)`` of a worker state with error memories (a field ``errors``, one row),
    else ``(0, 0)``: summed over the ranks, the statistic ``error_norm_sq`` is
    ``(1/M) Σ_m ‖e_m‖²``, or NaN for algorithms without one."""
    errors = None if workers is None else getattr(workers, "errors", None)
    if errors is None:
        return 0.0, 0.0
    return float(errors.double().square().sum()), 1.0


def worker_seed(seed: int, worker: int) -> int:
    """The seed of worker ``worker``'s generator in a run seeded with ``seed``."""
    return int(np.random.SeedSequence([seed, worker]).generate_state(1)[0])


def prefixed(prefix: str, state: Any) -> dict[str, Any]:
    """The fields of an algorithm's state dataclass as ``{prefix.field: value}``."""
    return {f"{prefix}.{name}": value for name, value in state_fields(state).items()}


def unprefixed(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    """The entries of :func:`prefixed` output under ``prefix``, by field name."""
    head = prefix + "."
    return {k[len(head):]: v for k, v in values.items() if k.startswith(head)}


def checkpoint_path(folder: str | Path, rank: int, world_size: int) -> Path:
    """One checkpoint file per rank."""
    return Path(folder) / f"rank-{rank}-of-{world_size}.pt"


def run_epochs(
    run: DistributedRun,
    epochs: int,
    steps_per_epoch: int,
    evaluate: Callable[[Tensor], dict[str, float]],
    *,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Run until ``epochs`` epochs are recorded; the history (complete on rank 0).

    :meth:`DistributedRun.finish` is called after the last epoch, before its checkpoint.

    ``checkpoint``: a folder; every rank saves its state there after each epoch and, with
    ``resume``, continues from it (all ranks must find the same step, checked by an
    all-reduce). ``evaluate`` is called on rank 0 only.
    """
    channel = run.channel
    history: list[dict[str, Any]] = []
    path = None if checkpoint is None else checkpoint_path(checkpoint, channel.rank, channel.size)
    channel.context = f"{run.label}, resume check"
    if resume and path is not None and _resumable(channel, Path(checkpoint), path):
        saved = load_checkpoint(path)
        check_matches(path, saved["run"], run.identity())
        run.load_state_dict(saved["run"])
        history = list(saved["history"])
    low, high = channel.all_reduce_max([-run.steps, run.steps])
    if -low != high:
        raise InputError(
            "checkpoint", f"ranks at steps {-low:g} to {high:g}",
            "one checkpoint per rank, all of the same epoch (delete the folder to start over)",
        )
    if not history:
        history.append(_record(run, 0, evaluate, {}, 0.0))
    while len(history) <= epochs and run.status == "running":
        started, before = time.perf_counter(), run.steps
        run.loss_sum, run.loss_count = 0.0, 0
        run.run(steps_per_epoch)
        seconds = time.perf_counter() - started
        channel.context = f"{run.label}, end of epoch {len(history)}"
        statistics = _reduce(run)
        record = _record(run, len(history), evaluate, statistics, seconds)
        record["step_s"] = seconds / max(1, run.steps - before)
        history.append(record)
        if progress and channel.rank == 0:
            print(_format(run.label, record), flush=True)
        if len(history) > epochs or run.status != "running":
            run.finish()  # before the last checkpoint, which is then the final state
        if path is not None:
            save_checkpoint(path, {"run": run.state_dict(), "history": history})
    return history


def _resumable(channel: Channel, folder: Path, path: Path) -> bool:
    """Whether every rank has its checkpoint file in ``folder`` (``path`` is this rank's).

    None has one: ``False`` (this algorithm had not started; it starts from scratch), unless
    the folder holds the files of another world size (an error naming them). Some ranks have
    theirs and others not: an error naming the missing files. All ranks decide alike (one
    all-reduce of the missing ranks).
    """
    missing = [0.0] * channel.size
    missing[channel.rank] = 0.0 if path.is_file() else 1.0
    absent = [rank for rank, flag in enumerate(channel.all_reduce_sum(missing)) if flag]
    if not absent:
        return True
    if len(absent) < channel.size:
        files = ", ".join(checkpoint_path(folder, rank, channel.size).name for rank in absent)
        raise InputError("checkpoint", str(folder),
                         f"one file per rank of the {channel.size} ranks; missing: {files}")
    others = sorted(p.name for p in folder.glob("rank-*-of-*.pt")) if folder.is_dir() else []
    if others:
        raise InputError("checkpoint", str(folder),
                         f"the checkpoints of a run on {channel.size} processes; this folder "
                         f"holds another world size's ({', '.join(others[:4])}"
                         f"{', …' if len(others) > 4 else ''}): resume with that many "
                         "processes, or use a new --checkpoint-dir")
    return False


def _reduce(run: DistributedRun) -> dict[str, float]:
    """Means over ranks of :meth:`DistributedRun.statistics`, and the wire bytes summed."""
    local = run.statistics()
    names = sorted(local)
    flat = [v for name in names for v in local[name]]
    flat += [float(run.channel.bytes_sent), float(run.channel.bytes_received)]
    flat.append(0.0 if run.status == "running" else 1.0)
    summed = run.channel.all_reduce_sum(flat)
    if summed.pop():  # a rank diverged: every rank stops at this epoch's end
        run.status = "diverged"
    out = {
        name: (summed[2 * i] / summed[2 * i + 1] if summed[2 * i + 1] else float("nan"))
        for i, name in enumerate(names)
    }
    out["wire_bytes_sent"], out["wire_bytes_received"] = summed[-2], summed[-1]
    return out


def _record(
    run: DistributedRun,
    epoch: int,
    evaluate: Callable[[Tensor], dict[str, float]],
    statistics: dict[str, float],
    seconds: float,
) -> dict[str, Any]:
    record: dict[str, Any] = {"epoch": epoch, "steps": run.steps, "status": run.status}
    if run.channel.rank != 0:
        return record
    finite = run.status == "running"
    if finite:
        record.update({f"test_{k}": v for k, v in evaluate(run.model()).items()})
    totals = run.ledger.totals() if run.ledger is not None else {"bits_up": 0, "bits_down": 0}
    record.update(totals)
    record.update(statistics)
    record["wall_s"] = seconds  # the epoch's steps, without the evaluation
    return record


def _format(label: str, record: dict[str, Any]) -> str:
    accuracy = record.get("test_accuracy", float("nan"))
    loss = record.get("train_loss", float("nan"))
    return (
        f"{label:>22}  epoch {record['epoch']:>3}  step {record['steps']:>6}  "
        f"train loss {loss:.4f}  test acc {accuracy:.4f}  "
        f"bits up {record['bits_up']:.3e} down {record['bits_down']:.3e}  "
        f"{record['wall_s']:.1f} s"
    )

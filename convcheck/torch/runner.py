"""A training run on torch tensors: rounds of an algorithm, bit ledger, evaluation, checkpoints.

:class:`Runner` is the torch simulator's transport: it runs the same algorithm halves as the
numpy engine (:mod:`convcheck.engine.rounds` — synchronous rounds, or asynchronous rounds for
DGS and asynchronous SGD), with gradients from an oracle of ``M`` simulated workers
(:class:`~convcheck.torch.simulation.Simulation`, or an
:class:`~convcheck.torch.oracle.ObjectiveOracle` of a numpy problem). It prices the messages in a
:class:`~convcheck.torch.ledger.BitLedger`, stops cleanly on divergence (a non-finite model or
minibatch loss, checked once per epoch so that the rounds never wait for the device), and saves
or restores everything — the algorithm's server and worker states, the workers' models, the
ledger, the generators, the counters and the history — so that a resumed run takes the same
trajectory as one that never stopped (bit for bit on CPU).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from convcheck.algorithms.base import Algorithm
from convcheck.engine.rounds import States, async_round, price, start, sync_round
from convcheck.errors import InputError, check_choice, check_int
from convcheck.torch.checkpoint import (
    load_checkpoint,
    restored_state,
    save_checkpoint,
    state_fields,
)
from convcheck.torch.ledger import BitLedger

Tensor = torch.Tensor
#: Arrival orders of the messages within an asynchronous round.
ORDERS = ("cyclic", "random")


class Runner:
    """One algorithm run on an oracle from ``θ⁰``.

    Parameters
    ----------
    algorithm : Algorithm
        Any registered algorithm (its update rule is the numpy engine's).
    oracle : Simulation or ObjectiveOracle
        ``oracle(points)``: the ``(M, D)`` gradients at a shared ``(D,)`` model or at per-worker
        models ``(M, D)``; attribute ``workers``. Its ``state_dict``/``load_state_dict`` (when
        present) are checkpointed.
    theta0 : Tensor of shape (D,)
    seed : int
        Seeds the algorithm's generator (random compressors, the random arrival order).
    order : {"cyclic", "random"}
        Asynchronous algorithms: the order in which the server applies a round's messages.
    identity : dict, optional
        What the run is about beyond the algorithm (e.g. the model's layers), stored in its
        checkpoints so that a resume can check it.

    Attributes
    ----------
    states : States
        The algorithm's server and worker states and the workers' models.
    ledger : BitLedger
    steps : int
        Rounds done.
    status : {"running", "diverged"}
    history : list of dict
        Records appended by :meth:`train` (one per epoch).
    """

    def __init__(self, algorithm: Algorithm, oracle: Any, theta0: Tensor, *, seed: int = 0,
                 order: str = "cyclic", identity: dict[str, Any] | None = None) -> None:
        if getattr(algorithm, "batch_size", None) is not None:
            raise InputError("batch_size", algorithm.batch_size,
                             "none: the torch simulator's minibatch is its oracle's batch size")
        self.algorithm, self.oracle = algorithm, oracle
        self.identity = dict(identity or {})
        self.order = check_choice("order", order, ORDERS)
        self.asynchronous = "sync" not in algorithm.transports
        self.generator = torch.Generator(device=theta0.device).manual_seed(
            check_int("seed", seed, 0)
        )
        self.states, initial = start(algorithm, theta0, oracle.workers,
                                     lambda: oracle(theta0))
        self.ledger = BitLedger(oracle.workers)
        self.ledger.record_bits(*price(initial, oracle.workers))
        self.steps = 0
        self.status = "running"
        self.history: list[dict[str, Any]] = []

    @property
    def theta(self) -> Tensor:
        """The server model."""
        return self.states.server.theta

    def step(self) -> None:
        """One round (no check of the model: see :meth:`check_finite`)."""
        gradients = self.oracle(self.states.model)
        if self.asynchronous:
            workers = self.oracle.workers
            if self.order == "random":
                order = torch.randperm(workers, generator=self.generator,
                                       device=self.generator.device).tolist()
            else:
                order = range(workers)
            wire = async_round(self.algorithm, self.states, gradients, self.generator, order)
        else:
            wire = sync_round(self.algorithm, self.states, gradients, self.generator)
        self.ledger.record_bits(*price(wire, self.oracle.workers))
        self.steps += 1

    def check_finite(self) -> bool:
        """Whether the model and the oracle's last minibatch losses are finite; sets
        ``status = "diverged"`` otherwise (one read from the device)."""
        losses = getattr(self.oracle, "last_losses", None)
        finite = torch.isfinite(self.theta).all()
        if losses is not None:
            finite = finite & torch.isfinite(losses).all()
        if not bool(finite):
            self.status = "diverged"
        return self.status == "running"

    def run(self, steps: int) -> None:
        """Do up to ``steps`` rounds, then check the model (status ``"diverged"`` if not
        finite)."""
        for _ in range(check_int("steps", steps, 0)):
            if self.status != "running":
                return
            self.step()
        self.check_finite()

    def train(
        self,
        epochs: int,
        steps_per_epoch: int,
        evaluate: Callable[[Tensor], dict[str, float]],
        *,
        checkpoint: str | Path | None = None,
        progress: str | None = None,
    ) -> list[dict[str, Any]]:
        """Run until ``epochs`` epochs are in :attr:`history`, evaluating after each.

        A record holds the epoch, steps, ``evaluate(θ)`` (e.g. test loss and accuracy), the mean
        minibatch training loss of the epoch (when the oracle reports ``last_losses``), the bits
        up and down so far, the algorithm's diagnostics and the wall time of the epoch. With
        ``checkpoint``, the run is saved there after every epoch (resume with :meth:`resume`).
        ``progress``: a label; each record is then printed as one line.
        """
        epochs = check_int("epochs", epochs, 0)
        steps_per_epoch = check_int("steps_per_epoch", steps_per_epoch, 1)
        if not self.history:
            self.history.append(self._record(0, evaluate, float("nan"), 0.0))
        while len(self.history) <= epochs and self.status == "running":
            started = time.perf_counter()
            losses: list[Tensor] = []
            for _ in range(steps_per_epoch):
                self.step()
                if getattr(self.oracle, "last_losses", None) is not None:
                    losses.append(self.oracle.last_losses.mean())
            self.check_finite()
            train_loss = float(torch.stack(losses).mean()) if losses else float("nan")
            record = self._record(len(self.history), evaluate, train_loss,
                                  time.perf_counter() - started)
            self.history.append(record)
            if progress is not None:
                print(_format_record(progress, record), flush=True)
            if checkpoint is not None:
                self.save(checkpoint)
        return self.history

    def _record(
        self, epoch: int, evaluate: Callable[[Tensor], dict[str, float]], train_loss: float,
        seconds: float,
    ) -> dict[str, Any]:
        totals = self.ledger.totals()
        finite = self.status == "running"
        record = {
            "epoch": epoch,
            "steps": self.steps,
            "status": self.status,
            "train_loss": train_loss,
            **({f"test_{k}": v for k, v in evaluate(self.theta).items()} if finite else {}),
            "bits_up": totals["bits_up"],
            "bits_down": totals["bits_down"],
            "wall_s": seconds,
        }
        if finite:
            values = self.algorithm.diagnostics(self.states.server, self.states.workers, None)
            record.update(zip(self.algorithm.diagnostic_names, values, strict=True))
        return record

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue: states, models, ledger, generators, counters."""
        ledger = self.ledger.state_dict()
        states = self.states
        out = {
            "algorithm": self.algorithm.describe(),
            "identity": self.identity,
            "server": state_fields(states.server),
            "workers": state_fields(states.workers),
            "model": states.model.detach().clone(),
            "held": None if states.held is None else states.held.detach().clone(),
            "ledger": {
                "workers": ledger["workers"],
                "up": torch.as_tensor(ledger["up"]),
                "down": torch.as_tensor(ledger["down"]),
            },
            "generator": self.generator.get_state(),
            "steps": self.steps,
            "status": self.status,
            "history": self.history,
        }
        if hasattr(self.oracle, "state_dict"):
            out["oracle"] = self.oracle.state_dict()
        return out

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output; refuses a checkpoint of another algorithm."""
        if saved["algorithm"] != self.algorithm.describe():
            raise InputError(
                "checkpoint", saved["algorithm"], f"a checkpoint of {self.algorithm.describe()}"
            )
        device = self.theta.device
        held = saved["held"]
        self.states = States(
            restored_state(self.states.server, saved["server"], device, "server state"),
            restored_state(self.states.workers, saved["workers"], device, "workers' state"),
            saved["model"].to(device),
            None if held is None else held.to(device),
        )
        ledger = saved["ledger"]
        self.ledger.load_state_dict(
            {key: value.numpy() if isinstance(value, Tensor) else value
             for key, value in ledger.items()}
        )
        self.generator.set_state(saved["generator"])
        self.steps, self.status = int(saved["steps"]), saved["status"]
        self.history = list(saved["history"])
        if "oracle" in saved:
            self.oracle.load_state_dict(saved["oracle"])

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint atomically."""
        return save_checkpoint(path, self.state_dict())

    def resume(self, path: str | Path) -> None:
        """Continue from a checkpoint written by :meth:`save`."""
        self.load_state_dict(load_checkpoint(path))


def _format_record(name: str, record: dict[str, Any]) -> str:
    accuracy = record.get("test_accuracy", float("nan"))
    return (
        f"{name:>22}  epoch {record['epoch']:>3}  step {record['steps']:>6}  "
        f"train loss {record['train_loss']:.4f}  test acc {accuracy:.4f}  "
        f"bits up {record['bits_up']:.3e} down {record['bits_down']:.3e}  "
        f"{record['wall_s']:.1f} s"
    )

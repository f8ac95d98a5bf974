"""A training run of a torch algorithm: rounds, bit ledger, evaluation per epoch, checkpoints.

:class:`Runner` owns what the numpy engine owns (DESIGN.md principle 2): it calls the
algorithm's ``step``, prices the messages in a :class:`~convcheck.torch.ledger.BitLedger`,
stops cleanly on divergence (a non-finite model), and saves or restores everything — the
algorithm's state (error memories, momentum, server state), the ledger, the algorithm's and
the oracle's generators, the counters and the history — so that a resumed run takes the same
trajectory as one that never stopped (bit for bit on CPU).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from convcheck.errors import InputError, check_int
from convcheck.torch.algorithms.base import TorchAlgorithm, state_from_dict, state_to_dict
from convcheck.torch.checkpoint import load_checkpoint, save_checkpoint
from convcheck.torch.ledger import BitLedger

Tensor = torch.Tensor


class Runner:
    """One algorithm run on an oracle from ``θ⁰``.

    Parameters
    ----------
    algorithm : TorchAlgorithm
    oracle : Simulation or ObjectiveOracle
        Gradients; its ``state_dict``/``load_state_dict`` (when present) are checkpointed.
    theta0 : Tensor of shape (D,)
    seed : int
        Seeds the algorithm's generator (random compressors, DGS arrival order).

    Attributes
    ----------
    state : the algorithm's state
    ledger : BitLedger
    steps : int
        Rounds done.
    status : {"running", "diverged"}
    history : list of dict
        Records appended by :meth:`train` (one per epoch).
    """

    def __init__(
        self, algorithm: TorchAlgorithm, oracle: Any, theta0: Tensor, *, seed: int = 0
    ) -> None:
        self.algorithm, self.oracle = algorithm, oracle
        self.generator = torch.Generator(device=theta0.device).manual_seed(
            check_int("seed", seed, 0)
        )
        self.state, initial = algorithm.start(theta0, oracle, self.generator)
        self.ledger = BitLedger(oracle.workers)
        self.ledger.record(initial)
        self.steps = 0
        self.status = "running"
        self.history: list[dict[str, Any]] = []

    @property
    def theta(self) -> Tensor:
        """The server model."""
        return self.state.theta

    def run(self, steps: int) -> None:
        """Do up to ``steps`` rounds; stops early (status ``"diverged"``) on a non-finite model
        or a non-finite minibatch loss reported by the oracle (``last_losses``)."""
        for _ in range(check_int("steps", steps, 0)):
            if self.status != "running":
                return
            messages = self.algorithm.step(self.state, self.oracle, self.generator)
            self.ledger.record(messages)
            self.steps += 1
            losses = getattr(self.oracle, "last_losses", None)
            if not bool(torch.isfinite(self.state.theta).all()) or (
                losses is not None and not bool(torch.isfinite(losses).all())
            ):
                self.status = "diverged"

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
                self.run(1)
                if getattr(self.oracle, "last_losses", None) is not None:
                    losses.append(self.oracle.last_losses.mean())
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
            record.update(self.algorithm.diagnostics(self.state))
        return record

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue: algorithm state, ledger, generators, counters."""
        ledger = self.ledger.state_dict()
        out = {
            "algorithm": self.algorithm.describe(),
            "state": state_to_dict(self.state),
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
        device = self.state.theta.device
        values = {
            key: value.to(device) if isinstance(value, Tensor) else value
            for key, value in saved["state"].items()
        }
        self.state = state_from_dict(self.algorithm, values)
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

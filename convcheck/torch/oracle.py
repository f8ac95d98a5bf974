"""Gradient oracle of a numpy :class:`~convcheck.objectives.Objective` in torch.

Used to run a torch algorithm on exactly the problem the numpy engine runs (differential tests):
the worker shards are copied to tensors once and the gradients are recomputed in torch,
independently of the numpy code:

* ridge: ``∇f_m(θ) = (1/n_m) A_mᵀ(A_m θ − b_m) + λθ``;
* logistic: ``∇f_m(θ) = −(1/n_m) A_mᵀ(b_m ⊙ σ(−b_m ⊙ A_m θ)) + λθ``.

Only dense (padded) shards and these two families are supported.
"""

from __future__ import annotations

import torch

from convcheck.errors import InputError
from convcheck.objectives import Objective
from convcheck.shards import PaddedShards

FAMILIES = ("ridge", "logistic")


class ObjectiveOracle:
    """Full worker gradients of an objective, on tensors.

    Parameters
    ----------
    objective : Objective
        Family ``"ridge"`` or ``"logistic"`` on padded (dense) shards.
    dtype, device
        Of the tensors (float64 for differential tests).

    Attributes
    ----------
    workers : int
    calls : int
        Number of gradient evaluations.
    """

    def __init__(
        self,
        objective: Objective,
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
    ) -> None:
        if objective.family not in FAMILIES or not isinstance(objective.shards, PaddedShards):
            raise InputError(
                "objective", objective.name, "a ridge or logistic objective on dense shards"
            )
        if objective.lam_nc:
            raise InputError("lam_nc", objective.lam_nc, "0 (no nonconvex term)")
        shards = objective.shards
        self.family = objective.family
        self.X, self.labels, self.weights = (
            torch.as_tensor(a, dtype=dtype, device=device)
            for a in (shards.X, shards.labels, shards.weights)
        )
        self.lam = objective.lam
        self.workers = shards.n_workers
        self.calls = 0

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        """``(M, D)`` gradients at a shared ``(D,)`` or per-worker ``(M, D)`` point."""
        self.calls += 1
        per_worker = points if points.ndim == 2 else points.expand(self.workers, -1)
        z = torch.bmm(self.X, per_worker[:, :, None])[:, :, 0]
        if self.family == "ridge":
            slope = z - self.labels
        else:
            slope = -self.labels * torch.sigmoid(-self.labels * z)
        gradients = torch.bmm((self.weights * slope)[:, None, :], self.X)[:, 0, :]
        return gradients + self.lam * per_worker

"""Gradient oracle of a numpy :class:`~convcheck.objectives.Objective` in torch.

Used to run a torch algorithm on exactly the problem the numpy engine runs (differential tests):
the worker shards are copied to tensors once and the gradients are recomputed in torch,
independently of the numpy code:

* ridge: ``∇f_m(θ) = (1/n_m) A_mᵀ(A_m θ − b_m) + λθ``;
* logistic: ``∇f_m(θ) = −(1/n_m) A_mᵀ(b_m ⊙ σ(−b_m ⊙ A_m θ)) + λθ``.

:meth:`ObjectiveOracle.runs_values_and_gradients` evaluates the values
``f_m(θ) = (1/n_m) Σ_i ℓ(a_iᵀθ, b_i) + (λ/2)‖θ‖²`` (``ℓ = ½(z − b)²`` or
``log(1 + e^{−bz})``) and gradients at the ``R`` models of a batch of runs at once
(:func:`convcheck.torch.batch.run_batch`).

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

    def runs_values_and_gradients(self, thetas: torch.Tensor
                                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f_m(θ_r))`` ``(R, M)`` and ``(∇f_m(θ_r))`` ``(R, M, D)`` at ``R`` shared points
        ``thetas`` ``(R, D)``: per worker, one matrix product forward and one backward (all
        runs at once)."""
        self.calls += 1
        z = torch.einsum("mnd,rd->rmn", self.X, thetas)
        if self.family == "ridge":
            slope = z - self.labels
            loss = 0.5 * slope * slope
        else:
            margin = self.labels * z
            loss = torch.logaddexp(torch.zeros((), dtype=z.dtype, device=z.device), -margin)
            slope = -self.labels * torch.sigmoid(-margin)
        squares = (thetas * thetas).sum(dim=-1)
        values = (self.weights * loss).sum(dim=-1) + (0.5 * self.lam * squares)[:, None]
        gradients = torch.einsum("rmn,mnd->rmd", self.weights * slope, self.X)
        return values, gradients + self.lam * thetas[:, None, :]

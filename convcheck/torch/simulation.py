"""``M`` workers simulated on one device: per-worker minibatches and gradients of a network.

A :class:`Simulation` is the oracle of the torch algorithms for a real network: called with a
shared model ``θ ∈ ℝ^D`` or per-worker models ``(M, D)``, it draws one minibatch per worker
from that worker's shard and returns the ``(M, D)`` minibatch gradients of the cross-entropy
loss (plus ``weight_decay·θ``). Worker ``m`` draws ``B`` rows of its shard uniformly with
replacement (one ``torch.rand((M, B))`` draw per call, from the simulation's own generator), as
:meth:`convcheck.objectives.Objective.stochastic_worker_gradients` does.

With ``vectorize=True`` the ``M`` gradients are one call of
``torch.func.vmap(torch.func.grad_and_value(loss))`` over the workers (the loss evaluates the
network with ``torch.func.functional_call`` on the flat parameters' views); with ``False``, a
Python loop over the workers calls the same ``grad_and_value`` once per worker.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad_and_value, vmap

from convcheck.data import Split
from convcheck.errors import InputError, check_int, check_real
from convcheck.torch.datasets import TensorData
from convcheck.torch.layout import Layout

Tensor = torch.Tensor


class WorkerShards:
    """Each worker's rows of a training set, as a padded ``(M, n_max)`` index table.

    Parameters
    ----------
    data : TensorData
        The training rows.
    split : Split
        Row indices per worker (:func:`convcheck.data.split_dataset` of the same rows).
    """

    def __init__(self, data: TensorData, split: Split) -> None:
        sizes = [s.size for s in split.shards]
        if sum(sizes) != data.n_samples:
            raise InputError("split", f"{sum(sizes)} rows", f"{data.n_samples} (the training rows)")
        device = data.X.device
        table = torch.zeros((len(sizes), max(sizes)), dtype=torch.int64)
        for m, shard in enumerate(split.shards):  # once, at construction
            table[m, : shard.size] = torch.as_tensor(shard)
        self.data = data
        self.table = table.to(device)
        self.sizes = torch.as_tensor(sizes, dtype=torch.int64, device=device)

    @property
    def workers(self) -> int:
        return self.table.shape[0]

    def rows(self, batch_size: int, generator: torch.Generator) -> Tensor:
        """``(M, B)`` row indices: row ``j`` of worker ``m`` is entry ``⌊u·n_m⌋`` of its shard,
        ``u`` uniform in ``[0, 1)`` (one ``(M, B)`` float64 draw). ``u ≤ 1 − 2⁻⁵³`` makes
        ``fl(u·n) < n`` for every ``n < 2⁵³``, so the index is in range."""
        u = torch.rand(
            (self.workers, batch_size), generator=generator, dtype=torch.float64,
            device=self.table.device,
        )
        return torch.gather(self.table, 1, (u * self.sizes[:, None]).long())

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``(M, B, p)`` features and ``(M, B)`` labels of :meth:`rows`."""
        rows = self.rows(batch_size, generator)
        return self.data.X[rows], self.data.y[rows]


class Simulation:
    """The minibatch-gradient oracle of ``M`` simulated workers.

    Parameters
    ----------
    model : torch.nn.Module
        The network (no buffers); only its structure is used, parameters come from ``θ``.
    shards : WorkerShards
    batch_size : int
        Rows per worker per call.
    seed : int
        Seeds the sampling generator.
    weight_decay : float
        ``λ ≥ 0``: the gradient of ``(λ/2)‖θ‖²`` is added, i.e. ``g_m = ∇ℓ_m(θ) + λθ``.
    vectorize : bool
        ``vmap`` over workers (True) or a Python loop (False).

    Attributes
    ----------
    layout : Layout
    calls : int
        Oracle calls so far (one minibatch per worker each).
    last_losses : Tensor of shape (M,)
        Minibatch losses of the last call (without the weight-decay term).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        shards: WorkerShards,
        batch_size: int,
        *,
        seed: int = 0,
        weight_decay: float = 0.0,
        vectorize: bool = True,
    ) -> None:
        self.model = model
        self.layout = Layout.of(model)
        self.shards = shards
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.weight_decay = check_real("weight_decay", weight_decay, 0.0)
        self.vectorize = bool(vectorize)
        self.generator = torch.Generator(device=shards.table.device).manual_seed(
            check_int("seed", seed, 0)
        )
        self.calls = 0
        self.last_losses: Tensor | None = None
        self._grad = grad_and_value(self._loss)

    @property
    def workers(self) -> int:
        return self.shards.workers

    def _loss(self, params: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(functional_call(self.model, params, (x,)), y)

    def __call__(self, points: Tensor) -> Tensor:
        """``(M, D)`` minibatch gradients at a shared ``(D,)`` or per-worker ``(M, D)`` point."""
        features, labels = self.shards.sample(self.batch_size, self.generator)
        self.calls += 1
        shared = points.ndim == 1
        params = self.layout.unflatten(points)
        if self.vectorize:
            grads, losses = vmap(self._grad, in_dims=(None if shared else 0, 0, 0))(
                params, features, labels
            )
            flat = self.layout.flatten(grads, batch_dims=1)
        else:
            rows, values = [], []
            for m in range(self.workers):
                own = params if shared else {name: p[m] for name, p in params.items()}
                grad, loss = self._grad(own, features[m], labels[m])
                rows.append(self.layout.flatten(grad))
                values.append(loss)
            flat, losses = torch.stack(rows), torch.stack(values)
        self.last_losses = losses.detach()
        if self.weight_decay:
            flat = flat + self.weight_decay * points
        return flat

    def state_dict(self) -> dict:
        """Sampling generator and counter (for checkpoints)."""
        return {"generator": self.generator.get_state(), "calls": self.calls}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.calls = int(state["calls"])


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, theta: Tensor, data: TensorData, batch_size: int = 2048
) -> dict[str, float]:
    """Mean cross-entropy and accuracy of the model with flat parameters ``θ`` on ``data``."""
    params = Layout.of(model).unflatten(theta)
    total_loss, correct = 0.0, 0
    for start in range(0, data.n_samples, batch_size):
        x, y = data.X[start : start + batch_size], data.y[start : start + batch_size]
        logits = functional_call(model, params, (x,))
        total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(dim=1) == y).sum())
    return {"loss": total_loss / data.n_samples, "accuracy": correct / data.n_samples}

"""DDP communication hooks: against the simulation (one bucket holds the whole model), against
the rule written out, and under another optimizer.

The error-feedback hook runs error feedback's halves in gradient units (``α = 1``) and returns
the averaged compressed gradient; with ``SGD(lr=α)`` that is the simulation's error feedback
with step ``α`` (memory ``α e``), up to rounding. GD-SEC's hook returns the server's direction
``ĝ``. The gradients come from autograd through the module instead of ``torch.func`` and the
step from the optimizer, so the trajectories agree to float64 rounding, the bits exactly.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from convcheck.algorithms import make_algorithm
from convcheck.errors import InputError
from convcheck.torch.distributed.hooks import (
    ErrorFeedbackHookState,
    GDSECHookState,
    error_feedback_hook,
)
from convcheck.torch.layout import Layout
from tests.torch.distributed.conftest import WORLD, rank_states
from tests.torch.distributed.helpers import simulate
from tests.torch.distributed.test_allgather import received


def close(a: torch.Tensor, b: torch.Tensor, scale: float) -> bool:
    return float((a - b).abs().max()) <= 1e-12 * max(1.0, scale)


@pytest.mark.parametrize(("label", "index", "slug"), [("ef hook", 4, "ef-hook"),
                                                      ("gd-sec hook", 5, "gd-sec-hook")])
def test_hook_equals_the_simulation(scenario, label, index, slug) -> None:
    run = next(r for r in scenario["results"]["runs"] if r["label"] == label)
    assert run["mode"] == "ddp" and run["workers"] == WORLD and run["status"] == "completed"
    states = rank_states(scenario["checkpoints"], index, slug)
    reference = simulate(scenario["config"], label, WORLD, states[0]["steps"])
    alpha = reference.algorithm.alpha
    server, workers = reference.states.server, reference.states.workers
    for m, state in enumerate(states):
        tensors = state["tensors"]
        assert close(tensors["theta"], reference.theta, float(reference.theta.abs().max()))
        errors = workers.errors[m]
        if label == "ef hook":  # gradient units in the hook
            assert close(alpha * tensors["memory.workers.errors"], errors,
                         float(errors.abs().max()))
        else:
            assert close(tensors["memory.workers.errors"], errors, float(errors.abs().max()))
            assert close(tensors["memory.workers.h"], workers.h[m], float(workers.h.abs().max()))
            assert close(tensors["memory.server.h"], server.h, float(server.h.abs().max()))
        expected = reference.ledger.to_ledger()
        assert np.array_equal(state["ledger"]["up"].numpy(), expected.up)
        assert np.array_equal(state["ledger"]["down"].numpy(), received(expected.up))
    assert run["replica_max_abs_difference"] == 0.0


@pytest.fixture(scope="module")
def one_process_group(tmp_path_factory):
    """A gloo process group of this process alone (DDP with one rank: the mean of one
    message is that message)."""
    folder = tmp_path_factory.mktemp("group")
    dist.init_process_group("gloo", init_method=f"file://{folder / 'rendezvous'}", rank=0,
                            world_size=1)
    yield
    dist.destroy_process_group()


def small_problem():
    from convcheck.torch.datasets import load_train_test
    from convcheck.torch.models import make_model

    _, train, _ = load_train_test("digits", scaling="maxabs", train_size=100,
                                  dtype=torch.float64)
    model = make_model("mlp", input_dim=64, classes=10, hidden=[8], dtype=torch.float64)
    generator = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, 100, (5,), generator=generator) for _ in range(3)]
    return model, [(train.X[rows], train.y[rows]) for rows in batches]


def gradient(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    loss = F.cross_entropy(model(x), y)
    return torch.cat([t.reshape(-1) for t in torch.autograd.grad(loss, list(model.parameters()))])


def top_k(p: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` entries of largest magnitude (ties: lowest index), by numpy."""
    values = p.numpy()
    keep = np.argsort(-np.abs(values), kind="stable")[:k]
    out = np.zeros_like(values)
    out[keep] = values[keep]
    return torch.from_numpy(out)


def hooked(model: torch.nn.Module, algorithm, optimizer_class, **optimizer_args):
    """A copy of ``model`` under DDP with the error-feedback hook, and its optimizer."""
    module = copy.deepcopy(model)
    state = ErrorFeedbackHookState(None, algorithm, model=module)
    ddp = DistributedDataParallel(module)
    ddp.register_comm_hook(state, error_feedback_hook)
    return module, ddp, state, optimizer_class(module.parameters(), **optimizer_args)


def test_hook_with_sgd_follows_the_rule(one_process_group) -> None:
    """Three steps of the error-feedback hook with ``SGD(lr=α)`` (DDP rebuilds its bucket
    after the first step, reordering the coordinates) against the rule written out with
    numpy on autograd's gradient of an independent copy: ``p = g + e``, ``c`` = the k largest
    ``|p_i|``, ``e ← p − c``, ``θ ← θ − α c``."""
    model, batches = small_problem()
    alpha, k = 0.3, 20
    module, ddp, state, optimizer = hooked(model, make_algorithm("ef", alpha=alpha, k=k),
                                           torch.optim.SGD, lr=alpha)
    layout = Layout.of(model)
    reference = copy.deepcopy(model)
    theta = layout.flatten_module(model)
    errors = torch.zeros_like(theta)
    for x, y in batches:
        optimizer.zero_grad()
        F.cross_entropy(ddp(x), y).backward()
        optimizer.step()
        torch.nn.utils.vector_to_parameters(theta, reference.parameters())
        p = gradient(reference, x, y) + errors
        c = top_k(p, k)
        errors, theta = p - c, theta - alpha * c
        assert float((layout.flatten_module(module) - theta).abs().max()) < 1e-14
        assert float((state.memory["workers.errors"] - errors).abs().max()) < 1e-14
    up, down = state.take_bits()
    assert down.tolist() == [0] and up[0] > 0  # three messages of k pairs, nothing received


def test_hook_gives_adam_the_compressed_gradient(one_process_group) -> None:
    """With ``torch.optim.Adam`` the hook's model is Adam stepping on the error-feedback
    direction: an independent copy whose ``.grad`` is set to ``c`` of the rule follows it."""
    model, batches = small_problem()
    k = 20
    module, ddp, state, optimizer = hooked(model, make_algorithm("ef", alpha=0.3, k=k),
                                           torch.optim.Adam, lr=0.01)
    reference = copy.deepcopy(model)
    layout = Layout.of(model)
    reference_optimizer = torch.optim.Adam(reference.parameters(), lr=0.01)
    errors = torch.zeros(layout.dim, dtype=torch.float64)
    for x, y in batches:
        optimizer.zero_grad()
        F.cross_entropy(ddp(x), y).backward()
        optimizer.step()
        p = gradient(reference, x, y) + errors
        c = top_k(p, k)
        errors = p - c
        for param, value in zip(reference.parameters(), layout.unflatten(c).values(),
                                strict=True):
            param.grad = value.clone()
        reference_optimizer.step()
        assert float((layout.flatten_module(module) - layout.flatten_module(reference))
                     .abs().max()) < 1e-14
    assert not torch.equal(layout.flatten_module(module), layout.flatten_module(model))


def test_hook_states_refuse_other_algorithms(one_process_group) -> None:
    model, _ = small_problem()
    with pytest.raises(InputError, match="'algorithm'"):
        ErrorFeedbackHookState(None, make_algorithm("gd-sec", alpha=0.1), model=model)
    with pytest.raises(InputError, match="'xi'"):
        GDSECHookState(None, make_algorithm("gd-sec", alpha=0.1, xi=[0.1] * 602), model=model)

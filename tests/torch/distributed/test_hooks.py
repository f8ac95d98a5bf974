"""DDP communication hooks against the simulation (one bucket holds the whole model).

The top-k EF hook computes the simulation's EF round on the bucket's coordinates (in the
bucket's order) from gradients that autograd computes through the module instead of
``torch.func``; GD-SEC's hook the same with the thresholds and the replicated server state.
The trajectories must agree to float64 rounding (the gradients and the bucket's coordinate
order come from different code paths; on the CPU this was written on they agree bit for bit),
the bits exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.torch.distributed.conftest import WORLD, rank_states
from tests.torch.distributed.helpers import simulate
from tests.torch.distributed.test_allgather import received


@pytest.mark.parametrize(("label", "index", "slug"), [("ef hook", 4, "ef-hook"),
                                                      ("gd-sec hook", 5, "gd-sec-hook")])
def test_hook_equals_the_simulation(scenario, label, index, slug) -> None:
    run = next(r for r in scenario["results"]["runs"] if r["label"] == label)
    assert run["mode"] == "ddp" and run["workers"] == WORLD and run["status"] == "completed"
    states = rank_states(scenario["checkpoints"], index, slug)
    reference = simulate(scenario["config"], label, WORLD, states[0]["steps"])
    scale = float(reference.state.theta.abs().max())
    for m, state in enumerate(states):
        tensors = state["tensors"]
        assert float((tensors["theta"] - reference.state.theta).abs().max()) < 1e-12 * scale
        errors = reference.state.errors[m]
        gap = float((tensors["memory.errors"] - errors).abs().max())
        assert gap < 1e-12 * max(1.0, float(errors.abs().max()))
        if label == "gd-sec hook":
            h = reference.state.h_workers[m]
            assert float((tensors["memory.h"] - h).abs().max()) < 1e-12 * float(h.abs().max())
        expected = reference.ledger.to_ledger()
        assert np.array_equal(state["ledger"]["up"].numpy(), expected.up)
        assert np.array_equal(state["ledger"]["down"].numpy(), received(expected.up))
    assert run["replica_max_abs_difference"] == 0.0


def test_hook_steps_on_one_rank_follow_the_formula(tmp_path) -> None:
    """Three steps of the top-k EF hook in a 1-process group (DDP rebuilds its bucket after
    the first step, reordering the coordinates) against the rule written out with numpy on
    autograd's gradient of an independent copy of the model: ``p = αg + e``, ``c`` = the k
    largest ``|p_i|``, ``e ← p − c``, ``θ ← θ − c``."""
    import copy

    import torch.distributed as dist
    import torch.nn.functional as F
    from convcheck.torch.algorithms import make_algorithm

    from convcheck.data import split_dataset
    from convcheck.torch.datasets import load_train_test
    from convcheck.torch.distributed.group import Group
    from convcheck.torch.distributed.hooks import DDPRun
    from convcheck.torch.distributed.wire import Channel
    from convcheck.torch.layout import Layout
    from convcheck.torch.models import make_model
    from convcheck.torch.simulation import Simulation, WorkerShards

    dataset, train, _ = load_train_test("digits", scaling="maxabs", train_size=100,
                                        dtype=torch.float64)
    split = split_dataset(dataset, 1)
    model = make_model("mlp", input_dim=64, classes=10, hidden=[8], dtype=torch.float64)
    layout = Layout.of(model)
    theta = layout.flatten_module(model).numpy()
    alpha, k = 0.3, 20
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0,
                            world_size=1)
    try:
        channel = Channel(Group(0, 1, "gloo", torch.device("cpu"), 30.0))
        oracle = Simulation(model, WorkerShards(train, split), 5, seed=1)
        run = DDPRun("t", make_algorithm("ef", alpha=alpha, k=k), channel, oracle,
                     layout.flatten_module(model), template=model)
        batches, generator = WorkerShards(train, split), torch.Generator().manual_seed(1)
        reference = copy.deepcopy(model)
        errors = np.zeros_like(theta)
        for _ in range(3):
            run.run(1)
            x, y = batches.sample(5, generator)
            torch.nn.utils.vector_to_parameters(torch.as_tensor(theta), reference.parameters())
            loss = F.cross_entropy(reference(x[0]), y[0])
            g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(
                loss, list(reference.parameters()))]).numpy()
            p = alpha * g + errors
            keep = np.argsort(-np.abs(p), kind="stable")[:k]
            c = np.zeros_like(p)
            c[keep] = p[keep]
            errors, theta = p - c, theta - c
            assert np.abs(run.model().numpy() - theta).max() < 1e-14
            assert np.abs(run.hook_state.memory["errors"].numpy() - errors).max() < 1e-14
    finally:
        dist.destroy_process_group()

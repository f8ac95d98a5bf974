"""How much memory a training run needs at least, estimated before anything is allocated.

The model is built on PyTorch's ``meta`` device (shapes only, no storage) and run forward once
on a ``meta`` batch, which gives ``D`` (parameters) and ``a`` (activation values per sample)
exactly. One step of ``M`` workers with minibatches of ``B`` rows of ``n`` features then holds
at least, in bytes (``s`` = bytes per value)::

    M·B·(8 + s·n)          the sampled row indices (float64) and the minibatch
    + 2·s·M·B·a            every activation, kept for the backward pass, and its gradient
    + 2·s·M·D              the per-worker gradients (per parameter, then flattened)
    + 2·s·D                the model and the initial point

Algorithm state (error memories, model copies) comes on top, so this is a floor: a run it
refuses could not have run, and a run it lets through may still need more.
"""

from __future__ import annotations

import os

import torch

from convcheck.errors import InputError

GIB = 2**30


def minimum_bytes(model: torch.nn.Module, *, workers: int, batch_size: int, features: int,
                  itemsize: int) -> int:
    """The floor of the module docstring for ``model`` built on the ``meta`` device."""
    dim = sum(p.numel() for p in model.parameters())
    activations = [0]

    def count(module, inputs, output) -> None:
        if isinstance(output, torch.Tensor):
            activations[0] += output.numel()

    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    try:
        model(torch.empty(1, features, device="meta", dtype=next(model.parameters()).dtype))
    finally:
        for hook in hooks:
            hook.remove()
    rows = workers * batch_size
    return (rows * (8 + itemsize * features) + 2 * itemsize * rows * activations[0]
            + 2 * itemsize * workers * dim + 2 * itemsize * dim)


def available_bytes(device: torch.device) -> int | None:
    """Free memory of ``device`` (CUDA: free device memory; CPU: ``MemAvailable``, else
    physical memory); ``None`` when unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(model: torch.nn.Module, *, workers: int, batch_size: int, features: int,
                 itemsize: int, device: torch.device, context: str = "") -> int:
    """Refuse a run whose floor (:func:`minimum_bytes`) exceeds the free memory of ``device``;
    the floor in bytes otherwise."""
    needed = minimum_bytes(model, workers=workers, batch_size=batch_size, features=features,
                           itemsize=itemsize)
    free = available_bytes(device)
    if free is not None and needed > free:
        dim = sum(p.numel() for p in model.parameters())
        raise InputError(
            "run.batch_size / model", f"{workers} workers × batch {batch_size}, D = {dim:,}",
            f"a run that fits: it needs at least {needed / GIB:,.1f} GiB on {device} "
            f"(minibatches, activations and {workers} per-worker gradients of D values; "
            f"estimated before allocating anything) but {free / GIB:,.1f} GiB are free; lower "
            "run.batch_size, model.hidden or run.workers",
            context,
        )
    return needed

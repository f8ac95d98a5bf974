"""Per-layer backward profile of a network: how long backprop takes to produce each gradient.

Backprop produces the parameters' gradients from the last layer to the first; a hook after
each gradient's accumulation (``register_post_accumulate_grad_hook``) stamps the time (a CUDA
event on a GPU, ``time.perf_counter`` on CPU). Parameter ``p``'s *backward time* is the time
from the previous stamp (or the start of backward) to its own, so the times add up to the whole
backward pass and ``t_l`` is the work done between two gradients becoming ready — the ``t_l``
of LAGS's count selection (``convcheck.algorithms.lags.select_layer_counts``), which
needs the times in forward order, one per parameter tensor (a :class:`~convcheck.torch.layout.
Layout`'s order).
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from convcheck.errors import check_int
from convcheck.torch.layout import Layout

Tensor = torch.Tensor


def backward_profile(
    model: torch.nn.Module, X: Tensor, y: Tensor, *, repeats: int = 5, warmup: int = 2
) -> tuple[float, ...]:
    """Median backward time (seconds) of each parameter tensor, in forward (layout) order.

    Parameters
    ----------
    model : torch.nn.Module
        The network, on the device of ``X``; its ``.grad`` fields are reset to ``None``.
    X, y : Tensor
        A minibatch: flat inputs ``(B, p)`` and class labels ``(B,)``.
    repeats, warmup : int
        Timed and untimed backward passes (each after a fresh forward pass).
    """
    repeats = check_int("repeats", repeats, 1)
    warmup = check_int("warmup", warmup, 0)
    params = [p for p in model.parameters() if p.requires_grad]
    Layout.of(model)  # the same parameters, the same order (and no buffers)
    cuda = X.device.type == "cuda"
    samples: list[list[float]] = [[] for _ in params]

    def stamp() -> object:
        if cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    for round_ in range(warmup + repeats):
        stamps: dict[int, object] = {}
        handles = [
            p.register_post_accumulate_grad_hook(
                lambda _, i=i, stamps=stamps: stamps.__setitem__(i, stamp()))
            for i, p in enumerate(params)
        ]
        try:
            model.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(X), y)
            if cuda:
                torch.cuda.synchronize(X.device)
            start = stamp()
            loss.backward()
            if cuda:
                torch.cuda.synchronize(X.device)
        finally:
            for handle in handles:
                handle.remove()
        if round_ < warmup:
            continue
        previous = start
        for i in sorted(stamps, key=lambda j: _seconds(start, stamps[j])):
            samples[i].append(_seconds(previous, stamps[i]))
            previous = stamps[i]
    model.zero_grad(set_to_none=True)
    return tuple(statistics.median(s) if s else 0.0 for s in samples)


def _seconds(earlier: object, later: object) -> float:
    """Seconds between two stamps (CUDA events or ``perf_counter`` values)."""
    if isinstance(earlier, torch.cuda.Event):
        return earlier.elapsed_time(later) / 1e3  # type: ignore[arg-type]
    return float(later) - float(earlier)  # type: ignore[arg-type]

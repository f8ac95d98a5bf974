"""A model's parameters as one flat vector: names, shapes and offsets.

The algorithms work on flat vectors ``θ ∈ ℝ^D`` (server) and ``(M, D)`` tensors (one row per
worker), like the numpy engine; a :class:`Layout` maps between those and a model's named
parameters. Parameter ``p`` occupies the slice ``[offset_p, offset_p + d_p)`` — a *layer* for
the layer-wise compressors (LAGS, DGS) — and its per-worker error memory or momentum is that
slice of the algorithm's ``(M, D)`` state (a view, no copy).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from convcheck.errors import InputError

Tensor = torch.Tensor


@dataclass(frozen=True)
class Layout:
    """Named parameter shapes, in order, and their place in a flat vector.

    Attributes
    ----------
    names : tuple of str
        Parameter names (``module.named_parameters()`` order, i.e. forward order for sequential
        models).
    shapes : tuple of tuple of int
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, module: torch.nn.Module) -> Layout:
        """The layout of a module's trainable parameters (buffers are not supported)."""
        buffers = [name for name, _ in module.named_buffers()]
        if buffers:
            raise InputError(
                "model", f"a module with buffers {buffers}",
                "a module without buffers (no BatchNorm running statistics)",
            )
        named = [(n, tuple(p.shape)) for n, p in module.named_parameters() if p.requires_grad]
        return cls(tuple(n for n, _ in named), tuple(s for _, s in named))

    @property
    def sizes(self) -> tuple[int, ...]:
        """Number of entries ``d_l`` of each parameter."""
        return tuple(int(torch.Size(s).numel()) for s in self.shapes)

    @property
    def offsets(self) -> tuple[int, ...]:
        """Start of each parameter in the flat vector (``len(names) + 1`` entries, last = D)."""
        out = [0]
        for size in self.sizes:
            out.append(out[-1] + size)
        return tuple(out)

    @property
    def dim(self) -> int:
        """``D = Σ_l d_l``."""
        return self.offsets[-1]

    def slices(self) -> list[slice]:
        """The slice of each parameter in the flat vector."""
        bounds = self.offsets
        return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def unflatten(self, flat: Tensor) -> dict[str, Tensor]:
        """Views ``(..., *shape_p)`` of a flat ``(..., D)`` tensor, by parameter name."""
        if flat.shape[-1] != self.dim:
            raise InputError("flat", f"shape {tuple(flat.shape)}", f"last dimension D={self.dim}")
        batch = flat.shape[:-1]
        return {
            name: flat[..., part].view(*batch, *shape)
            for name, part, shape in zip(self.names, self.slices(), self.shapes, strict=True)
        }

    def flatten(self, tensors: Mapping[str, Tensor], batch_dims: int = 0) -> Tensor:
        """Concatenate named tensors ``(*batch, *shape_p)`` into ``(*batch, D)``."""
        parts = []
        for name, shape in zip(self.names, self.shapes, strict=True):
            t = tensors[name]
            if tuple(t.shape[batch_dims:]) != shape:
                raise InputError(name, f"shape {tuple(t.shape)}", f"(*batch, *{shape})")
            parts.append(t.reshape(*t.shape[:batch_dims], -1))
        return torch.cat(parts, dim=-1)

    def flatten_module(self, module: torch.nn.Module) -> Tensor:
        """The module's current parameters as one flat vector ``(D,)`` (a copy)."""
        return self.flatten(dict(module.named_parameters())).detach().clone()

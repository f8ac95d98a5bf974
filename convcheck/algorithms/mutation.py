"""Injected bugs (mutants): an algorithm with one line of its halves broken, applied at run time.

A :class:`Mutant` wraps one or more halves of the real algorithm: each hook receives the real
half and calls it, then breaks one thing (a memory never updated, a message scaled, the wrong
rows). The shipped code is never edited, and a mutated algorithm keeps its parameters and
constants (``alpha``, the compressor), so bounds are evaluated for the algorithm it claims to be.
Each algorithm module declares its mutants (``mutants`` on the class); verification runs them to
measure what its checks catch (``convcheck mutate``) and to build negative controls.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from convcheck.algorithms.base import Algorithm

#: ``hook(algorithm, real_half, *arguments)`` returns what the half returns.
Hook = Callable[..., Any]
_HALVES = ("worker", "server", "receive", "server_event", "reply", "receive_reply")


@dataclass(frozen=True)
class Mutant:
    """One injected bug.

    Attributes
    ----------
    name : str
        Unique among the algorithm's mutants (``"frozen-error-memory"``).
    description : str
        The bug, in words.
    worker, server, receive, server_event, reply, receive_reply : callable, optional
        Hooks replacing those halves (see :data:`Hook`).
    codecs : dict, optional
        ``{"up_codec" | "down_codec": codec_of(algorithm)}``: what the transport prices with.
    survives : str
        Why no check can see this bug where it survives (an equivalent mutant, or a change no
        bound or identity measures), shown by ``convcheck mutate``; ``""``: it must be caught.
    """

    name: str
    description: str
    worker: Hook | None = None
    server: Hook | None = None
    receive: Hook | None = None
    server_event: Hook | None = None
    reply: Hook | None = None
    receive_reply: Hook | None = None
    codecs: dict[str, Callable[[Algorithm], Any]] | None = None
    survives: str = ""

    def apply(self, algorithm: Algorithm) -> Algorithm:
        """A copy of ``algorithm`` whose class is a subclass of its own with the hooks."""
        base = type(algorithm)
        namespace: dict[str, Any] = {
            "name": f"{base.name}[{self.name}]",
            "mutant": self,
            "__module__": __name__,
            "__doc__": self.description,
            "params": lambda alg: {**base.params(alg), "injected_bug": self.name},
            "batch_axis": False,  # the hooks index the worker axis as axis 0
        }
        for half in _HALVES:
            hook = getattr(self, half)
            if hook is not None:
                real = getattr(base, half)
                namespace[half] = (lambda h, r: lambda alg, *args: h(alg, r.__get__(alg), *args))(
                    hook, real)
        for attribute, value in (self.codecs or {}).items():
            namespace[attribute] = property(value)
        mutated = copy.copy(algorithm)
        mutated.__class__ = type(f"{base.__name__}_{self.name.replace('-', '_')}", (base,),
                                 namespace)
        return mutated


def frozen(field: str, description: str, name: str) -> Mutant:
    """The workers' ``field`` is never updated: its value from before the round is put back."""

    def worker(alg: Algorithm, real: Hook, w: Any, *args: Any) -> Any:
        before = getattr(w, field)
        up = real(w, *args)
        setattr(w, field, before)
        return up

    return Mutant(name, description, worker=worker)


def frozen_server(field: str, description: str, name: str) -> Mutant:
    """The server's ``field`` is never updated."""

    def server(alg: Algorithm, real: Hook, s: Any, up_mean: Any) -> Any:
        before = getattr(s, field)
        down = real(s, up_mean)
        setattr(s, field, before)
        return down

    return Mutant(name, description, server=server)


def _swap(alg: Algorithm, attribute: str, value: Any, call: Callable[[], Any]) -> Any:
    """Call with ``alg.<attribute>`` temporarily replaced by ``value``."""
    saved = getattr(alg, attribute)
    setattr(alg, attribute, value)
    try:
        return call()
    finally:
        setattr(alg, attribute, saved)


def replaced(attribute: str, value_of: Callable[[Algorithm], Any], half: str, name: str,
             description: str, survives: str = "") -> Mutant:
    """A parameter of one half replaced by ``value_of(algorithm)`` (``β = 1`` on the server
    only...); the algorithm still claims its own value."""

    def hook(alg: Algorithm, real: Hook, *args: Any) -> Any:
        return _swap(alg, attribute, value_of(alg), lambda: real(*args))

    return Mutant(name, description, survives=survives, **{half: hook})


def scaled(attribute: str, factor: float, half: str, name: str, description: str) -> Mutant:
    """A constant of one half off by ``factor`` (``alpha``: a step ×0.5 or ×1.3, ``beta``...):
    the algorithm still claims its own value (bounds use it)."""

    return replaced(attribute, lambda alg: getattr(alg, attribute) * factor, half, name,
                    description)


def sign_flipped(name: str = "sign-flipped-message") -> Mutant:
    """The workers send the negated message."""
    return Mutant(name, "a sign error: the workers send −c_m",
                  worker=lambda alg, real, *args: -real(*args))


def summed(name: str = "sum-not-mean") -> Mutant:
    """A dropped ``1/M``: the server aggregates the sum of the messages, not their mean."""

    def worker(alg: Algorithm, real: Hook, *args: Any) -> Any:
        up = real(*args)
        return up * up.shape[0]

    return Mutant(name, "a dropped 1/M: the server uses the sum of the messages", worker=worker)


def shifted_memory(name: str = "wrong-worker-memory") -> Mutant:
    """A wrong worker index: worker ``m`` reads worker ``m+1``'s memories (its per-worker state
    rows) and writes its own. (Reading another worker's gradient instead, consistently, would
    only relabel the workers: an equivalent mutant.)"""
    from convcheck.algorithms.base import row_fields

    def worker(alg: Algorithm, real: Hook, w: Any, gradients: Any, *args: Any) -> Any:
        order = [*range(1, gradients.shape[0]), 0]
        for field in row_fields(w):
            setattr(w, field, getattr(w, field)[order])
        return real(w, gradients, *args)

    return Mutant(name, "a wrong worker index: worker m reads worker m+1's memories",
                  worker=worker)


def lost_message(name: str = "lost-message") -> Mutant:
    """The last worker's message is lost (counted as zero in the mean)."""

    def worker(alg: Algorithm, real: Hook, *args: Any) -> Any:
        up = real(*args)
        lost = 0.0 * up
        lost[:-1] = up[:-1]
        return lost

    return Mutant(name, "the last worker's message is dropped (a zero row averaged in)",
                  worker=worker)


def mispriced(side: str, codec: Any, name: str, description: str) -> Mutant:
    """The transport prices one direction with the wrong codec (``side``: ``"up"``/``"down"``)."""
    return Mutant(name, description, codecs={f"{side}_codec": lambda alg: codec})


def off_by_one(attribute: str, change: int, name: str, halves: tuple[str, ...] = ("worker",)
               ) -> Mutant:
    """A top-k count off by ``change`` (first layer for layer-wise ones) in ``halves``."""
    from convcheck.compressors import LayerTopK, TopK

    def shifted(compressor: Any, d: int) -> Any:
        if isinstance(compressor, LayerTopK):
            counts = list(compressor.k)
            counts[0] = min(max(1, counts[0] + change), compressor.layer_sizes[0])
            return LayerTopK(compressor.layer_sizes, counts)
        if isinstance(compressor, TopK):
            return TopK(k=min(max(1, compressor.k_for(d) + change), d))
        return compressor

    def hook(alg: Algorithm, real: Hook, *args: Any) -> Any:
        d = args[1].shape[-1]  # (state, vector, ...)
        return _swap(alg, attribute, shifted(getattr(alg, attribute), d), lambda: real(*args))

    sign = "+1" if change > 0 else "−1"
    return Mutant(name, f"{attribute}: top-k keeps k{sign} entries",
                  **dict.fromkeys(halves, hook))


def common(step_half: str, sparse_uplink: bool, memories: bool = True) -> tuple[Mutant, ...]:
    """The bugs any algorithm can have: the step ×0.5 and ×1.3 (``alpha`` in ``step_half``), a
    sign error, a dropped ``1/M``, a wrong worker index (when the workers keep ``memories``), a
    lost message, and the uplink priced with the wrong codec (dense for a sparse message, sparse
    for a dense one)."""
    from convcheck.algorithms.base import DENSE, SPARSE

    wrong = DENSE if sparse_uplink else SPARSE
    return (
        scaled("alpha", 0.5, step_half, "step-x0.5", "the step size is halved in the update"),
        scaled("alpha", 1.3, step_half, "step-x1.3", "the step size is 1.3× in the update"),
        sign_flipped(),
        summed(),
        *((shifted_memory(),) if memories else ()),
        lost_message(),
        mispriced("up", wrong, "uplink-priced-" + ("dense" if sparse_uplink else "sparse"),
                  "the uplink is priced with the wrong codec"),
    )

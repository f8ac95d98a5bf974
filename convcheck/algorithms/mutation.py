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
_HALVES = ("worker", "server", "receive")


@dataclass(frozen=True)
class Mutant:
    """One injected bug.

    Attributes
    ----------
    name : str
        Unique among the algorithm's mutants (``"frozen-error-memory"``).
    description : str
        The bug, in words.
    worker, server, receive : callable, optional
        Hooks replacing those halves (see :data:`Hook`).
    """

    name: str
    description: str
    worker: Hook | None = None
    server: Hook | None = None
    receive: Hook | None = None

    def apply(self, algorithm: Algorithm) -> Algorithm:
        """A copy of ``algorithm`` whose class is a subclass of its own with the hooks."""
        base = type(algorithm)
        namespace: dict[str, Any] = {
            "name": f"{base.name}[{self.name}]",
            "mutant": self,
            "__module__": __name__,
            "__doc__": self.description,
            "params": lambda alg: {**base.params(alg), "injected_bug": self.name},
        }
        for half in _HALVES:
            hook = getattr(self, half)
            if hook is not None:
                real = getattr(base, half)
                namespace[half] = (lambda h, r: lambda alg, *args: h(alg, r.__get__(alg), *args))(
                    hook, real)
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

"""Objects defined by a registry name and their constructor parameters.

Compressors, algorithms and compute-time models all report themselves the same way: ``describe``
gives plain data for traces and reports, and ``repr`` reads like the call that rebuilds them.
"""

from __future__ import annotations

from typing import Any, ClassVar


class Described:
    """Mixin: :meth:`describe` and ``repr`` from ``name`` and :meth:`params`."""

    name: ClassVar[str]

    def params(self) -> dict[str, Any]:
        """Constructor parameters (JSON-friendly)."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """``{"name", "params"}`` for traces and reports."""
        return {"name": self.name, "params": self.params()}

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.params().items())
        return f"{type(self).__name__}({args})"

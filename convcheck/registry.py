"""Registries of named things that plug-ins can extend through entry points.

A :class:`Registry` maps names to the built-in entries and, on first use, adds those that
installed packages declare under its entry-point group: ``convcheck.compressors`` (a
:class:`~convcheck.compressors.Compressor` subclass), ``convcheck.algorithms`` (an
:class:`~convcheck.algorithms.Algorithm` subclass) and ``convcheck.problems`` (a dataset, a
:class:`~convcheck.data.DatasetInfo`), e.g. in a plug-in's ``pyproject.toml``::

    [project.entry-points."convcheck.compressors"]
    half-top-k = "mypackage.compressors:HalfTopK"

The entry point's name is the registry name. A plug-in that fails to import, is not of the
registry's kind, or takes a name already registered raises :class:`PluginError` naming the
plug-in, its package and what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from convcheck.errors import ConvcheckError

T = TypeVar("T")


class PluginError(ConvcheckError, ImportError):
    """A plug-in could not be registered; the message names it, its package and the rule."""


def _package(entry: EntryPoint) -> str:
    dist = getattr(entry, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "an unknown package"


class Registry(Mapping[str, T], Generic[T]):
    """Built-in entries plus the entry points of ``group``, loaded on first use.

    Parameters
    ----------
    group : str
        Entry-point group, e.g. ``"convcheck.compressors"``.
    builtin : dict
        The built-in entries by name.
    accepts : callable
        ``accepts(obj)`` is ``""`` for an object of the registry's kind, else what is wrong
        with it.
    kind : str
        That kind in words, for errors (``"a subclass of convcheck.compressors.Compressor"``).
    """

    def __init__(self, group: str, builtin: dict[str, T], accepts: Callable[[Any], str],
                 kind: str) -> None:
        self.group, self.accepts, self.kind = group, accepts, kind
        self._entries = dict(builtin)
        self._origin = dict.fromkeys(builtin, "convcheck")
        self._loaded = self._loading = False

    def _load(self) -> None:
        """Add the plug-ins, all or none: a broken one raises at every use, not only the first
        (while a plug-in's module is being imported, the registry holds the built-ins)."""
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            entries, origin = dict(self._entries), dict(self._origin)
            for entry in entry_points(group=self.group):
                package = _package(entry)
                where = f"plug-in {entry.name!r} ({entry.value}) of package {package}"
                try:
                    obj = entry.load()
                except Exception as error:  # any failure of third-party code, reported as such
                    raise PluginError(f"{where} failed to import: {type(error).__name__}: "
                                      f"{error}. Fix or uninstall {package}.") from error
                problem = self.accepts(obj)
                if problem:
                    raise PluginError(f"{where} is {obj!r}: {problem}; entry points of "
                                      f"{self.group!r} must name {self.kind}")
                if entry.name in entries:
                    raise PluginError(f"{where} registers the name {entry.name!r}, already "
                                      f"registered by {origin[entry.name]}; names must be "
                                      "unique (rename the entry point)")
                entries[entry.name], origin[entry.name] = obj, package
            self._entries, self._origin, self._loaded = entries, origin, True
        finally:
            self._loading = False

    def reload(self) -> None:
        """Forget the plug-ins loaded so far; the next use reads the entry points again (after a
        package was installed in a running interpreter)."""
        self._entries = {k: v for k, v in self._entries.items() if self._origin[k] == "convcheck"}
        self._origin = dict.fromkeys(self._entries, "convcheck")
        self._loaded = False

    def origin(self, name: str) -> str:
        """``"convcheck"`` or the package that registered ``name``."""
        self._load()
        return self._origin[name]

    def __getitem__(self, name: str) -> T:
        self._load()
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(self._entries)

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.group!r}, {sorted(self._entries)})"

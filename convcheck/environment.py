"""The software and the machine a result was produced with, recorded in runs and reports.

Versions are read from the installed packages' metadata (nothing is imported), so recording
them is cheap and works where an optional package is absent.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

#: Packages every record names.
CORE_PACKAGES = ("convcheck", "numpy", "scipy")


@cache
def package_version(name: str) -> str:
    """The installed version of ``name``, or ``"not installed"`` (read once per process)."""
    try:
        return version(name)
    except PackageNotFoundError:
        if name == "convcheck":
            return "0+unknown"  # a source tree that is not installed
        return "not installed"


def versions(extra: Sequence[str] = ()) -> dict[str, str]:
    """Python and the versions of :data:`CORE_PACKAGES` and of ``extra`` packages."""
    out = {"python": platform.python_version()}
    out.update({name: package_version(name) for name in (*CORE_PACKAGES, *extra)})
    return out


def processor() -> str:
    """The CPU model (``/proc/cpuinfo`` where there is one, else what ``platform`` says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str]:
    """Platform, CPU model and CPU count."""
    return {"platform": platform.platform(), "processor": processor(),
            "cpus": str(os.cpu_count())}


def environment(extra: Sequence[str] = ()) -> dict[str, str]:
    """:func:`versions` and :func:`machine` in one record."""
    return {**versions(extra), **machine()}

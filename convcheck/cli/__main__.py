"""``python -m convcheck.cli``: the ``convcheck`` command."""

from convcheck.cli import console

console()

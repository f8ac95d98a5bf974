"""The ``convcheck`` command: one module per subcommand.

Subcommands: ``list`` (what is available), ``inspect`` (one problem's constants and certified
optimum), ``run`` (one run of an algorithm and its trace), ``compare`` (bits and iterations to a
target for several algorithms on one problem), ``certify`` (an LMI-certified linear rate, with
a lower bound beside it), ``regions`` (certified, worst-case and empirical stability regions
over a grid), ``verify`` (the verification suite and its report), ``mutate`` (the suite's
mutation score), ``bench`` (the engine's
performance figures), ``data`` (where the real datasets are; downloading them) and
``torch-train``. Each module offers ``add_parser(commands)``, which registers the subcommand
and its handler. Errors on bad input print one line naming the field and exit with status 2;
an interrupt (Ctrl-C, ``SIGTERM``) prints one line and exits with 128 + the signal number
(:mod:`convcheck.cli.exits` lists every status).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from convcheck.cli import exits
from convcheck.errors import ConvcheckError
from convcheck.keyvalue import parse_assignments
from convcheck.processes import (
    exit_now_on_signals,
    exit_status,
    interrupt_name,
    interruptible,
)

#: Subcommand modules, in the order ``convcheck --help`` lists them.
COMMANDS = (
    "listing", "inspect", "run", "certify", "regions", "compare", "verify", "mutate", "bench",
    "data", "torch_train",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``convcheck`` command."""
    from importlib import import_module

    parser = argparse.ArgumentParser(
        prog="convcheck",
        description="Verify the convergence theory of communication-compressed optimization.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        import_module(f"convcheck.cli.{name}").add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``convcheck`` console script (returns the exit status)."""
    with interruptible():
        try:
            args = build_parser().parse_args(argv)
            return args.handler(args)
        except ConvcheckError as error:
            print(f"convcheck: error: {error}", file=sys.stderr)
            return exits.BAD_INPUT
        except KeyboardInterrupt as interrupt:
            print(f"convcheck: interrupted ({interrupt_name(interrupt)})", file=sys.stderr)
            return exit_status(interrupt)


def console() -> None:
    """The ``convcheck`` console script and ``python -m convcheck.cli``: :func:`main`, then exit
    with its status; an interrupt that lands after the command returned (its output complete,
    the interpreter shutting down) still exits with 130 or 143."""
    status = main()
    exit_now_on_signals()
    sys.exit(status)


__all__ = ["COMMANDS", "build_parser", "console", "main", "parse_assignments"]

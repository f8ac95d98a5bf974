"""``convcheck list``: algorithms, objectives, compressors, datasets, splits and bounds."""

from __future__ import annotations

import argparse
import json

from convcheck.cli.common import DATA_DIR_HELP


def handle(args: argparse.Namespace) -> int:
    from convcheck.catalog import catalog, format_catalog
    from convcheck.data import find_data_dir

    if args.data_dir is not None:
        find_data_dir(args.data_dir)  # an explicit folder must exist (exit 2 naming it)
    entries = catalog(data_dir=args.data_dir)
    print(json.dumps(entries, indent=2) if args.json else format_catalog(entries))
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "list", help="algorithms (with their parameters), objectives, compressors, datasets, "
        "splits, scalings and every check with its provenance")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--data-dir", help=DATA_DIR_HELP)
    parser.set_defaults(handler=handle)

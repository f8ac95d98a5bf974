"""``convcheck data``: where the real datasets are looked for, and fetching them."""

from __future__ import annotations

import argparse

from convcheck.cli.common import DATA_DIR_HELP, progress_line


def handle_download(args: argparse.Namespace) -> int:
    from convcheck.data.download import download

    for name in args.names:
        paths = download(name, args.data_dir, timeout=args.timeout, progress=progress_line)
        print(f"{name}: " + ", ".join(str(p) for p in paths))
    return 0


def handle_path(args: argparse.Namespace) -> int:
    from convcheck.data import DATASETS, find_data_files, search_path
    from convcheck.data.named import data_files
    from convcheck.errors import DataFileError

    print("data folders, searched in this order:")
    for folder, why in search_path(args.data_dir):
        state = "" if folder.is_dir() else "  (does not exist)"
        print(f"  {folder}  [{why}]{state}")
    print("file-backed datasets:")
    for name, info in DATASETS.items():
        if not info.needs_data_dir:
            continue
        try:
            where = str(find_data_files(data_files(name), args.data_dir, name))
        except DataFileError:
            where = "not found (convcheck data download " + name + ")"
        print(f"  {name:14s} {where}")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    from convcheck.data.download import SOURCES, TIMEOUT

    data = commands.add_parser(
        "data", help="where the real datasets are looked for; download them (SHA-256 checked)",
        description="Real datasets (LIBSVM, MNIST) are looked for in --data-dir, then the "
        "folder of the environment variable CONVCHECK_DATA (the former name "
        "CONVCHECK_DATA_DIR is still read, with a warning), then the user cache "
        "($XDG_CACHE_HOME/convcheck or ~/.cache/convcheck). mushrooms and phishing cannot be "
        "downloaded (their published files are not the layout convcheck reads): copy them "
        "into <folder>/libsvm/.",
    )
    actions = data.add_subparsers(dest="action", required=True)
    fetch = actions.add_parser(
        "download", help="fetch datasets from their public source and check their SHA-256",
        description="Fetch datasets from their public source (the LIBSVM page, the MNIST "
        "page) into --data-dir, else CONVCHECK_DATA, else the user cache; every file's "
        "SHA-256 is checked before it is stored.",
    )
    fetch.add_argument("names", nargs="+", metavar="NAME",
                       help="dataset: " + ", ".join(SOURCES))
    fetch.add_argument("--data-dir", help="destination folder (default: CONVCHECK_DATA, "
                       "else the user cache)")
    fetch.add_argument("--timeout", type=float, default=TIMEOUT,
                       help=f"seconds to wait for a connection or data ({TIMEOUT:g})")
    fetch.set_defaults(handler=handle_download)
    path = actions.add_parser("path", help="the folders searched, and where each dataset is")
    path.add_argument("--data-dir", help=DATA_DIR_HELP)
    path.set_defaults(handler=handle_path)

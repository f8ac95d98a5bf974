"""``convcheck torch-train``: training runs of the torch backend (``convcheck.torch.train``)."""

from __future__ import annotations

import argparse

from convcheck.errors import InputError


def handle(args: argparse.Namespace) -> int:
    try:
        from convcheck.torch.train import main as torch_train
    except ModuleNotFoundError as error:
        if error.name != "torch":
            raise
        raise InputError("torch", "not installed", "pip install 'convcheck[torch]'") from None
    return torch_train(args.args)


def add_parser(commands: argparse._SubParsersAction) -> None:
    torch_train = commands.add_parser(
        "torch-train",
        help="train a network with the torch backend on simulated workers (CONFIG.toml …)",
        description="Same as python -m convcheck.torch.train; see its --help.",
    )
    torch_train.add_argument("args", nargs=argparse.REMAINDER, help="CONFIG.toml [options]")
    torch_train.set_defaults(handler=handle)

"""docs/cli.md is what the parser generates (regenerate: python -m convcheck.cli.reference)."""

from __future__ import annotations

import argparse
from pathlib import Path

from convcheck.cli import build_parser
from convcheck.cli.reference import markdown

CLI_MD = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_docs_cli_md_matches_the_parser():
    assert CLI_MD.read_text(encoding="utf-8") == markdown(), (
        "docs/cli.md is out of date: run  python -m convcheck.cli.reference > docs/cli.md")


def test_every_command_and_option_is_documented():
    text = markdown()
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, sub in commands.choices.items():
        assert f"## `convcheck {name}`" in text
        for action in sub._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert f"`{flag}" in text, (name, flag)
    assert "--set keys of each algorithm" in text  # run's epilog: every algorithm's keys

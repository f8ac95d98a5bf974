"""docs/cli.md, generated from the argument parser (so it cannot drift from it).

``python -m convcheck.cli.reference > docs/cli.md`` writes it; ``tests/cli/test_reference.py``
fails when the committed file differs from :func:`markdown`. Every subcommand gets its purpose,
a synopsis and one table row per option (flags, value, default, choices, help); ``run``
also gets its examples and every algorithm's and compressor's ``--set`` keys.
"""

from __future__ import annotations

import argparse

HEADER = """\
# Command reference

Generated from the parser by `python -m convcheck.cli.reference > docs/cli.md`; do not edit by
hand (`tests/cli/test_reference.py` checks that this file matches the parser). Every command
prints its own help with `--help`. Bad input exits with status 2 and one line naming the field
and the allowed values.
"""


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _flags(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    value = ""
    if action.nargs != 0:
        value = " " + (action.metavar or action.dest.upper())
    return ", ".join(f"`{flag}{value}`" for flag in action.option_strings)


def _default(action: argparse.Action) -> str:
    if action.required:
        return "required"
    if action.default in (None, argparse.SUPPRESS) or action.nargs == 0 \
            or isinstance(action, argparse.BooleanOptionalAction):
        return ""
    if isinstance(action.default, list):
        return ""
    return f"`{action.default}`"


def _rows(parser: argparse.ArgumentParser) -> list[str]:
    lines = ["| option | default | choices | meaning |", "|---|---|---|---|"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        choices = ", ".join(map(str, action.choices)) if action.choices else ""
        lines.append(f"| {_flags(action)} | {_default(action)} | {_cell(choices)} | "
                     f"{_cell(action.help or '')} |")
    return lines


def _synopsis(parser: argparse.ArgumentParser) -> str:
    """``prog`` with its required options and positionals, then ``[options]``."""
    words = [parser.prog]
    for action in parser._actions:
        if action.option_strings and action.required:
            words.append(f"{action.option_strings[0]} {action.metavar or action.dest.upper()}")
        elif not action.option_strings and not isinstance(action, argparse._SubParsersAction):
            name = action.metavar or action.dest
            words.append(f"{name} …" if action.nargs in ("+", "*", "...") else name)
        elif isinstance(action, argparse._SubParsersAction):
            words.append("{" + ",".join(action.choices) + "} …")
    return " ".join(words) + " [options]"


def _section(parser: argparse.ArgumentParser, title: str, summary: str, level: int = 2
             ) -> list[str]:
    lines = [f"{'#' * level} `{title}`", "", summary, ""]
    if parser.description and parser.description != summary:
        lines += [" ".join(parser.description.split()), ""]
    lines += ["```", _synopsis(parser), "```", "", *_rows(parser), ""]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                lines += _section(sub, f"{title} {name}", helps.get(name, ""), level + 1)
    if parser.epilog:
        lines += ["```", parser.epilog.strip(), "```", ""]
    return lines


def markdown() -> str:
    """The whole command reference as Markdown."""
    from convcheck.cli import build_parser

    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {choice.dest: choice.help for choice in commands._choices_actions}
    lines = [HEADER, "Commands: " + ", ".join(f"[`{name}`](#convcheck-{name})"
                                              for name in commands.choices), ""]
    for name, sub in commands.choices.items():
        lines += _section(sub, f"convcheck {name}", helps.get(name, ""))
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(markdown(), end="")

"""``KEY=VALUE`` parameters as the command line and comparison specs write them."""

from __future__ import annotations

from collections.abc import Sequence

from convcheck.errors import InputError


def parse_value(raw: str) -> int | float | bool | str | list[int | float]:
    """``"true"`` → True, ``"3"`` → 3, ``"0.5"`` → 0.5, ``"3,3"`` or ``"[3, 3]"`` → ``[3, 3]``
    (numbers only), anything else stays a string."""
    text = raw.strip()
    bracketed = text.startswith("[") and text.endswith("]")
    if "," in text or bracketed:
        items = [parse_value(item) for item in (text[1:-1] if bracketed else text).split(",")]
        if items and all(isinstance(item, (int, float)) and not isinstance(item, bool)
                         for item in items):
            return items  # type: ignore[return-value]
        return raw
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return raw


def parse_assignments(items: Sequence[str], field: str = "--set") -> dict:
    """``["k=10", "ratio=0.1", "scaled=true", "name=x", "layers=10,20"]`` → typed dict (int,
    float, bool, str, list of numbers: :func:`parse_value`).

    A key given twice is refused (``--set alpha=0.1 --set alpha=0.2`` is ambiguous).
    """
    values: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(field, item, "KEY=VALUE, e.g. alpha=1/L")
        if key in values:
            raise InputError(field, item, f"each key once ({key!r} is given twice)")
        values[key] = parse_value(raw.strip())
    return values


def parse_numbers(field: str, text: str | None) -> list[float] | None:
    """``"1,2.5,3"`` → ``[1.0, 2.5, 3.0]``; errors name ``field``."""
    if text is None:
        return None
    try:
        return [float(item) for item in text.split(",")]
    except ValueError:
        raise InputError(field, text, "comma-separated numbers, e.g. 1,2,3") from None

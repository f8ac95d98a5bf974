"""The ```python blocks of README.md run as written (so the README stays true)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[str]:
    """The bodies of the fenced ```python blocks of a Markdown text, in order."""
    return BLOCK.findall(text)


def test_block_extraction():
    text = "intro\n```python\nx = 1\n```\n\n```bash\nls\n```\n```python\ny = 2\nz = 3\n```\n"
    assert python_blocks(text) == ["x = 1\n", "y = 2\nz = 3\n"]


def test_readme_has_a_python_example():
    assert python_blocks(README.read_text(encoding="utf-8")), f"no ```python block in {README}"


@pytest.mark.parametrize(
    "index", range(len(python_blocks(README.read_text(encoding="utf-8")))),
    ids=lambda i: f"block{i}",
)
def test_readme_python_block_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # files the examples write land in a temporary folder
    source = python_blocks(README.read_text(encoding="utf-8"))[index]
    exec(compile(source, f"{README}:python-block-{index}", "exec"), {"__name__": "__readme__"})

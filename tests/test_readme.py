"""The README stays true: its examples run, its two commands are the ones CI runs, and running
them leaves a clone clean (the report and the quick start's files are git-ignored)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: Pages whose ```python blocks must run as written.
EXAMPLES = (README, ROOT / "docs" / "python.md", ROOT / "docs" / "torch.md")
#: Of these, the pages whose examples need torch (skipped where it is not installed).
NEEDS_TORCH = (ROOT / "docs" / "torch.md",)
BLOCK = re.compile(r"^```python\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[str]:
    """The bodies of the fenced ```python blocks of a Markdown text, in order."""
    return BLOCK.findall(text)


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```\s*$", text, re.MULTILINE | re.DOTALL)


def fresh_machine_commands(text: str) -> list[str]:
    """The indented command lines of the README's "On a fresh machine" section."""
    section = text.split("## On a fresh machine", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in section.splitlines() if line.startswith("    python3 ")]


def quick_start(text: str) -> list[str]:
    """The quick start's commands (continuation lines joined)."""
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    [block] = fenced(section, "bash")
    lines = block.replace("\\\n", " ").splitlines()
    return [" ".join(line.split("#", 1)[0].split()) for line in lines if line.strip()]


def test_block_extraction():
    text = "intro\n```python\nx = 1\n```\n\n```bash\nls\n```\n```python\ny = 2\nz = 3\n```\n"
    assert python_blocks(text) == ["x = 1\n", "y = 2\nz = 3\n"]
    assert fenced(text, "bash") == ["ls\n"]


def test_the_python_examples_exist():
    for page in EXAMPLES[1:]:
        assert python_blocks(page.read_text(encoding="utf-8")), page.name


@pytest.mark.parametrize(
    ("page", "index"),
    [(page, i) for page in EXAMPLES
     for i in range(len(python_blocks(page.read_text(encoding="utf-8"))))],
    ids=lambda value: value.name if isinstance(value, Path) else f"block{value}",
)
def test_python_block_runs(page, index, tmp_path, monkeypatch):
    if page in NEEDS_TORCH:
        pytest.importorskip("torch", reason="the PyTorch backend's examples need torch")
    monkeypatch.chdir(tmp_path)  # files the examples write land in a temporary folder
    source = python_blocks(page.read_text(encoding="utf-8"))[index]
    exec(compile(source, f"{page}:python-block-{index}", "exec"), {"__name__": "__readme__"})


def test_the_two_commands_and_ci():
    main, tests = fresh_machine_commands(README.read_text(encoding="utf-8"))
    assert main.endswith("pip install -e . && convcheck verify --jobs 2")
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in tests
    assert tests.endswith(" && python -m pytest")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert tests.removesuffix(" && python -m pytest") in ci  # CI installs as the README says
    assert re.search(r"^python -m pytest$", ci, re.MULTILINE)


def test_the_quick_start_case_file_is_a_valid_case(tmp_path):
    from convcheck.verification import load_suite

    [toml] = fenced(README.read_text(encoding="utf-8"), "toml")
    (tmp_path / "my-case.toml").write_text(toml)
    [case] = load_suite([tmp_path / "my-case.toml"])
    assert case.algorithm_name == "gd" and [c.bound for c in case.checks] == ["gd/strongly-convex"]


def _git(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


needs_git = pytest.mark.skipif(
    shutil.which("git") is None or _git("rev-parse", "--git-dir").returncode != 0,
    reason="not a git checkout")


@needs_git
def test_what_the_readme_writes_is_ignored():
    from convcheck.cli import build_parser

    out = build_parser().parse_args(["verify"]).out
    for path in (f"{out}/index.html", f"{out}/plots/x.png", "out/trace.csv", ".venv/bin/python"):
        assert _git("check-ignore", "-q", path).returncode == 0, f"{path} is not git-ignored"
    for path in ("docs/example-report/index.html", "docs/example-report/results.json"):
        assert _git("ls-files", "--error-unmatch", path).returncode == 0, f"{path} not committed"
        assert _git("check-ignore", "-q", path).returncode != 0


@needs_git
@pytest.mark.slow
def test_readme_commands_leave_a_fresh_clone_clean(tmp_path):
    """Clone, run the main job, the quick start, and the test command (pytest limited to one
    module), then ``git status`` must be clean. Prints the main job's time."""
    clone = tmp_path / "convcheck"
    assert _git("clone", "--quiet", str(ROOT), str(clone)).returncode == 0
    text = (clone / "README.md").read_text(encoding="utf-8")
    main, tests = fresh_machine_commands(text)
    # an unreachable package index fails at once instead of retrying (offline machines)
    env = {**os.environ, "PIP_RETRIES": "0", "PYTEST_ADDOPTS": "tests/test_keyvalue.py",
           "PYTHONDONTWRITEBYTECODE": ""}
    env.pop("VIRTUAL_ENV", None)

    def bash(command: str) -> float:
        started = time.perf_counter()
        done = subprocess.run(["bash", "-c", command], cwd=clone, env=env, timeout=1800,
                              capture_output=True, text=True)
        assert done.returncode == 0, (command, done.stdout[-3000:], done.stderr[-3000:])
        return time.perf_counter() - started

    seconds = bash(main)
    assert (clone / "reports" / "index.html").is_file()
    print(f"main job in a fresh clone: {seconds:.0f} s")
    [case] = fenced(text, "toml")
    (clone / "out").mkdir()
    (clone / "out" / "my-case.toml").write_text(case)
    bash(". .venv/bin/activate && " + " && ".join(quick_start(text)))
    assert (clone / "out" / "my-report" / "index.html").is_file()
    bash(tests)
    status = _git("status", "--porcelain", "--ignore-submodules", cwd=clone)
    assert status.returncode == 0 and status.stdout == "", status.stdout

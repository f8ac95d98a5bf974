"""Faults during ``convcheck verify --jobs 2``: signals at several points leave no process
alive, no stray staging folder after the next run, the previous report intact; a user's file in
``--out`` survives.

The runs are real subprocesses (a console script started as a user would), on three cases that
take a few seconds each, so the workers are busy when the signal arrives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from convcheck.cli import main

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                reason="the process-tree checks read /proc (Linux)")

CASE = """
description = "GD on a ridge problem, long enough to be interrupted"
[problem]
family = "ridge"
dataset = "synthetic-regression"
workers = 4
dataset_params = {{ n_samples = 4000, n_features = 40, seed = {seed} }}
[algorithm]
name = "gd"
alpha = "1/L"
[run]
iterations = 3000
seeds = [0, 1]
target = 1e-4
[[checks]]
bound = "converges"
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Three case files and a previous report folder (its marker lists its files)."""
    from convcheck.report.folder import write_files, write_marker

    folder = tmp_path_factory.mktemp("faults")
    cases = folder / "cases"
    cases.mkdir()
    for seed in range(3):
        (cases / f"slow{seed}.toml").write_text(CASE.format(seed=seed))
    previous = folder / "previous"
    write_files(previous, {"index.md": b"previous", "index.html": b"<p>previous</p>",
                           "results.json": b"{}", "plots/rates.png": b"png"})
    write_marker(previous)
    return cases, previous


def verify(cases, out, **popen):
    return subprocess.run(command(cases, out), capture_output=True, text=True, timeout=300,
                          **popen)


def command(cases, out):
    return [sys.executable, "-m", "convcheck.cli", "verify", str(cases), "--jobs", "2",
            "--out", str(out)]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def children(pid: int) -> set[int]:
    """The descendants of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


def interrupt(tmp_path, setup, signum, when):
    """Start verify over a copy of the previous report, send ``signum`` at ``when``
    ("running": the first case is done; "writing": the staging folder exists); the exit
    status, stderr, the processes it had, and the output folder."""
    import shutil

    cases, previous = setup
    out = tmp_path / "report"
    shutil.copytree(previous, out)
    before = snapshot(out)
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as stream:
        process = subprocess.Popen(command(cases, out), stdout=subprocess.DEVNULL,
                                   stderr=stream, text=True)
    family: set[int] = set()
    deadline = time.monotonic() + 240
    while process.poll() is None and time.monotonic() < deadline:
        family |= children(process.pid)
        ready = ("ok   " in errors.read_text() if when == "running"
                 else any(p.name.endswith(".partial") for p in tmp_path.iterdir()))
        if ready:
            break
        time.sleep(0.02)
    assert process.poll() is None, "verify ended before the signal: " + errors.read_text()
    family |= children(process.pid)
    assert family, "no worker process was seen"
    process.send_signal(signum)
    signalled = time.monotonic()
    status = process.wait(timeout=60)
    # quickly: the cases under way are abandoned, not waited for (each takes a few seconds;
    # the margin is for a loaded machine)
    assert time.monotonic() - signalled < 10
    time.sleep(5)
    left = sorted(pid for pid in family if alive(pid))
    for pid in left:  # do not leave them behind for the next test
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes alive 5 s after the signal: {left}"
    return status, errors.read_text(), out, before


def test_ctrl_c_while_cases_run_stops_everything_with_one_line(tmp_path, setup):
    code, stderr, out, before = interrupt(tmp_path, setup, signal.SIGINT, "running")
    assert code == 130
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == \
        "convcheck: interrupted (SIGINT)"
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "stderr.txt"]


@pytest.mark.slow
@pytest.mark.parametrize("when", ["running", "writing"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_signals_at_several_points(tmp_path, setup, signum, when):
    """Whatever the signal and the moment, the workers and the resource tracker are gone 5 s
    later, ``--out`` holds a complete report (the previous one, or the new one when the swap
    had already happened), and the next run leaves no staging folder behind."""
    code, stderr, out, before = interrupt(tmp_path, setup, signum, when)
    assert code == (-signal.SIGKILL if signum == signal.SIGKILL else 128 + signum)
    assert "Traceback" not in stderr
    after = snapshot(out)
    assert after == before or after[".convcheck-report.json"] != before[".convcheck-report.json"]
    if signum == signal.SIGKILL and when == "writing":  # nothing could clean up
        assert any(p.name.endswith(".partial") for p in tmp_path.iterdir())
    done = verify(setup[0], out)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "stderr.txt"]


def test_a_user_file_in_out_survives(tmp_path, setup, capsys):
    cases, previous = setup
    import shutil

    out = tmp_path / "report"
    shutil.copytree(previous, out)
    (out / "plots" / "fig1.pdf").write_text("mine")
    assert main(["verify", str(cases), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "plots/fig1.pdf (not written by the report)" in error
    assert (out / "plots" / "fig1.pdf").read_text() == "mine"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_a_billion_iterations_to_a_target_stay_under_100_mb(tmp_path):
    """``run --iters 10**9`` that reaches its target in about 7000 rounds: the trace grows by
    blocks with the rows recorded, so the process peaks at the interpreter's and numpy's own
    size (embedded scikit-learn datasets add scikit-learn's import, about 110 MB more). The
    command runs in a fresh interpreter that reports its own peak resident size (VmHWM)."""
    argv = ["run", "--algorithm", "gd", "--problem", "logistic", "--dataset",
            "synthetic-classification", "--iters", str(10**9), "--target", "1e-12",
            "--target-metric", "grad_norm_sq", "--no-cross-check", "--set", "alpha=0.01/L"]
    # VmHWM, the peak of this process's own memory map (ru_maxrss would carry over the peak of
    # the forked test process across exec)
    script = ("import sys\nfrom convcheck.cli import main\n"
              f"status = main({argv!r})\n"
              "peak = [line for line in open('/proc/self/status') if line.startswith('VmHWM')]\n"
              "print('peak-kb', peak[0].split()[1])\n"
              "sys.exit(status)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "target reached" in done.stdout
    peak_kb = int(done.stdout.split("peak-kb")[-1])
    assert peak_kb <= 100 * 1024, peak_kb

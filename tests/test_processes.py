"""Workers die with their parent; SIGTERM unwinds like Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from convcheck.processes import Interrupted, exit_status, interrupt_name, interruptible

#: A parent that starts a child which calls die_with_parent, prints the child's id and waits.
PARENT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", {child!r}], stdout=subprocess.PIPE, text=True)
print(child.stdout.readline().strip(), flush=True)
import time; time.sleep(600)
"""
CHILD = """
import os, re, time
import convcheck.processes as processes
{setup}
processes.die_with_parent(os.getppid())
print(os.getpid(), flush=True)
{wait}
"""


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize(("setup", "wait", "within"), [
    # the kernel's parent-death signal, while the worker holds the GIL (the watcher cannot run)
    ("", "re.fullmatch('(a+)+b', 'a' * 64)", 2.0),
    # the portable watcher alone
    ("processes.sys = type('NotLinux', (), {'platform': 'other'})", "time.sleep(600)", 3.0),
])
def test_a_worker_dies_with_its_killed_parent(setup, wait, within):
    child = CHILD.format(setup=setup, wait=wait)
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(child=child)],
                              stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        assert not gone_within(worker, 0.5)  # alive while its parent is
        parent.kill()
        parent.wait()
        dead = gone_within(worker, within)
        if not dead:
            os.kill(worker, signal.SIGKILL)
        assert dead
    finally:
        parent.kill()


def test_sigterm_raises_an_interrupt_inside_only():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as info, interruptible():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler runs at the next bytecode boundary
    assert exit_status(info.value) == 143 and interrupt_name(info.value) == "SIGTERM"
    assert isinstance(info.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) is before
    assert exit_status(KeyboardInterrupt()) == 130 and interrupt_name(KeyboardInterrupt()) == \
        "SIGINT"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_after_the_command_returned_exits_as_an_interrupt(signum):
    """What the console script does after main returned: the output printed so far is kept
    and the status is 128 + the signal, not a KeyboardInterrupt escaping at shutdown."""
    script = ("import os, signal, sys, time\n"
              "from convcheck.processes import exit_now_on_signals\n"
              "print('report written')\n"
              "exit_now_on_signals()\n"
              f"os.kill(os.getpid(), {int(signum)})\n"
              "time.sleep(30)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 128 + signum
    assert done.stdout == "report written\n" and "Traceback" not in done.stderr

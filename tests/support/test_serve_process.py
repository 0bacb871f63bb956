"""The process-tree helpers tolerate processes that exit while they look."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.support.serve_process import child_pids, free_port, listens_on


def _exited_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_an_exited_process_has_no_children_and_listens_nowhere() -> None:
    pid = _exited_pid()

    assert child_pids(pid) == []
    assert listens_on(pid, free_port()) is False


def test_a_running_process_lists_its_children() -> None:
    waits_for_a_line = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'input()'])"
    parent = subprocess.Popen([sys.executable, "-c", waits_for_a_line], stdin=subprocess.PIPE)
    try:
        children: list[int] = []
        for _ in range(200):
            children = child_pids(parent.pid)
            if children:
                break
            time.sleep(0.02)
        assert len(children) == 1
    finally:
        parent.communicate(b"\n", timeout=30)

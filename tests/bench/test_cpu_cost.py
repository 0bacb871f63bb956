"""CPU time of a server's processes for the benchmark's cost figures: parsed from
/proc/<pid>/stat, children included, and turned into per-unit figures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.report import cost_figures
from bench.scenarios import other_buckets
from bench.server import CpuClock, cpu_seconds, stat_cpu_ticks

BUSY_CHILD = """
import subprocess, sys
child = (
    "import time\\n"
    "t = time.process_time()\\n"
    "while time.process_time() - t < 0.4: pass\\n"
    "time.sleep(60)\\n"
)
subprocess.run([sys.executable, "-c", child])
"""


def test_ticks_are_fields_14_and_15_after_a_command_name_with_spaces() -> None:
    # fields 4 … 52 hold their own number, so utime (14) + stime (15) = 29
    rest = " ".join(str(n) for n in range(4, 53))
    assert stat_cpu_ticks(f"42 (we (i) rd) R {rest}") == 29


def test_cpu_seconds_include_the_children() -> None:
    parent = subprocess.Popen([sys.executable, "-c", BUSY_CHILD], start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        spent = 0.0
        while spent < 0.4:
            assert time.monotonic() < deadline, f"only {spent} s of CPU seen"
            time.sleep(0.1)
            spent = cpu_seconds(parent.pid) or 0.0
        # the parent itself only waits: most of it is the child's
        stat = Path(f"/proc/{parent.pid}/stat").read_text()
        own = stat_cpu_ticks(stat) / os.sysconf("SC_CLK_TCK")
        assert own < 0.3 <= spent - own
        with CpuClock(parent.pid, None) as clock:
            time.sleep(0.05)  # both sleep now
        server, database = clock.seconds
        assert server is not None and server < 0.05
        assert database is None
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()
    assert cpu_seconds(parent.pid) is None
    with CpuClock(parent.pid) as gone:
        pass
    assert gone.seconds == [None]


def test_cost_figures_per_unit() -> None:
    found = cost_figures(200_000, 1_000_000, 4.0, None, connections=16)
    assert found == {
        "connections": 16,
        "count": 200_000,
        "per": 1_000_000,
        "server_cpu_s": 4.0,
        "database_cpu_s": None,
        "server_cpu_s_per": 20.0,
        "database_cpu_s_per": None,
    }
    assert cost_figures(0, 1000, 1.0, 1.0)["server_cpu_s_per"] is None
    assert cost_figures(500, 1000, 9.0, 3.0)["database_cpu_s_per"] == 6.0


def test_mixed_pushes_go_to_other_buckets_than_the_read_bucket() -> None:
    assert other_buckets(["b1", "b2", "b3"], "b2") == ["b1", "b3"]
    assert other_buckets(["b1"], "b1") == ["b1"]  # nothing else to push into

"""A ``packyard serve`` process under test, and the memory it uses."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.processes import free_port, stop
from packyard.services.bootstrap import AdminCredentials


def packyard_command() -> list[str]:
    """The ``packyard`` console script of the running interpreter's environment."""
    beside = Path(sys.executable).with_name("packyard")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("packyard")
    if found:
        return [found]
    return [sys.executable, "-c", "from packyard.cli.main import main; main()"]


@dataclass(slots=True)
class RunningServer:
    pid: int
    base_url: str
    token: str
    log: Path


@dataclass(frozen=True, slots=True)
class ServerMemory:
    """Resident memory of a server process and its workers (if any), in MiB.

    ``resident``: every resident page of the server once, which is what RSS means for
    a single process (``serve`` with one worker serves from one process). With
    ``--workers N`` the workers are forked from the supervisor and share its pages
    until they write to them, so this is the supervisor's RSS plus the pages each
    worker has of its own (private clean + private dirty, the USS).
    ``rss_sum`` adds up each process's RSS, counting every shared page once per
    process; ``pss`` divides shared pages among the processes sharing them.
    """

    resident: float
    rss_sum: float
    pss: float
    processes: int

    def to_json(self) -> dict[str, float]:
        return {
            "resident": round(self.resident, 1),
            "rss_sum": round(self.rss_sum, 1),
            "pss": round(self.pss, 1),
            "processes": self.processes,
        }


def server_memory(pid: int) -> ServerMemory | None:
    """The memory of ``pid`` and its descendants; ``None`` once the process is gone."""
    root = _rollup(pid)
    if root is None:
        return None
    workers = [m for m in (_rollup(child) for child in _descendants(pid)) if m is not None]
    private = sum(m["Private_Clean"] + m["Private_Dirty"] for m in workers)
    return ServerMemory(
        resident=root["Rss"] + private,
        rss_sum=root["Rss"] + sum(m["Rss"] for m in workers),
        pss=root["Pss"] + sum(m["Pss"] for m in workers),
        processes=1 + len(workers),
    )


def _rollup(pid: int) -> dict[str, float] | None:
    """``/proc/<pid>/smaps_rollup`` in MiB."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    except OSError:
        return None
    out: dict[str, float] = {}
    for line in lines:
        name, _, value = line.partition(":")
        out[name] = int(value.split()[0]) / 1024
    return out


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *_descendants(child)]
    return found


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) that ``pid`` and its descendants have used so far, in seconds;
    ``None`` once the process is gone. Take the difference of two readings."""
    own = _cpu_ticks(pid)
    if own is None:
        return None
    children = (_cpu_ticks(child) for child in _descendants(pid))
    return (own + sum(t for t in children if t is not None)) / os.sysconf("SC_CLK_TCK")


def stat_cpu_ticks(stat: str) -> int:
    """utime + stime (fields 14 and 15) of a ``/proc/<pid>/stat`` line, in clock ticks. The
    fields are counted after the command name, which is in parentheses and may hold spaces
    and parentheses itself."""
    fields = stat.rpartition(")")[2].split()  # fields[0] is field 3, the state
    return int(fields[11]) + int(fields[12])


def _cpu_ticks(pid: int) -> int | None:
    try:
        return stat_cpu_ticks(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, IndexError, ValueError):
        return None


class CpuClock:
    """CPU seconds the processes of ``pids`` (and their descendants) use inside the block:
    ``seconds`` per pid, ``None`` where a process was gone at either end."""

    def __init__(self, *pids: int | None) -> None:
        self.pids = pids
        self._start: list[float | None] = []
        self.seconds: list[float | None] = []

    def __enter__(self) -> CpuClock:
        self._start = [cpu_seconds(pid) if pid else None for pid in self.pids]
        return self

    def __exit__(self, *_: object) -> None:
        end = [cpu_seconds(pid) if pid else None for pid in self.pids]
        self.seconds = [
            None if a is None or b is None else round(b - a, 3)
            for a, b in zip(self._start, end, strict=True)
        ]


class MemorySampler:
    """Samples a server's memory in the background; ``peak`` holds the largest values seen."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.peak: ServerMemory | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = server_memory(self.pid)
            if now is not None:
                before = self.peak or now
                self.peak = ServerMemory(
                    resident=max(before.resident, now.resident),
                    rss_sum=max(before.rss_sum, now.rss_sum),
                    pss=max(before.pss, now.pss),
                    processes=max(before.processes, now.processes),
                )
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def fetch_token(base_url: str, creds: AdminCredentials) -> str:
    response = httpx.post(
        base_url + "/oauth2/token",
        data={"grant_type": "client_credentials", "audience": "https://api.hashicorp.cloud"},
        auth=(creds.client_id, creds.client_secret),
        timeout=30,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


@contextmanager
def packyard_server(
    data_dir: Path,
    database_url: str | None,
    creds: AdminCredentials,
    *,
    log_dir: Path,
    workers: int = 1,
    env: dict[str, str] | None = None,
) -> Iterator[RunningServer]:
    """Run ``packyard serve`` (plain HTTP, like nginx) with ``workers`` processes and ``env``
    added to the harness's environment until the block ends."""
    port = free_port()
    log = log_dir / f"packyard-{port}.log"
    cmd = [
        *packyard_command(),
        "serve",
        "--data-dir",
        str(data_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        # plain HTTP straight to the server: no --public-address, which would say a TLS
        # proxy stands in front (and make the console's cookies Secure)
        "--no-tls",
        "--log-level",
        "warning",
        "--workers",
        str(workers),
    ]
    if database_url:
        cmd += ["--database-url", database_url]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        token = _wait_ready(proc, base_url, creds, log)
        yield RunningServer(pid=proc.pid, base_url=base_url, token=token, log=log)
    finally:
        stop(proc, signal.SIGINT, timeout=15)


def _wait_ready(
    proc: subprocess.Popen[bytes], base_url: str, creds: AdminCredentials, log: Path
) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"packyard serve exited: {log.read_text()[-2000:]}")
        try:
            return fetch_token(base_url, creds)
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(f"packyard serve did not answer in 60 s: {log.read_text()[-2000:]}")

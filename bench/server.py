"""A ``packyard serve`` process under test, and the memory it uses."""

from __future__ import annotations

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


def rss_mb(pid: int) -> float | None:
    """VmRSS of a process and all its descendants (worker processes), in MiB.

    ``None`` once the process is gone.
    """
    own = _vm_rss_mb(pid)
    if own is None:
        return None
    return own + sum(_vm_rss_mb(child) or 0.0 for child in _descendants(pid))


def _vm_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


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


class RssSampler:
    """Samples a process's RSS in the background; ``peak`` is the largest value seen."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            value = rss_mb(self.pid)
            if value is not None:
                self.peak = max(self.peak, value)
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
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
) -> Iterator[RunningServer]:
    """Run ``packyard serve`` (plain HTTP, like nginx) with ``workers`` processes until the
    block ends."""
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
        "--no-tls",
        "--public-address",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "--workers",
        str(workers),
    ]
    if database_url:
        cmd += ["--database-url", database_url]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
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

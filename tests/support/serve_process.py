"""Run the real ``packyard serve`` (and other CLI commands) as subprocesses on loopback."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PACKYARD = Path(sys.executable).parent / "packyard"


def _entries(directory: str) -> list[Path]:
    """The entries of a ``/proc`` directory; none when its process has exited meanwhile."""
    try:
        return list(Path(directory).iterdir())
    except OSError:
        return []


def child_pids(pid: int) -> list[int]:
    found: list[int] = []
    for task in _entries(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _process_tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += child_pids(current)
    return found


def listens_on(pid: int, port: int) -> bool:
    """Whether ``pid`` or one of its descendants holds the socket listening on ``port`` on
    loopback (Linux ``/proc``): another test's server may have taken a port picked free."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    for member in _process_tree(pid):
        for fd in _entries(f"/proc/{member}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(fd) in inodes:
                    return True
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_env(**extra: str) -> dict[str, str]:
    """The test process's environment without Packyard/HCP settings, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PACKYARD_", "HCP_")) and k not in ("COLUMNS",)
    }
    env.update(extra)
    return env


def run_cli(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PACKYARD), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(**env),
        check=False,
    )


class PortTaken(RuntimeError):
    """The port picked free was taken by another process before the server listened."""


class ServeProcess:
    """``packyard serve --data-dir DATA_DIR --port PORT ARGS`` on 127.0.0.1, with ``env``
    added to a clean environment.

    Used as a context manager: started (and listening) on entry, stopped on exit.
    Its stdout (the start-up banner) and stderr (the server's logging) go to
    files in ``log_dir`` (default: beside the data directory).
    """

    def __init__(
        self,
        data_dir: Path,
        *args: str,
        port: int | None = None,
        log_dir: Path | None = None,
        startup_timeout: float = 60,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.env = env or {}
        self.args = args
        self.port = port or free_port()
        self.port_chosen = port is None
        self.tls = "--no-tls" not in args
        self.startup_timeout = startup_timeout
        logs = log_dir or data_dir.parent
        stamp = f"{self.port}-{time.monotonic_ns()}"
        self.stdout_path = logs / f"serve-{stamp}.out"
        self.stderr_path = logs / f"serve-{stamp}.err"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for_stderr(self, text: str, timeout: float = 15.0) -> str:
        """Standard error once it holds ``text`` (the banner may follow the listening socket
        by a moment on a loaded machine)."""
        deadline = time.monotonic() + timeout
        while text not in self.stderr and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.stderr

    def start(self) -> ServeProcess:
        for _ in range(3):
            try:
                return self._start()
            except PortTaken:
                self.port = free_port()
        return self._start()

    def _start(self) -> ServeProcess:
        self.stdout_path.parent.mkdir(parents=True, exist_ok=True)
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [
                    str(PACKYARD),
                    "serve",
                    "--data-dir",
                    str(self.data_dir),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    *self.args,
                ],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=cli_env(**self.env),
            )
        try:
            self._wait_listening(self.process, time.monotonic() + self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_listening(self, process: subprocess.Popen[bytes], deadline: float) -> None:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                if self.port_chosen and "cannot listen on" in self.stderr:
                    raise PortTaken(self.port)
                raise RuntimeError(
                    f"packyard serve exited with {process.returncode}:\n{self.stderr[-4000:]}"
                )
            if listens_on(process.pid, self.port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"packyard serve did not start listening:\n{self.stderr[-4000:]}")

    def kill(self) -> None:
        """``kill -9`` of the whole server (its workers first, then the supervisor): no
        clean-up of any kind, as when the machine or the container dies."""
        if self.process is not None and self.process.poll() is None:
            for pid in [*self.worker_pids(), self.process.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def worker_pids(self) -> list[int]:
        """The worker processes of the running server (children of its supervisor)."""
        if self.process is None:
            return []
        return child_pids(self.process.pid)

    def stop(self) -> None:
        """SIGTERM (a graceful shutdown), then ``kill -9`` if it takes over 20 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def plain_http_server(
    data_dir: Path, database_url: str | None = None, *extra: str, log_level: str = "warning"
) -> ServeProcess:
    """``packyard serve --no-tls`` at ``log_level``, on ``database_url`` when given, plus
    ``extra`` options."""
    database = ["--database-url", database_url] if database_url else []
    return ServeProcess(data_dir, "--no-tls", "--log-level", log_level, *database, *extra)

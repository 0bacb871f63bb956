"""Run the real ``packyard serve`` (and other CLI commands) as subprocesses on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PACKYARD = Path(sys.executable).parent / "packyard"


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


@dataclass
class ServeProcess:
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    stdout_path: Path
    stderr_path: Path
    tls: bool

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _wait_listening(proc: ServeProcess, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise RuntimeError(
                f"packyard serve exited with {proc.process.returncode}:\n{proc.stderr[-4000:]}"
            )
        try:
            with socket.create_connection(("127.0.0.1", proc.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"packyard serve did not start listening:\n{proc.stderr[-4000:]}")


@contextmanager
def serving(
    data_dir: Path,
    *args: str,
    port: int | None = None,
    log_dir: Path | None = None,
    startup_timeout: float = 60,
) -> Iterator[ServeProcess]:
    """Start ``packyard serve --data-dir DATA_DIR --port P ARGS`` and stop it afterwards."""
    port = port or free_port()
    logs = log_dir or data_dir.parent
    logs.mkdir(parents=True, exist_ok=True)
    stamp = f"{port}-{time.monotonic_ns()}"
    stdout_path, stderr_path = logs / f"serve-{stamp}.out", logs / f"serve-{stamp}.err"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        process = subprocess.Popen(
            [
                str(PACKYARD),
                "serve",
                "--data-dir",
                str(data_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *args,
            ],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=cli_env(),
        )
    proc = ServeProcess(
        process=process,
        port=port,
        data_dir=data_dir,
        stdout_path=stdout_path,
        stderr_path=stderr_path,
        tls="--no-tls" not in args,
    )
    try:
        _wait_listening(proc, time.monotonic() + startup_timeout)
        yield proc
    finally:
        proc.stop()

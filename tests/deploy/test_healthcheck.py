"""deploy/healthcheck.py, the container's health check, against a real ``packyard serve``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.serve_process import ServeProcess, cli_env, free_port

HEALTHCHECK = Path(__file__).resolve().parents[2] / "deploy" / "healthcheck.py"


def _check(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK)],
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(**env),
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain-http"])
def test_a_serving_server_is_healthy(tmp_path: Path, tls: bool) -> None:
    args = () if tls else ("--no-tls",)
    with ServeProcess(tmp_path / "data", *args) as server:
        result = _check(PACKYARD_HEALTHCHECK_PORT=str(server.port))

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.slow
def test_an_explicit_url_is_the_only_one_tried(tmp_path: Path) -> None:
    with ServeProcess(tmp_path / "data", "--no-tls") as server:
        healthy = _check(PACKYARD_HEALTHCHECK_URL=f"{server.base_url}/healthz")
        missing = _check(PACKYARD_HEALTHCHECK_URL=f"{server.base_url}/no-such-page")

    assert healthy.returncode == 0
    assert missing.returncode == 1
    assert missing.stderr == f"unhealthy: no 200 from {server.base_url}/no-such-page\n"


def test_nothing_listening_is_unhealthy_in_one_line() -> None:
    port = free_port()

    result = _check(PACKYARD_HEALTHCHECK_PORT=str(port))

    assert result.returncode == 1
    assert result.stderr == (
        f"unhealthy: no 200 from https://127.0.0.1:{port}/healthz"
        f" or http://127.0.0.1:{port}/healthz\n"
    )

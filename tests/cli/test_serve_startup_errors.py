"""``packyard serve`` misconfigured: one ``error:`` line on stderr, exit 2, nothing started;
every option settable from the environment; ``packyard env`` names the server it describes."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer.main

from packyard.cli.main import app
from tests.support.serve_process import PACKYARD, ServeProcess, cli_env, free_port, run_cli


def assert_usage_failure(result: subprocess.CompletedProcess[str]) -> str:
    """Exit 2, exactly one line starting ``error:``, no traceback, nothing on stdout."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    # Anything else is a notice or a warning of Packyard's own (e.g. a tightened mode).
    others = [line for line in result.stderr.splitlines() if not line.startswith("error:")]
    assert all(line.startswith(("packyard: ", "warning: ")) for line in others), others
    assert result.stdout == ""
    return errors[0]


def serve(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("serve", "--data-dir", str(data_dir), "--port", str(free_port()), *args)


@pytest.fixture
def pem(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate and key that fit (the server's own self-signed pair)."""
    from packyard.tls import ensure_certificate

    found = ensure_certificate(tmp_path / "tls", ["localhost"])
    return found.cert, found.key


CASES = {
    "corrupt database": ("corrupt", [], "not a Packyard database"),
    "data dir is a file": ("file", [], "not a directory"),
    "missing certificate": ("ok", ["--tls-cert", "/none/c.pem", "--tls-key", "KEY"], "/none/c.pem"),
    "unreadable key": ("ok", ["--tls-cert", "CERT", "--tls-key", "/none/k.pem"], "/none/k.pem"),
    "certificate not PEM": ("ok", ["--tls-cert", "JUNK", "--tls-key", "KEY"], "PEM"),
    "PostgreSQL refuses": ("ok", ["--database-url", "postgresql://u@[::1]:CLOSED/d"], "running"),
    "unknown database host": ("ok", ["--database-url", "postgresql://u@x.invalid/d"], "x.invalid"),
    "unsupported scheme": ("ok", ["--database-url", "mysql://u@localhost/db"], "'mysql'"),
    "port too large": ("ok", ["--port", "99999"], "--port"),
    "port zero": ("ok", ["--port", "0"], "--port"),
    "negative port": ("ok", ["--port", "-1"], "--port"),
    "no workers": ("ok", ["--workers", "0"], "--workers"),
    "bad public address": ("ok", ["--public-address", "https://x.example/"], "--public-address"),
    "bad log format": ("ok", ["--log-format", "xml"], "--log-format"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_misconfiguration_is_one_line_and_exit_2(
    tmp_path: Path, pem: tuple[Path, Path], case: str
) -> None:
    layout, args, expected = CASES[case]
    data_dir = tmp_path / "data"
    if layout == "corrupt":
        data_dir.mkdir(mode=0o700)
        (data_dir / "packyard.db").write_text("this is a text file, not a database\n")
    elif layout == "file":
        data_dir.write_text("not a directory")
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN NOTHING-----\n")
    names = {"CERT": str(pem[0]), "KEY": str(pem[1]), "JUNK": str(junk)}
    args = [names.get(a, a.replace("CLOSED", str(free_port()))) for a in args]
    line = assert_usage_failure(serve(data_dir, *args))
    assert expected in line
    if layout == "ok":
        assert not (data_dir / "server.json").exists()


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--data-dir", str(tmp_path / "d"), "--port", str(port))
    assert "already in use" in assert_usage_failure(result)
    assert not (tmp_path / "d").exists()


def test_a_read_only_data_dir_is_one_line_and_exit_2(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    command = [str(PACKYARD), "serve", "--data-dir", str(data_dir), "--port", str(free_port())]
    if os.geteuid() != 0:
        data_dir.chmod(0o500)
    elif shutil.which("unshare") and shutil.which("mount"):
        # root writes anywhere: the directory is mounted read-only in a mount namespace of
        # the server's own (nothing outside it sees the mount).
        quoted = " ".join(shlex.quote(part) for part in command)
        mount = f"mount --bind -o ro {shlex.quote(str(data_dir))} {shlex.quote(str(data_dir))}"
        command = ["unshare", "-m", "sh", "-c", f"{mount} && exec {quoted}"]
    else:
        pytest.skip("running as root without unshare/mount: no read-only directory to test")
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=cli_env(), check=False
    )
    if result.returncode != 2 and "mount" in result.stderr:
        pytest.skip(f"no read-only mount here: {result.stderr.strip()}")
    line = assert_usage_failure(result)
    assert str(data_dir) in line and "writable" in line
    assert list(data_dir.iterdir()) == []


# --- every option has an environment variable ---------------------------------------------


def _serve_options() -> list[Any]:
    """The ``serve`` command's options, as click (typer's own copy of it) sees them."""
    command = typer.main.get_command(app).commands["serve"]  # type: ignore[attr-defined]
    return [p for p in command.params if p.param_type_name == "option"]


def test_every_serve_option_has_an_environment_variable() -> None:
    options = _serve_options()
    missing = [p.name for p in options if not p.envvar and p.name != "help"]
    assert missing == []
    names = {p.name: p.envvar for p in options if p.envvar}
    assert all(str(v).startswith("PACKYARD_") for v in names.values())
    assert len(set(names.values())) == len(names)
    # …and --help shows each of them.
    shown = run_cli("serve", "--help", COLUMNS="200").stdout
    for variable in names.values():
        assert str(variable) in shown, variable


def test_options_from_the_environment(tmp_path: Path) -> None:
    """A server configured through PACKYARD_* variables only, as in a container."""
    port = free_port()
    env = {
        "PACKYARD_DATA_DIR": str(tmp_path / "data"),
        "PACKYARD_PORT": str(port),
        "PACKYARD_NO_TLS": "1",
        "PACKYARD_PUBLIC_ADDRESS": f"registry.example:{port}",
        "PACKYARD_LOG_FORMAT": "json",
        "PACKYARD_ACCESS_LOG": "true",
        "PACKYARD_METRICS_TOKEN": "scrape-token-0123456789",
        "PACKYARD_WORKERS": "1",
        "PACKYARD_LOG_LEVEL": "info",
    }
    # ServeProcess passes --data-dir and --port itself: both must agree with the variables.
    server = ServeProcess(tmp_path / "data", port=port, env=env)
    with server:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            assert http.get("/metrics").status_code == 401  # the token is asked for
            token = {"Authorization": "Bearer scrape-token-0123456789"}
            assert http.get("/metrics", headers=token).status_code == 200
        shell = run_cli("env", "--format", "json", PACKYARD_DATA_DIR=str(tmp_path / "data"))
    assert json.loads(shell.stdout)["HCP_API_ADDRESS"] == f"registry.example:{port}"
    lines = [json.loads(line) for line in server.stderr.splitlines()]
    assert any(line.get("logger") == "packyard.access" for line in lines)


def test_env_from_variables_without_options(tmp_path: Path) -> None:
    """No option at all: the port and the data directory come from the environment."""
    port = free_port()
    data_dir = tmp_path / "data"
    process = subprocess.Popen(
        [str(PACKYARD), "serve", "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(PACKYARD_DATA_DIR=str(data_dir), PACKYARD_PORT=str(port), PACKYARD_NO_TLS="1"),
    )
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None
            time.sleep(0.1)
        assert (data_dir / "server.json").exists()
    finally:
        process.terminate()
        process.wait(30)


# --- packyard env names the server it describes -------------------------------------------


def test_env_says_which_server_and_warns_when_it_is_gone(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with ServeProcess(data_dir, "--no-tls") as server:
        assert server.process is not None
        running = run_cli("env", "--data-dir", str(data_dir), "--format", "json")
        assert running.returncode == 0
        block = json.loads(running.stdout)  # stdout: the env block alone
        assert block["HCP_API_ADDRESS"] == f"127.0.0.1:{server.port}"
        [said] = running.stderr.splitlines()
        assert said.startswith("packyard: ") and f"pid {server.process.pid}" in said
        assert "is running" in said
        recorded = json.loads((data_dir / "server.json").read_text())
        assert recorded["pid"] == server.process.pid
        assert recorded["started_at"].endswith("Z")
    gone = run_cli("env", "--data-dir", str(data_dir))
    assert gone.returncode == 0
    assert "HCP_CLIENT_ID=" in gone.stdout
    [warning] = gone.stderr.splitlines()
    assert warning.startswith("warning: ") and "no longer running" in warning
    assert f"127.0.0.1:{server.port}" in warning

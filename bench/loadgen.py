"""The load generator (``wrk``) and the reference static server (``nginx``), both from Debian."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench.processes import free_port, stop, wait_for_port

LUA_SCRIPT = Path(__file__).with_name("request.lua")
DEBIAN_TOOLS = {"wrk": "wrk", "nginx": "nginx"}  # command -> Debian package


class ToolMissing(RuntimeError):
    pass


def find_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for directory in ("/usr/sbin", "/usr/bin"):
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    return None


def ensure_tools(names: list[str], *, log: object = print) -> dict[str, str]:
    """Paths of the tools; installs missing ones with apt-get when running as root."""
    missing = [n for n in names if find_tool(n) is None]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        packages = sorted({DEBIAN_TOOLS[n] for n in missing})
        if callable(log):
            log(f"installing Debian packages: {' '.join(packages)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", *packages],
            env=env,
            capture_output=True,
            check=False,
        )
    paths: dict[str, str] = {}
    for name in names:
        path = find_tool(name)
        if path is None:
            raise ToolMissing(
                f"{name} is not installed (Debian package {DEBIAN_TOOLS[name]}); "
                "install it or run the harness as root"
            )
        paths[name] = path
    return paths


@dataclass(slots=True)
class WrkResult:
    """One ``wrk`` run: throughput and latency of a single request repeated."""

    connections: int
    threads: int
    seconds: float
    requests: int
    requests_per_s: float
    latency_p50_ms: float
    latency_p90_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    errors: int  # connect/read/write/timeout errors plus non-2xx/3xx answers
    bytes_per_response: float

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def wrk_threads(connections: int) -> int:
    """wrk threads for a connection count: one per connection, at most the core count."""
    return max(1, min(connections, os.cpu_count() or 1))


def run_wrk(
    wrk: str,
    url: str,
    *,
    connections: int,
    seconds: float,
    token: str = "",
    method: str = "GET",
    body: str = "",
    timeout_s: int = 10,
    cookie: str = "",
) -> WrkResult:
    threads = wrk_threads(connections)
    env = dict(
        os.environ, BENCH_METHOD=method, BENCH_BODY=body, BENCH_TOKEN=token, BENCH_COOKIE=cookie
    )
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={timeout_s}s",
        "-s",
        str(LUA_SCRIPT),
        url,
    ]
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    duration = raw["duration_us"] / 1e6
    requests = int(raw["requests"])
    errors = sum(
        int(raw[k])
        for k in (
            "errors_connect",
            "errors_read",
            "errors_write",
            "errors_status",
            "errors_timeout",
        )
    )
    return WrkResult(
        connections=connections,
        threads=threads,
        seconds=round(duration, 3),
        requests=requests,
        requests_per_s=round(requests / duration, 1) if duration else 0.0,
        latency_p50_ms=raw["latency_p50_us"] / 1000,
        latency_p90_ms=raw["latency_p90_us"] / 1000,
        latency_p99_ms=raw["latency_p99_us"] / 1000,
        latency_max_ms=raw["latency_max_us"] / 1000,
        errors=errors,
        bytes_per_response=round(raw["bytes"] / requests, 1) if requests else 0.0,
    )


_NGINX_CONF = """\
worker_processes auto;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  default_type application/json;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 120s;
  keepalive_requests 1000000;
  client_body_temp_path {root}/tmp/body;
  proxy_temp_path {root}/tmp/proxy;
  fastcgi_temp_path {root}/tmp/fastcgi;
  uwsgi_temp_path {root}/tmp/uwsgi;
  scgi_temp_path {root}/tmp/scgi;
  server {{
    listen 127.0.0.1:{port};
    root {root}/www;
    location / {{ try_files $uri =404; }}
  }}
}}
"""


@contextmanager
def static_server(nginx: str, path: str, body: bytes) -> Iterator[str]:
    """nginx serving ``body`` at ``path`` on a free loopback port; yields the URL.

    The files live in a directory of their own, readable by nginx's unprivileged
    workers; the first answer is checked to be exactly ``body``.
    """
    root = Path(tempfile.mkdtemp(prefix="packyard-bench-nginx-"))
    try:
        for sub in ("www", "tmp"):
            (root / sub).mkdir()
        target = root / "www" / path.lstrip("/")
        target.parent.mkdir(parents=True)
        target.write_bytes(body)
        for p in [root, *root.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        port = free_port()
        conf = root / "nginx.conf"
        conf.write_text(_NGINX_CONF.format(root=root, port=port))
        proc = subprocess.Popen(
            [nginx, "-p", str(root), "-e", str(root / "error.log"), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}{path}"
            _check_static(url, body, port, root / "error.log")
            yield url
        finally:
            stop(proc, signal.SIGQUIT, timeout=10)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _check_static(url: str, body: bytes, port: int, log: Path) -> None:
    try:
        wait_for_port(port, timeout=10)
        answer = httpx.get(url, timeout=10)
        answer.raise_for_status()
        served = answer.content
    except (OSError, httpx.HTTPError) as exc:
        detail = log.read_text()[-1000:] if log.exists() else ""
        raise RuntimeError(f"nginx static server failed: {exc} {detail}") from exc
    if served != body:
        raise RuntimeError(f"nginx served {len(served)} bytes, not the {len(body)} expected")


def tool_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not installed"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else "unknown"

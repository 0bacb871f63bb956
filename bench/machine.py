"""What the numbers were measured on."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from importlib.metadata import version
from pathlib import Path
from typing import Any

import sqlalchemy

from bench.loadgen import find_tool, tool_version


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return 0.0


def _git_revision() -> str:
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    try:
        rev = git("rev-parse", "--short", "HEAD")
        # Changes to earlier results do not make the measured code differ from HEAD.
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results")
    except OSError:
        return "unknown"
    return f"{rev}{'+dirty' if dirty else ''}" if rev else "unknown"


def postgres_version() -> str:
    pg_config = find_tool("pg_config")
    if pg_config is None:
        return "not installed"
    return tool_version([pg_config, "--version"])


def describe() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    wrk = find_tool("wrk")
    nginx = find_tool("nginx")
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _mem_total_gib(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "fastapi": version("fastapi"),
        "granian": version("granian"),
        "wrk": tool_version([wrk, "-v"]) if wrk else "not installed",
        "nginx": tool_version([nginx, "-v"]) if nginx else "not installed",
        "load_average_at_start": [round(x, 2) for x in load],
        "packyard_revision": _git_revision(),
    }

"""``packyard`` starts without the server stack or the SDK: what `--help`, every
subcommand's help and shell completion load is checked by module, not by a stopwatch."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

# What the server, the operator commands or an API call need, never `packyard --help`.
HEAVY_PACKAGES = (
    "alembic",
    "fastapi",
    "granian",
    "httpx",
    "psycopg",
    "pydantic",
    "sqlalchemy",
    "starlette",
    "markdown_it",  # typer's rich help panels, replaced by click's plain help
)
HEAVY_MODULES = (
    "packyard.api",
    "packyard.client",
    "packyard.server",
    "packyard.services",
    "packyard.store",
    "packyard.web",
    "typer.rich_utils",
)

# Runs `packyard PATH --help` for every group and command, and `packyard --version`, the way
# the console script does (typer builds the whole click command tree, evaluating every
# annotation and completion callback, and parses each group's options on the way).
EVERY_HELP = """
import contextlib, io, json, sys
import typer.main
from packyard.cli.main import app

def paths(command, path):
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from paths(sub, [*path, name])

runs = [[*path, "--help"] for path in paths(typer.main.get_command(app), [])]
for argv in [*runs, ["--version"]]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        app(argv, prog_name="packyard")
print(json.dumps({"runs": len(runs), "modules": sorted(sys.modules)}))
"""


def _heavy(modules: list[str]) -> list[str]:
    return [
        m
        for m in modules
        if m.split(".")[0] in HEAVY_PACKAGES
        or any(m == h or m.startswith(f"{h}.") for h in HEAVY_MODULES)
    ]


def _run(code: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_importing_the_cli_loads_no_server_stack_and_no_sdk() -> None:
    loaded = _run("import json, sys, packyard.cli.main; print(json.dumps(sorted(sys.modules)))")
    assert "packyard.cli.main" in loaded
    assert _heavy(loaded) == []


def test_every_help_and_the_version_run_without_the_server_stack_or_the_sdk() -> None:
    result = _run(EVERY_HELP)
    assert result["runs"] > 40  # the root, its groups and every command
    assert "packyard.cli.completion" in result["modules"]
    assert _heavy(result["modules"]) == []

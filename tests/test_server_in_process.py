"""``serve`` with one worker runs granian's embedded server in its own process
(:func:`packyard.server._serve_in_process`); in a child process, as it installs signal
handlers and freezes the collector."""

from __future__ import annotations

import json
import subprocess
import sys

_FAILING_START = """
import json, logging
from contextlib import asynccontextmanager
from fastapi import FastAPI
from granian.constants import Interfaces
from packyard.server import _serve_in_process
from packyard.startup import StartupError
from tests.support.serve_process import free_port

@asynccontextmanager
async def lifespan(app):
    raise RuntimeError("cannot start")
    yield

logging.disable(logging.CRITICAL)
try:
    _serve_in_process(FastAPI(lifespan=lifespan), {
        "address": "127.0.0.1", "port": free_port(), "interface": Interfaces.ASGI,
        "log_enabled": False,
    })
except StartupError as exc:
    print(json.dumps({"error": exc.message}))
"""


def test_an_app_that_cannot_start_stops_the_server_with_an_error() -> None:
    """Its start-up failure ends the process (a service manager restarts it) instead of
    leaving a process that listens and never answers."""
    out = subprocess.run(
        [sys.executable, "-c", _FAILING_START],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(out.stdout) == {
        "error": "the server stopped unexpectedly; see the log above."
    }

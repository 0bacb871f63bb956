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


_FROZEN_AT_START = """
import gc, json, logging
from contextlib import asynccontextmanager
from fastapi import FastAPI
from granian.constants import Interfaces
from packyard.server import _serve_in_process
from packyard.startup import StartupError
from tests.support.serve_process import free_port

before_serving = ["an object that exists before the server starts"]

@asynccontextmanager
async def lifespan(app):
    young = gc.get_objects()  # the collector's generations: frozen objects are not in them
    print(json.dumps({
        "tracked": gc.is_tracked(before_serving),
        "in_a_generation": any(o is before_serving for o in young),
        "frozen": gc.get_freeze_count(),
    }))
    raise RuntimeError("stop here")
    yield

logging.disable(logging.CRITICAL)
try:
    _serve_in_process(FastAPI(lifespan=lifespan), {
        "address": "127.0.0.1", "port": free_port(), "interface": Interfaces.ASGI,
        "log_enabled": False,
    })
except StartupError:
    pass
"""


def test_objects_that_exist_before_serving_are_left_out_of_garbage_collections() -> None:
    """A full collection would otherwise walk the imported code and the app on the event
    loop (about 55 ms, every request in flight waiting)."""
    out = subprocess.run(
        [sys.executable, "-c", _FROZEN_AT_START],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seen = json.loads(out.stdout)
    assert seen["tracked"] is True
    assert seen["in_a_generation"] is False
    assert seen["frozen"] > 0

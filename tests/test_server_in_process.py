"""``serve`` with one worker runs granian's embedded server in its own process
(:func:`packyard.server._serve_in_process`); in a child process, as it installs signal
handlers and freezes the collector."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

# An app whose start-up runs ``at_start`` (its lines print what they see as JSON), then
# fails, which ends the server; the child prints the server's error last.
_CHILD = """
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
{at_start}
    raise RuntimeError("cannot start")
    yield

logging.disable(logging.CRITICAL)
try:
    _serve_in_process(FastAPI(lifespan=lifespan), {{
        "address": "127.0.0.1", "port": free_port(), "interface": Interfaces.ASGI,
        "log_enabled": False,
    }})
except StartupError as exc:
    print(json.dumps({{"error": exc.message}}))
"""


def _serve_in_child(at_start: str = "pass") -> list[Any]:
    """What the child printed, one JSON value per line."""
    script = _CHILD.format(at_start=textwrap.indent(at_start, "    "))
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_an_app_that_cannot_start_stops_the_server_with_an_error() -> None:
    """Its start-up failure ends the process (a service manager restarts it) instead of
    leaving a process that listens and never answers."""
    assert _serve_in_child() == [{"error": "the server stopped unexpectedly; see the log above."}]


def test_objects_that_exist_before_serving_are_left_out_of_garbage_collections() -> None:
    """A full collection would otherwise walk the imported code and the app on the event
    loop (about 55 ms, every request in flight waiting). ``gc.get_objects()`` lists the
    collector's generations, which frozen objects have left."""
    seen, _ = _serve_in_child(
        "young = gc.get_objects()\n"
        "print(json.dumps({\n"
        "    'tracked': gc.is_tracked(before_serving),\n"
        "    'in_a_generation': any(o is before_serving for o in young),\n"
        "    'frozen': gc.get_freeze_count(),\n"
        "}))"
    )
    assert seen["tracked"] is True
    assert seen["in_a_generation"] is False
    assert seen["frozen"] > 0

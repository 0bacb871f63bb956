"""Run a real Packyard HTTP server in a background thread on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from packyard.api.app import create_app
from packyard.services.container import Services


def running_server(
    services: Services,
    *,
    ssl_cert: Path | None = None,
    ssl_key: Path | None = None,
    response_cache: bool = True,
) -> AbstractContextManager[str]:
    """A context manager yielding the base URL of a uvicorn server serving ``services``.

    ``response_cache=False`` serves without the read-response cache, so every
    request does its full work (statement counts measure that work).
    """
    app = create_app(services) if response_cache else create_app(services, response_cache_mb=0)
    return serving_app(app, ssl_cert=ssl_cert, ssl_key=ssl_key)


@contextmanager
def serving_app(
    app: FastAPI,
    *,
    ssl_cert: Path | None = None,
    ssl_key: Path | None = None,
    log_level: str = "warning",
) -> Iterator[str]:
    """Yield the base URL of a uvicorn server serving ``app``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        ssl_certfile=str(ssl_cert) if ssl_cert else None,
        ssl_keyfile=str(ssl_key) if ssl_key else None,
        timeout_keep_alive=120,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    scheme = "https" if ssl_cert else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

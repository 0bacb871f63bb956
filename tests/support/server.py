"""Run a real Packyard HTTP server in a background thread on a free loopback port."""

from __future__ import annotations

import asyncio
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


class _QuickServer(uvicorn.Server):
    """uvicorn's server, stopping in about 10 ms instead of 200: it notices ``should_exit``
    every 10 ms (not 100), and with no connection left open it skips the fixed 100 ms it gives
    open connections to wind down. Most tests start and stop a server, and uvicorn's waits
    were most of the fast subset's time."""

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            await asyncio.sleep(0.01)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.server_state.connections or self.server_state.tasks:
            await super().shutdown(sockets)
            return
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()


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
    server = _QuickServer(config)
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

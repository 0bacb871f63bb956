"""A TCP proxy in front of a PostgreSQL socket that a test can freeze: while frozen it
relays nothing and new connections wait, as a database host that stopped answering
(a hung server, a dropped route) looks to its clients."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_POLL_S = 0.02


class FreezableProxy:
    def __init__(self, unix_socket: str) -> None:
        self.unix_socket = unix_socket
        self.frozen = threading.Event()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._links: set[asyncio.Task[None]] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(),), name="freezable-proxy", daemon=True
        )

    async def _serve(self) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self._ready.set()
        async with server:
            await self._stopping.wait()
            for link in self._links:
                link.cancel()
            await asyncio.gather(*self._links, return_exceptions=True)

    async def _thawed(self) -> None:
        while self.frozen.is_set():
            await asyncio.sleep(_POLL_S)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        link = asyncio.current_task()
        assert link is not None
        self._links.add(link)
        try:
            await self._thawed()
            server_r, server_w = await asyncio.open_unix_connection(self.unix_socket)
            await asyncio.gather(self._relay(client_r, server_w), self._relay(server_r, client_w))
        except asyncio.CancelledError:
            pass  # the proxy stopping: ended here, so asyncio reports no cancelled connection
        finally:
            client_w.close()
            self._links.discard(link)

    async def _relay(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                await self._thawed()
                sink.write(data)
                await sink.drain()
        except OSError:
            pass
        finally:
            sink.close()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        self.frozen.clear()
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)


@contextmanager
def freezable_proxy(unix_socket: str) -> Iterator[FreezableProxy]:
    proxy = FreezableProxy(unix_socket)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()

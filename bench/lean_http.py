"""A minimal keep-alive HTTP/1.1 client on asyncio streams, for the push load generator.

httpx costs about 1 ms of CPU per request; on a 2-core machine shared with the server
that CPU is taken from the server under test. This client does only what the
benchmark needs (plain HTTP, JSON bodies, ``Content-Length`` responses) at a fraction
of the cost, so the push numbers measure the server rather than the client.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import orjson


class LeanResponse:
    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    def json(self) -> Any:
        return orjson.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class LeanClient:
    """``request(method, path, json=...)`` over a pool of keep-alive connections."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or url.hostname is None:
            raise ValueError("the lean client speaks plain http:// only")
        self.host = url.hostname
        self.port = url.port or 80
        fixed = {"host": f"{self.host}:{self.port}", **{k.lower(): v for k, v in headers.items()}}
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode()
        self._idle: list[_Conn] = []

    async def request(self, method: str, url: str, *, json: Any = None) -> LeanResponse:
        """``url`` is a path on the server (``/packer/…``)."""
        body = b"" if json is None else orjson.dumps(json)
        head = f"{method} {url} HTTP/1.1\r\n".encode() + self._fixed
        if json is not None:
            head += b"content-type: application/json\r\n"
        head += f"content-length: {len(body)}\r\n\r\n".encode()
        conn = self._idle.pop() if self._idle else await self._connect()
        try:
            response = await self._exchange(conn, head + body)
        except BaseException:
            conn[1].close()
            raise
        if response.headers.get("connection", "").lower() == "close":
            conn[1].close()
        else:
            self._idle.append(conn)
        return response

    async def _connect(self) -> _Conn:
        return await asyncio.open_connection(self.host, self.port)

    @staticmethod
    async def _exchange(conn: _Conn, request: bytes) -> LeanResponse:
        reader, writer = conn
        writer.write(request)
        raw = await reader.readuntil(b"\r\n\r\n")
        status_line, *lines = raw[:-4].decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        content = await reader.readexactly(length) if length else b""
        return LeanResponse(int(status_line.split(" ", 2)[1]), headers, content)

    async def aclose(self) -> None:
        while self._idle:
            _, writer = self._idle.pop()
            writer.close()

    async def __aenter__(self) -> LeanClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

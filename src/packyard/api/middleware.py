"""Pure ASGI middleware: request size limit, path guard and security headers."""

from __future__ import annotations

import contextlib

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from packyard.errors import ApiError, Code, invalid

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
]


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers.extend(h for h in _SECURITY_HEADERS if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class PathGuardMiddleware:
    """Refuse request paths that try to smuggle structure into a path segment.

    No Packyard name, fingerprint or id may contain ``/``, ``\\`` or NUL, nor be ``.``
    or ``..``; a path with an encoded slash or backslash, a NUL or a dot segment is
    therefore never a legitimate request and is answered 400/3 before routing.
    """

    _ENCODED = (b"%2f", b"%5c", b"%00")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._tricky(scope):
            await send_status(send, invalid("The request path is not valid.", field="path"))
            return
        await self.app(scope, receive, send)

    def _tricky(self, scope: Scope) -> bool:
        raw = scope.get("raw_path") or b""
        lowered = raw.lower()
        if any(enc in lowered for enc in self._ENCODED):
            return True
        path: str = scope.get("path", "")
        if "\x00" in path:
            return True
        # A dot segment follows a slash: most paths need no split at all.
        return "/." in path and any(seg in (".", "..") for seg in path.split("/"))


class BodyLimitMiddleware:
    """Refuse request bodies above ``limit`` bytes with a ``google.rpc.Status``.

    The body is drained before answering so the client sees the answer rather
    than a reset connection.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
        if declared is not None and declared > self.limit:
            await self._drain(receive)
            await self._refuse(send)
            return

        received = 0
        too_large = False
        body_done = False

        async def limited_receive() -> Message:
            nonlocal received, too_large, body_done
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > self.limit:
                    too_large = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # The framework may turn the failed body read into an answer of its own
            # (e.g. "error parsing the body"): the refusal below replaces it.
            if not too_large:
                await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, limited_receive, guarded_send)
        if too_large:
            if not body_done:
                await self._drain(receive)
            await self._refuse(send)

    async def _drain(self, receive: Receive) -> None:
        """Read (and drop) the rest of the body, up to a bound, so the client reads our answer."""
        budget = 16 * self.limit
        more = True
        while more and budget > 0:
            message = await receive()
            if message["type"] != "http.request":
                return
            budget -= len(message.get("body", b""))
            more = message.get("more_body", False)

    async def _refuse(self, send: Send) -> None:
        error = ApiError(
            Code.RESOURCE_EXHAUSTED,
            f"The request body is larger than the limit of {self.limit} bytes.",
            http_status=413,
        )
        await send_status(send, error)


async def send_status(send: Send, error: ApiError) -> None:
    """Answer with ``error`` as a ``google.rpc.Status`` straight from ASGI middleware."""
    body = orjson.dumps(error.status_body())
    await send(
        {
            "type": "http.response.start",
            "status": error.http_status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass

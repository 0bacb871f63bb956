"""Pure ASGI middleware: request size and time limits, path guard and security headers."""

from __future__ import annotations

import asyncio
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

    Except one: HCP's webhook API (``/2023-05-31/``) takes whole resource names
    (``webhook/project/<id>/geo/us/webhook/<name>``) as one path parameter, which the Go SDK
    sends percent-encoded, slashes included. There an encoded slash is allowed and routes as
    a slash (the routes are matched on the decoded path); everything else is still refused.
    """

    _ENCODED = (b"%2f", b"%5c", b"%00")
    _ENCODED_SLASH_OK = b"/2023-05-31/"

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
        encoded = self._ENCODED[1:] if lowered.startswith(self._ENCODED_SLASH_OK) else self._ENCODED
        if any(enc in lowered for enc in encoded):
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

        # A refusal raised by an outer layer (the body deadline) ends the app here too,
        # before any error layer takes it for a failure; that layer answers.
        with contextlib.suppress(_Refused):
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


class BodyDeadlineMiddleware:
    """Answer 408 and close the connection when a request body does not arrive in time.

    granian limits the time a client may take to send the request headers; the body
    arrives afterwards, while the app waits in ``receive``. Without a limit a client
    that announces a body and then sends it slowly, or not at all, would hold its
    connection and a request task for ever. The whole body must arrive within
    ``timeout_s`` of the app's first ``receive``; later calls (which only wait for
    the client to disconnect) have no deadline.
    """

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        deadline: float | None = None
        body_done = False
        timed_out = False
        started = False

        async def timed_receive() -> Message:
            nonlocal deadline, body_done, timed_out
            if body_done:
                return await receive()
            if deadline is None:
                deadline = asyncio.get_running_loop().time() + self.timeout_s
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                raise _TimedOut from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if timed_out:
                return  # whatever the app made of the failed read: the 408 replaces it
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with contextlib.suppress(_Refused):
            await self.app(scope, timed_receive, guarded_send)
        if timed_out and not started:
            error = ApiError(
                Code.DEADLINE_EXCEEDED,
                f"The request body was not received within {self.timeout_s:g} seconds.",
                http_status=408,
            )
            await send_status(send, error, close=True)


async def send_status(send: Send, error: ApiError, *, close: bool = False) -> None:
    """Answer with ``error`` as a ``google.rpc.Status`` straight from ASGI middleware
    (``close``: and have the server close the connection afterwards)."""
    body = orjson.dumps(error.status_body())
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _Refused(Exception):
    """Raised into the app by a ``receive`` that refuses the request body; the layer
    whose ``receive`` raised it answers the request."""


class _TooLarge(_Refused):
    pass


class _TimedOut(_Refused):
    pass

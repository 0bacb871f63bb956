"""``/metrics`` (Prometheus text format), the request observer and the access log.

:class:`RequestObserver` is the outermost layer of the application: it times every HTTP
request, labels it with the matched route's operation (``scope["route"]``, set by the
router, the direct routes and the read cache) and, when the access log is on, logs one
line per request. Values go to :mod:`packyard.metrics`.

Who may read ``/metrics``: with a metrics token (``PACKYARD_METRICS_TOKEN``), callers
that present it as a bearer token, from anywhere; without one, only clients connected
from a loopback address whose request was not relayed by a proxy (no ``Forwarded`` /
``X-Forwarded-For`` / ``X-Real-IP`` header). See docs/SECURITY.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Callable

import anyio.to_thread
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from packyard import requestcontext
from packyard.errors import ApiError, Code
from packyard.ids import new_id
from packyard.metrics import METHODS, Metrics, metrics

ACCESS_LOGGER = "packyard.access"
FLUSH_INTERVAL_S = 1.0
_FORWARDED = (b"forwarded", b"x-forwarded-for", b"x-real-ip")
_READS = frozenset({"GET", "HEAD", "OPTIONS"})

access_log = logging.getLogger(ACCESS_LOGGER)


class RequestObserver:
    """Times each request and records it (and logs it, with ``access_log``)."""

    def __init__(self, app: ASGIApp, recorder: Metrics, *, access_log: bool = False) -> None:
        self.app = app
        self.recorder = recorder
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in _READS:
            await self._changing(scope, receive, send)
            return
        await self._observed(scope, receive, send)

    async def _changing(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A request that may change something: its id and source address follow it to the
        audit log, and the id goes back in ``X-Request-Id``."""
        request_id = new_id()
        client = scope.get("client")
        token = requestcontext.enter(
            requestcontext.RequestContext(request_id, client[0] if client else "")
        )

        async def identified_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self._observed(scope, receive, identified_send)
        finally:
            requestcontext.leave(token)

    async def _observed(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.access_log:
            await self._logged(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            self.recorder.record(
                self.recorder.operation(scope.get("route")),
                scope["method"],
                status,
                time.perf_counter() - started,
            )

    async def _logged(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The same, counting the bytes sent and logging the request."""
        started = time.perf_counter()
        status = 0
        sent = 0

        async def observed_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            seconds = time.perf_counter() - started
            operation = self.recorder.operation(scope.get("route"))
            self.recorder.record(operation, scope["method"], status, seconds)
            _log_access(scope, operation, status, seconds, sent)


def _log_access(scope: Scope, operation: str, status: int, seconds: float, sent: int) -> None:
    """One line per request: never the query string (it may carry secrets), a header, a
    body or the client's token."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    path = raw.decode("ascii", "backslashreplace")
    method = scope["method"]
    if method not in METHODS:
        method = "other"
    duration_ms = round(seconds * 1000, 3)
    access_log.info(
        "%s %s %d %.3f ms %d bytes",
        method,
        path,
        status,
        duration_ms,
        sent,
        extra={
            "method": method,
            "path": path,
            "operation": operation,
            "status": status,
            "duration_ms": duration_ms,
            "bytes": sent,
        },
    )


@contextlib.asynccontextmanager
async def flushing(recorder: Metrics, *watched: Callable[[], None]) -> AsyncIterator[None]:
    """Flush the recorded requests and sample the gauges once a second while the app runs;
    ``watched``: the app's samplers, dropped when it stops."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            recorder.flush()

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        recorder.flush()
        recorder.unwatch(*watched)
        recorder.process_exit()


def _may_scrape(request: Request, token: str | None) -> None:
    """Raise unless the caller may read the metrics (see the module docstring)."""
    if token:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            return
        raise ApiError(Code.UNAUTHENTICATED, "The metrics token is missing or wrong.")
    host = request.client.host if request.client else ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    relayed = any(name in _FORWARDED for name, _ in request.scope["headers"])
    if not loopback or relayed:
        raise ApiError(
            Code.PERMISSION_DENIED,
            "Metrics are served to loopback clients only; set PACKYARD_METRICS_TOKEN "
            "(serve --metrics-token) to let a scraper elsewhere read them.",
        )


def install(app: FastAPI, token: str | None) -> None:
    """Add ``/metrics`` (after the API's routes, like the health endpoints)."""
    recorder = metrics()

    async def metrics_endpoint(request: Request) -> Response:
        _may_scrape(request, token)
        recorder.flush()
        body = await anyio.to_thread.run_sync(generate_latest, recorder.collectors())
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)

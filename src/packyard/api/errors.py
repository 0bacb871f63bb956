"""Every failure becomes a ``google.rpc.Status`` JSON body with the right code."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from packyard.api.audit_failures import audit_failure
from packyard.api.responses import error_response
from packyard.errors import ApiError, Code, database_unavailable, invalid
from packyard.services.throttle import retry_after

log = logging.getLogger("packyard.api")


def _describe(exc: RequestValidationError) -> tuple[str, str]:
    errors = exc.errors()
    if not errors:
        return "invalid request", "body"
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ())]
    if loc and loc[0] in ("body", "query", "path"):
        where = loc[0]
        loc = loc[1:]
    else:
        where = "body"
    field = ".".join(loc) or where
    kind = first.get("type", "")
    if kind == "json_invalid":
        return "The request body is not valid JSON.", "body"
    if kind in ("model_attributes_type", "dict_type") and not loc:
        return "The request body must be a JSON object.", "body"
    message = str(first.get("msg", "invalid value"))
    return f"Invalid value for {field}: {message}.", field


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        await audit_failure(request, exc)
        headers: dict[str, str] = {}
        if exc.code is Code.UNAUTHENTICATED:
            headers["WWW-Authenticate"] = "Bearer"
        wait = retry_after(exc)
        if wait is not None:
            headers["Retry-After"] = str(wait)
        return error_response(exc, headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        message, field = _describe(exc)
        return error_response(invalid(message, field=field))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code in (404, 405):
            # No route matched (404) or none for this method (405): an operation this
            # server does not implement, wherever it lives (Packer, resource-manager, IAM).
            # 404/5 stays the answer of known routes whose object is missing: clients
            # read it as "absent" (the Terraform provider reads a 404 GetIamPolicy as an
            # empty policy, and would then write one that cannot be stored).
            return error_response(_unimplemented(request))
        return error_response(ApiError(Code.INVALID_ARGUMENT, str(exc.detail)[:200]))

    @app.exception_handler(DataError)
    async def _data_error(request: Request, exc: DataError) -> Response:
        # A value the database refuses (too long, out of range) is the client's to fix.
        log.info("database refused a value on %s %s", request.method, request.url.path)
        return error_response(invalid("A value in the request is too long or out of range."))

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError) -> Response:
        return error_response(_operational_error(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Last resort only: InternalErrorMiddleware answers first and keeps the connection.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(ApiError(Code.INTERNAL, "Internal error."))


def _unimplemented(request: Request) -> ApiError:
    path = request.url.path
    return ApiError(Code.UNIMPLEMENTED, f"{request.method} {path[:200]} is not implemented.")


_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected


def _operational_error(exc: OperationalError) -> ApiError:
    """Transient database conditions: the client may simply retry."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in _RETRYABLE_SQLSTATES:
        log.warning("concurrent transactions conflicted (%s); the client may retry", sqlstate)
        return ApiError(Code.ABORTED, "The change conflicted with a concurrent change; retry it.")
    if "database is locked" in str(exc.orig):
        log.warning("SQLite stayed locked beyond the busy timeout")
        return ApiError(Code.UNAVAILABLE, "The registry is busy; retry the request.")
    log.error("database unavailable: %s", type(exc.orig).__name__)
    return database_unavailable()


class InternalErrorMiddleware:
    """Answer an unexpected exception with a 500 ``google.rpc.Status`` and swallow it.

    Starlette's own last-resort handler re-raises after answering, which makes the
    server drop the keep-alive connection without ``Connection: close``; the
    client's next request on that connection then fails. Caught here instead, the
    connection stays usable.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise  # the answer is half sent: only closing the connection is left
            response = error_response(ApiError(Code.INTERNAL, "Internal error."))
            await response(scope, receive, send)

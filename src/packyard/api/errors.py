"""Every failure becomes a ``google.rpc.Status`` JSON body with the right code."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from packyard.api.responses import error_response
from packyard.errors import ApiError, Code, invalid

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
        headers = {"WWW-Authenticate": "Bearer"} if exc.code is Code.UNAUTHENTICATED else None
        return error_response(exc, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        message, field = _describe(exc)
        return error_response(invalid(message, field=field))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        path = request.url.path
        if exc.status_code in (404, 405) and path.startswith("/packer/"):
            return error_response(
                ApiError(Code.UNIMPLEMENTED, f"{request.method} {path[:200]} is not implemented.")
            )
        if exc.status_code == 404:
            return error_response(ApiError(Code.NOT_FOUND, "Not found."))
        if exc.status_code == 405:
            return error_response(
                ApiError(Code.UNIMPLEMENTED, f"Method {request.method} is not supported here.")
            )
        return error_response(ApiError(Code.INVALID_ARGUMENT, str(exc.detail)[:200]))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(ApiError(Code.INTERNAL, "Internal error."))

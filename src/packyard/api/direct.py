"""Calling simple route handlers directly, without FastAPI's per-request machinery.

FastAPI answers a request through a stack of its own layers (error, telemetry and
body-limit middleware, two exception layers, two exit stacks), matches it with
Starlette's general matcher and solves the handler's dependency graph generically:
validating every path parameter through pydantic, resolving each dependency level
by level. For the Packer push sequence that machinery cost more CPU than some of
the service calls it surrounds.

Most Packyard handlers have one shape: string path parameters, at most one JSON
body model, and dependencies that take only the request and string path
parameters (the caller, the services, the paging parameters). :class:`DirectRoutes`
recognises that shape once, from FastAPI's own analysis of each route, and calls
such handlers itself. What the client sees is the same: the routes match in the
same order, the body is decoded and validated by FastAPI's own functions in the
same order against the dependencies, and errors leave as the same exceptions for
the application's one error table, inside the application's own middleware. Any
request it does not recognise (another route shape, a method mismatch, an unknown
path) goes to the FastAPI application.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_body_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic_core import PydanticUndefined as _MISSING
from starlette.convertors import StringConvertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

# Handler parameters a direct call can fill in: these stay None on a simple route.
_UNSUPPORTED_SPECIALS = (
    "websocket_param_name",
    "http_connection_param_name",
    "response_param_name",
    "background_tasks_param_name",
    "security_scopes_param_name",
)


@dataclass(frozen=True, slots=True)
class _Dependency:
    name: str
    call: Callable[..., Awaitable[Any]]
    request_param: str | None
    path_params: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Handler:
    route: APIRoute
    endpoint: Callable[..., Awaitable[Response]]
    request_param: str | None
    path_params: tuple[str, ...]
    dependencies: tuple[_Dependency, ...]
    body_fields: list[Any]  # FastAPI ModelFields; empty without a body
    embed_body: bool

    async def respond(self, request: Request, params: dict[str, str]) -> Response:
        body = await self._decoded_body(request) if self.body_fields else None
        values: dict[str, Any] = {}
        for dep in self.dependencies:
            kwargs: dict[str, Any] = {name: params[name] for name in dep.path_params}
            if dep.request_param is not None:
                kwargs[dep.request_param] = request
            values[dep.name] = await dep.call(**kwargs)
        for name in self.path_params:
            values[name] = params[name]
        if self.request_param is not None:
            values[self.request_param] = request
        if self.body_fields:
            parsed, errors = await request_body_to_args(self.body_fields, body, self.embed_body)
            if errors:
                raise RequestValidationError(errors, body=body)
            values.update(parsed)
        return await self.endpoint(**values)

    async def _decoded_body(self, request: Request) -> Any:
        """The body as FastAPI hands it to validation: decoded JSON, raw bytes or missing."""
        try:
            raw = await request.body()
            if not raw:
                return _MISSING
            if not _is_json(request.headers.get("content-type")):
                return raw
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            error = {
                "type": "json_invalid",
                "loc": ("body", exc.pos),
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": exc.msg},
            }
            raise RequestValidationError([error], body=exc.doc) from exc
        except HTTPException:
            raise
        except Exception as exc:  # a failed read or a body too deep to decode
            raise HTTPException(400, "There was an error parsing the body") from exc


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False  # FastAPI's strict content type: no header, no JSON
    media = content_type.split(";", 1)[0].strip().lower()
    main, _, sub = media.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


def _string_params(dependant: Dependant) -> tuple[str, ...] | None:
    """The path parameter names, if each is a plain ``str`` (the route's convertors are
    checked once in :func:`direct_handler`)."""
    names = []
    for field in dependant.path_params:
        if field.field_info.annotation is not str or field.alias != field.name:
            return None
        names.append(field.name)
    return tuple(names)


def _plain(dependant: Dependant) -> bool:
    """No query, header or cookie parameters and no special FastAPI parameters."""
    if dependant.query_params or dependant.header_params or dependant.cookie_params:
        return False
    return all(getattr(dependant, attr) is None for attr in _UNSUPPORTED_SPECIALS)


def _dependency(dep: Dependant) -> _Dependency | None:
    params = _string_params(dep)
    if (
        dep.name is None
        or dep.call is None
        or params is None
        or dep.dependencies
        or dep.body_params
        or not _plain(dep)
        or not inspect.iscoroutinefunction(dep.call)
    ):
        return None
    return _Dependency(dep.name, dep.call, dep.request_param_name, params)


def _body_is_model(fields: Sequence[Any]) -> bool:
    if not fields:
        return True
    if len(fields) != 1:
        return False
    annotation = fields[0].field_info.annotation
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def direct_handler(route: BaseRoute) -> _Handler | None:
    """A direct caller for ``route`` if it has the simple shape, else None."""
    if not isinstance(route, APIRoute):
        return None
    dependant = route.dependant
    params = _string_params(dependant)
    dependencies = [_dependency(d) for d in dependant.dependencies]
    if (
        params is None
        or route.dependencies
        or not all(isinstance(c, StringConvertor) for c in route.param_convertors.values())
        or route.response_model is not None
        or route.status_code is not None
        or not _plain(dependant)
        or not _body_is_model(dependant.body_params)
        or not inspect.iscoroutinefunction(dependant.call)
        or any(d is None for d in dependencies)
    ):
        return None
    return _Handler(
        route=route,
        endpoint=route.endpoint,
        request_param=dependant.request_param_name,
        path_params=params,
        dependencies=tuple(d for d in dependencies if d is not None),
        body_fields=list(dependant.body_params),
        embed_body=route._embed_body_fields,
    )


@dataclass(frozen=True, slots=True)
class _Entry:
    regex: re.Pattern[str]
    handler: _Handler | None  # None: FastAPI answers requests that match this route


ExceptionHandler = Callable[[Request, Any], Any]  # Starlette's: may be synchronous
_MATCHED = "packyard.direct_handler"  # scope key: the handler of the matched route


class DirectRoutes:
    """Simple routes answered directly, everything else by the FastAPI application.

    Sits in front of the application. A request goes to the first route (in the
    router's order) whose path and method both match, as in Starlette; only when
    that route has the simple shape is it answered here, inside ``protect`` (the
    application's own middleware, the same layers FastAPI runs) and with the
    application's exception handlers. Everything else goes to ``fallback``, the
    whole FastAPI application.
    """

    def __init__(
        self, app: FastAPI, fallback: ASGIApp, protect: Callable[[ASGIApp], ASGIApp]
    ) -> None:
        self.app = app
        self.fallback = fallback
        self.entries: dict[str, list[_Entry]] = {}
        # Unexpected exceptions (the ``Exception`` handler) are left to the middleware,
        # as in FastAPI, where that handler belongs to the outermost error layer.
        self.exception_handlers: dict[type[BaseException], ExceptionHandler] = {
            key: handler
            for key, handler in app.exception_handlers.items()
            if isinstance(key, type) and key is not Exception
        }
        self._answer = protect(self._answer_matched)
        for route in app.router.routes:
            regex = getattr(route, "path_regex", None)
            if not isinstance(route, Route) or regex is None:
                # A mount or another kind of route: let FastAPI match everything.
                self.entries = {}
                return
            entry = _Entry(regex, direct_handler(route))
            for method in route.methods or ():
                self.entries.setdefault(method, []).append(entry)

    @property
    def handlers(self) -> list[_Handler]:
        found = {id(e.handler): e.handler for es in self.entries.values() for e in es}
        return [h for h in found.values() if h is not None]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            path = scope["path"]
            for entry in self.entries.get(scope["method"], ()):
                match = entry.regex.match(path)
                if match is None:
                    continue
                if entry.handler is None:
                    break
                scope["app"] = self.app
                scope["route"] = entry.handler.route
                scope["endpoint"] = entry.handler.endpoint
                scope["path_params"] = match.groupdict()
                scope[_MATCHED] = entry.handler
                await self._answer(scope, receive, send)
                return
        await self.fallback(scope, receive, send)

    async def _answer_matched(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await scope[_MATCHED].respond(request, scope["path_params"])
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise
            answer = handler(request, exc)
            response = await answer if inspect.isawaitable(answer) else answer
        await response(scope, receive, send)

    def _handler_for(self, exc: Exception) -> ExceptionHandler | None:
        for cls in type(exc).__mro__:
            handler = self.exception_handlers.get(cls)
            if handler is not None:
                return handler
        return None

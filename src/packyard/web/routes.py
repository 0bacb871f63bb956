"""Mounting the console on the API's application: its pages, static files and the 404 page
for paths under a project that no page serves."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from packyard.errors import not_found
from packyard.web.console import Context, context, error_page
from packyard.web.pages import (
    access,
    auth,
    bucket_access,
    channels,
    registry,
    revocation,
    versions,
    webhooks,  # console-webhooks
)

STATIC_MAX_AGE_S = 3600


class _Static(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["cache-control"] = f"public, max-age={STATIC_MAX_AGE_S}"
        return response


_STATIC = _Static(packages=[("packyard.web", "static")])


async def _static_file(request: Request) -> Response:
    # A route, not a mount: a mount in the route table turns off the API's direct routes
    # (packyard.api.direct), which cost a Packer push a third less CPU.
    return await _STATIC.get_response(request.path_params["path"], request.scope)


async def _no_such_page(request: Request, project_id: str, rest: str) -> Response:
    ctx = await context(request, project_id)
    if not isinstance(ctx, Context):
        return ctx
    return error_page(ctx, request, not_found("There is no such page."))


def install(app: FastAPI) -> None:
    for module in (auth, registry, bucket_access, versions, channels, revocation, access, webhooks):
        app.router.routes.extend(module.router.routes)
    app.add_api_route(
        "/p/{project_id}/{rest:path}", _no_such_page, methods=["GET"], include_in_schema=False
    )
    app.add_route(
        "/static/{path:path}", _static_file, methods=["GET", "HEAD"], include_in_schema=False
    )

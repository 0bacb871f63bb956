"""The API reference at ``/docs``: Swagger UI over ``/openapi.json``, served by Packyard itself.

FastAPI's own page loads Swagger UI from a CDN and starts it with an inline script; the
server's Content-Security-Policy forbids both, and an offline install cannot reach a CDN.
Here the Swagger UI release comes from the ``fastapi-swagger`` package (a copy of
swagger-ui-dist that follows its releases) and the code that starts it is a file of our
own, so the page runs under a policy that allows scripts, styles and requests from this
origin only. Like ``/openapi.json`` it needs no sign-in: it shows the API's shape, no data.
"""

from __future__ import annotations

from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from pathlib import Path

from fastapi import FastAPI, Request
from starlette.responses import FileResponse, HTMLResponse, Response

DOCS_PATH = "/docs"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
ASSET_MAX_AGE_S = 3600

_SWAGGER = files("fastapi_swagger") / "resources"
_OWN = files("packyard.api") / "static"
# name under /docs/ -> (file, media type)
_ASSETS = {
    "swagger-ui.css": (_SWAGGER / "swagger-ui.css", "text/css"),
    "swagger-ui-bundle.js": (_SWAGGER / "swagger-ui-bundle.js", "text/javascript"),
    "favicon.png": (_SWAGGER / "favicon-32x32.png", "image/png"),
    "start.js": (_OWN / "docs.js", "text/javascript"),
}

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} API reference</title>
<link rel="stylesheet" href="{base}/swagger-ui.css">
<link rel="icon" type="image/png" href="{base}/favicon.png">
</head>
<body>
<main id="swagger-ui" data-openapi-url="{openapi_url}"></main>
<script src="{base}/swagger-ui-bundle.js"></script>
<script src="{base}/start.js"></script>
</body>
</html>
"""


def _file(resource: Traversable) -> Path:
    # pip installs packages as directories, where this is the file itself (no temporary copy).
    with as_file(resource) as path:
        return path


def install(app: FastAPI) -> None:
    """Add ``/docs`` and its assets to ``app`` (plain routes: see packyard.web.routes)."""
    page = _PAGE.format(
        title=app.title, base=DOCS_PATH, openapi_url=app.openapi_url or "/openapi.json"
    ).encode()

    async def docs_page(request: Request) -> Response:
        return HTMLResponse(
            page, headers={"content-security-policy": CSP, "cache-control": "no-store"}
        )

    app.add_route(DOCS_PATH, docs_page, methods=["GET", "HEAD"], include_in_schema=False)
    for name, (resource, media_type) in _ASSETS.items():
        path = _file(resource)

        async def asset(
            request: Request, path: Path = path, media_type: str = media_type
        ) -> Response:
            return FileResponse(
                path,
                media_type=media_type,
                headers={"cache-control": f"public, max-age={ASSET_MAX_AGE_S}"},
            )

        app.add_route(
            f"{DOCS_PATH}/{name}", asset, methods=["GET", "HEAD"], include_in_schema=False
        )

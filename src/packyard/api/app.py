"""The ASGI application: routes, error mapping and protective middleware."""

from __future__ import annotations

from fastapi import FastAPI

from packyard import __version__
from packyard.api import errors
from packyard.api.middleware import BodyLimitMiddleware, SecurityHeadersMiddleware
from packyard.api.routes import (
    buckets,
    builds,
    channels,
    enforced,
    oauth,
    registry,
    resource_manager,
    versions,
)
from packyard.services.container import Services

MAX_BODY_BYTES = 4 * 1024 * 1024


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Packyard",
        version=__version__,
        description="Self-hosted image-metadata registry speaking the HCP Packer 2023-01-01 API.",
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.state.services = services
    errors.install(app)
    for module in (
        oauth,
        resource_manager,
        registry,
        buckets,
        versions,
        builds,
        channels,
        enforced,
    ):
        app.include_router(module.router)
    app.add_middleware(BodyLimitMiddleware, limit=MAX_BODY_BYTES)
    app.add_middleware(SecurityHeadersMiddleware)
    return app

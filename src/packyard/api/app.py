"""The ASGI application: routes, error mapping and protective middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from packyard import __version__
from packyard.api import errors
from packyard.api.cache import CachedReadMiddleware, ReadCache
from packyard.api.middleware import (
    BodyLimitMiddleware,
    PathGuardMiddleware,
    SecurityHeadersMiddleware,
)
from packyard.api.routes import (
    ancestry,
    buckets,
    builds,
    channels,
    enforced,
    oauth,
    registry,
    resource_manager,
    sboms,
    search,
    versions,
)
from packyard.api.schemas import install_openapi
from packyard.config import env_number
from packyard.services.container import Services
from packyard.services.scheduler import scheduler_running

MAX_BODY_BYTES = 4 * 1024 * 1024
# Request handlers run in a thread pool. Python threads share one interpreter lock, so
# more threads mostly add lock hand-offs: GetChannel on SQLite with 16 clients served
# 970 req/s with 1 thread, 820 with 2, 660 with 4 and 430 with 40 (anyio's default).
# Two keep one slow request from stalling every other one.
WORKER_THREADS = int(env_number("PACKYARD_WORKER_THREADS", 2, minimum=1))
# Memory for cached read responses (see packyard.api.cache); 0 turns the cache off.
RESPONSE_CACHE_MB = env_number("PACKYARD_RESPONSE_CACHE_MB", 64)


def create_app(
    services: Services,
    *,
    background_jobs: bool = True,
    response_cache_mb: float = RESPONSE_CACHE_MB,
) -> FastAPI:
    read_cache = ReadCache(services, int(response_cache_mb * 2**20)) if response_cache_mb else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
        async with AsyncExitStack() as stack:
            if read_cache is not None:
                read_cache.open()
                stack.push_async_callback(read_cache.close)
            if background_jobs:  # scheduled revocations' channel rollbacks
                stack.enter_context(scheduler_running(services.scheduler))
            yield

    app = FastAPI(
        lifespan=lifespan,
        title="Packyard",
        version=__version__,
        description="Self-hosted image-metadata registry speaking the HCP Packer 2023-01-01 API.",
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.state.services = services
    errors.install(app)
    install_openapi(app)
    for module in (
        oauth,
        resource_manager,
        registry,
        buckets,
        versions,
        builds,
        channels,
        enforced,
        sboms,
        ancestry,
        search,
    ):
        app.include_router(module.router)
    app.add_middleware(BodyLimitMiddleware, limit=MAX_BODY_BYTES)
    app.add_middleware(PathGuardMiddleware)
    app.add_middleware(errors.InternalErrorMiddleware)  # keeps the connection after a 500
    app.add_middleware(SecurityHeadersMiddleware)
    if read_cache is not None:
        app.state.read_cache = read_cache
        app.add_middleware(CachedReadMiddleware, cache=read_cache)  # outermost: hits skip the rest
    return app

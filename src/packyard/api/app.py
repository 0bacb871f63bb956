"""The ASGI application: routes, error mapping and protective middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from packyard import __version__
from packyard.api import docs, errors, health
from packyard.api.admission import WriteAdmission, WriteGate
from packyard.api.cache import CachedReadMiddleware, ReadCache
from packyard.api.callers import Callers
from packyard.api.calls import WORKER_THREADS, stop_worker_threads, stop_worker_threads_at_exit
from packyard.api.direct import DirectRoutes
from packyard.api.links import SlashRedirect
from packyard.api.metrics import RequestObserver, flushing
from packyard.api.metrics import install as install_metrics
from packyard.api.middleware import (
    BodyDeadlineMiddleware,
    BodyLimitMiddleware,
    PathGuardMiddleware,
    SecurityHeadersMiddleware,
)
from packyard.api.routes import (
    access,
    ancestry,
    audit,
    buckets,
    builds,
    channels,
    enforced,
    iam,
    oauth,
    principals,
    registry,
    resource_manager,
    revocation,
    runtask_webhook,
    runtasks,
    sboms,
    search,
    v20210430,
    versions,
    webhooks,
)
from packyard.api.schemas import install_openapi
from packyard.config import Advertised, env_number
from packyard.metrics import metrics
from packyard.services.audit import audit_running
from packyard.services.container import Services
from packyard.services.runtask_jobs import worker_running
from packyard.services.scheduler import scheduler_running
from packyard.services.webhook_deliveries import worker_running as webhook_worker_running
from packyard.web import routes as web

MAX_BODY_BYTES = 4 * 1024 * 1024
# How long the server's start waits for the signing keys' first read: a database that does
# not answer must not hold the start for its connect timeout (tokens are refused meanwhile).
KEYS_WAIT_S = 2.0
# Memory for cached read responses (see packyard.api.cache); 0 turns the cache off.
RESPONSE_CACHE_MB = env_number("PACKYARD_RESPONSE_CACHE_MB", 64)
# Seconds a client has to send a request body once the app asks for it (then 408).
BODY_TIMEOUT_S = env_number("PACKYARD_BODY_TIMEOUT_S", 60, minimum=0.1)


class PackyardApp(FastAPI):
    """FastAPI with the read-response cache and the direct routes in front of it.

    A cache hit is answered before FastAPI's own request handling (routing,
    dependency solving, its exception and telemetry layers) starts: on the
    consumer read path that handling would cost more than the answer itself. The
    simple routes are then answered directly (:mod:`packyard.api.direct`).
    """

    front: ASGIApp | None = None
    # ``front`` with the time limit on request bodies and the write gate: requests other
    # than GET.
    with_body: ASGIApp | None = None
    # When reads began, which writes give way to (see packyard.api.admission).
    admission: WriteAdmission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is not None and scope["type"] == "http":
            if scope["method"] == "GET" or self.with_body is None:
                self.admission.read()
                await self.front(scope, receive, send)
            else:
                await self.with_body(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


# The application's own middleware, innermost first: FastAPI's stack and the
# directly called routes run the same layers.
MIDDLEWARE: list[tuple[Any, dict[str, Any]]] = [
    (BodyLimitMiddleware, {"limit": MAX_BODY_BYTES}),
    (PathGuardMiddleware, {}),
    (errors.InternalErrorMiddleware, {}),  # keeps the connection after a 500
    (SecurityHeadersMiddleware, {}),
]


def protect(app: ASGIApp) -> ASGIApp:
    """``app`` inside :data:`MIDDLEWARE`."""
    for middleware, options in MIDDLEWARE:
        app = middleware(app, **options)
    return app


def create_app(
    services: Services,
    *,
    background_jobs: bool = True,
    response_cache_mb: float = RESPONSE_CACHE_MB,
    direct_routes: bool = True,
    public_url: str | None = None,
    body_timeout_s: float = BODY_TIMEOUT_S,
    advertised: Advertised | None = None,
    metrics_token: str | None = None,
    access_log: bool = False,
) -> FastAPI:
    """The application. ``direct_routes=False`` leaves every request to FastAPI (tests
    compare the two). ``public_url`` (``scheme://host:port``) is the base of the absolute
    links it hands out (see :mod:`packyard.api.links`); ``advertised`` is how clients reach
    the server, as ``packyard env`` tells them (the console shows it). ``metrics_token``
    guards ``/metrics`` (see :mod:`packyard.api.metrics`); ``access_log`` logs every request."""
    read_cache = ReadCache(services, int(response_cache_mb * 2**20)) if response_cache_mb else None
    recorder = metrics()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
        async with AsyncExitStack() as stack:
            stop_worker_threads_at_exit()  # threads that requests start after the lifespan
            stack.callback(stop_worker_threads)  # last, once nothing else needs them
            # tokens are verified on the event loop: their keys are read on a thread
            stack.enter_context(services.auth.keys.refreshing())
            await anyio.to_thread.run_sync(services.auth.keys.wait_first_pass, KEYS_WAIT_S)
            if read_cache is not None:
                read_cache.open()
                stack.push_async_callback(read_cache.close)
            if background_jobs:  # scheduled revocations' channel rollbacks
                stack.enter_context(scheduler_running(services.scheduler))
                # HCP Terraform run-task jobs: plan checks and their callbacks
                stack.enter_context(worker_running(services.runtask_jobs))
                # webhook deliveries of the events journal.record queued
                stack.enter_context(webhook_worker_running(services.webhook_deliveries))
                # the audit log: retention, and streaming to PACKYARD_AUDIT_SINKS
                stack.enter_context(audit_running(services.audit))
            watched = [recorder.watch_store(services.store)]
            if read_cache is not None:
                watched.append(recorder.watch_cache(read_cache.responses))
            await stack.enter_async_context(flushing(recorder, *watched))
            yield

    app = PackyardApp(
        lifespan=lifespan,
        # FastAPI's built-in OpenTelemetry bridge asks the global providers on every
        # request; Packyard exports no telemetry, so it stays off.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        title="Packyard",
        version=__version__,
        description="Self-hosted image-metadata registry speaking the HCP Packer 2023-01-01 API.",
        docs_url=None,  # packyard.api.docs serves /docs without a CDN
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.admission = WriteAdmission()
    app.state.services = services
    app.state.callers = callers = Callers(services)
    app.state.public_url = public_url.rstrip("/") if public_url else None
    app.state.advertised = advertised
    errors.install(app)
    install_openapi(app)
    # Routes are matched in order, one regular expression each: the ones Packer and
    # consumers call most come first.
    for module in (
        builds,
        versions,
        channels,
        buckets,
        enforced,
        search,
        ancestry,
        sboms,
        registry,
        runtasks,
        runtask_webhook,
        resource_manager,
        iam,
        principals,
        access,
        audit,
        revocation,
        oauth,
        webhooks,
        v20210430,
    ):
        # The routes go straight into the app's route table. FastAPI matches an
        # included router level by level: 9 passes and 32 route tests per request
        # where one flat pass needs a third of the time. The routers only set a path
        # prefix and tags, which their routes already carry.
        app.router.routes.extend(module.router.routes)
    web.install(app)  # the console: its pages and static files
    docs.install(app)  # the API reference page and its assets
    health.install(app)  # /healthz, /readyz, /version: last, off the API's hot path
    install_metrics(app, metrics_token)  # /metrics
    # Starlette would redirect to the Host header's site; this redirect names our own.
    app.router.redirect_slashes = False
    app.router.default = SlashRedirect(app.router.routes, app.state.public_url, app.router.default)
    for middleware, options in MIDDLEWARE:
        app.add_middleware(middleware, **options)
    front: ASGIApp = partial(FastAPI.__call__, app)
    if direct_routes:
        # Handlers of the common simple shape are called without FastAPI's own layers
        # and generic dependency solving (see packyard.api.direct).
        front = app.state.direct_routes = DirectRoutes(app, front, protect)
    if read_cache is not None:
        app.state.read_cache = read_cache
        front = CachedReadMiddleware(front, read_cache, callers)
    # Outermost: the time and status of every request, whoever answers it.
    app.front = RequestObserver(front, recorder, access_log=access_log)
    app.with_body = RequestObserver(
        BodyDeadlineMiddleware(WriteGate(front, app.admission), body_timeout_s),
        recorder,
        access_log=access_log,
    )
    return app

"""Operators' endpoints: liveness, readiness and version, without authentication.

``/healthz`` answers while the process serves requests at all (no database access),
``/readyz`` runs one trivial query against the database within a time limit, and
``/version`` names the running release. They are plain routes at the end of the route
table (after the API's and the console's), hidden from the OpenAPI document; the
read-response cache only considers paths under ``/packer/``, so they are never cached.
"""

from __future__ import annotations

import asyncio
from functools import cache

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request

from packyard import __version__
from packyard.api.responses import JSONBody
from packyard.store.engine import Store

# Seconds a readiness check may take before it answers 503: the store's own connection
# timeouts are longer (PostgreSQL's is 10 s), and a probe must not hang on a dead database.
READY_TIMEOUT_S = 3.0


@cache
def _ping_threads() -> anyio.CapacityLimiter:
    # Checks never take the request threads (packyard.api.calls), and at most one runs.
    return anyio.CapacityLimiter(1)


async def database_status(store: Store, timeout_s: float = READY_TIMEOUT_S) -> str | None:
    """``None`` if the database answers a trivial query within ``timeout_s``, else a short
    reason: the exception's class name or a timeout, never a message (which could name the
    host, the user or the database URL)."""
    try:
        async with asyncio.timeout(timeout_s):
            await anyio.to_thread.run_sync(
                store.ping, limiter=_ping_threads(), abandon_on_cancel=True
            )
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except Exception as exc:
        cause = getattr(exc, "orig", None) or exc
        return f"error: {type(cause).__name__}"
    return None


async def healthz() -> JSONBody:
    return JSONBody({"status": "ok"})


async def readyz(request: Request) -> JSONBody:
    reason = await database_status(request.app.state.services.store)
    if reason is None:
        return JSONBody({"status": "ready", "database": "ok"})
    return JSONBody({"status": "unavailable", "database": reason}, status_code=503)


async def version() -> JSONBody:
    return JSONBody({"version": __version__})


def install(app: FastAPI) -> None:
    """Add the routes; call it last, so the API's own routes are matched first."""
    for path, endpoint in (("/healthz", healthz), ("/readyz", readyz), ("/version", version)):
        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False)

"""How async request handlers run the synchronous service layer.

Each service call is one database transaction. Where it runs depends on the database:

- **SQLite**: on the event loop itself. The database is a local file; a call takes
  tens of microseconds to a few milliseconds of CPU and never waits on a network.
  Handing it to a worker thread and back (a condition variable, two GIL hand-offs)
  cost more than the call: 0.3 to 0.8 ms of CPU per request on the 2-core benchmark
  machine, the largest single cost of a Packer push. A worker process then serves one
  SQLite call at a time, as a synchronous server worker would, and ``packyard serve
  --workers N`` runs N at a time. Writers may wait for another process's write turn
  (:mod:`packyard.store.writer_queue`), which lasts one short transaction.
- **PostgreSQL**: on the worker threads. Every statement waits for a round trip and a
  writer may wait for a row lock held by another server, so the event loop keeps
  serving other requests meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial
from typing import ParamSpec, TypeVar

import anyio
import anyio.to_thread
from starlette.concurrency import run_in_threadpool

from packyard.services.container import Services

P = ParamSpec("P")
T = TypeVar("T")

# Threads for calls dominated by a deliberately slow hash; see run_hashing.
HASHING_THREADS = 4


async def run(svc: Services, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)``, inline on SQLite, on a worker thread on PostgreSQL."""
    if svc.store.is_sqlite:
        return fn(*args, **kwargs)
    return await run_in_threadpool(fn, *args, **kwargs)


@cache
def _hashing_threads() -> anyio.CapacityLimiter:
    return anyio.CapacityLimiter(HASHING_THREADS)


async def run_hashing(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` for a call dominated by a deliberately slow hash (argon2id of a
    person's password, scrypt of an old client secret): on threads of its own whatever the
    database (the hashes release the interpreter lock), never on the event loop, and at most
    ``HASHING_THREADS`` at a time, so a burst of sign-ins neither stalls other requests nor
    takes every core and much memory."""
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=_hashing_threads())

"""How async request handlers run the synchronous service layer.

Each service call is one database transaction. Where it runs depends on the database:

- **SQLite, reads** (``GET``): on the event loop itself. The database is a local file;
  a read takes tens of microseconds to a few milliseconds of CPU and never waits on a
  network. Handing it to a worker thread and back (a condition variable, two GIL
  hand-offs) cost more than the call: 0.3 to 0.8 ms of CPU per request on the 2-core
  benchmark machine.
- **SQLite, requests that may write** (every other method): on one writer thread per
  process. Run on the event loop, a push's calls (about 1 ms of CPU each) held it so
  long that cached reads queued behind them: GetChannel fell to 0.06x its quiet
  throughput while 16 pushers pushed into other buckets. On the thread they give way
  to the event loop at every statement (``sqlite3`` releases the interpreter lock),
  and reads kept 0.37x, with p99 37 → 6 ms; pushes cost more CPU each (78 → 55
  versions/s with 16 pushers at size S). One thread because SQLite takes one writer at
  a time anyway; writers may also wait for another process's write turn
  (:mod:`packyard.store.writer_queue`), which lasts one short transaction.
- **PostgreSQL**: on worker threads, ``PACKYARD_READ_THREADS`` for reads (``GET``
  requests and the reads of others) and ``PACKYARD_WORKER_THREADS`` for the rest. Every
  statement waits for a round trip and a writer may wait for a row lock held by another
  server, so the event loop keeps serving other requests meanwhile. Reads have threads
  of their own so that they never queue behind writes: with one pool, while 16 pushers
  pushed, a cached GetChannel whose caller's role had left the role cache (every 5 s)
  waited for a thread behind the pushes' calls, 240 ms at p99. A read of several
  statements spends most of its time waiting for its round trips, so more threads serve
  more of them: uncached GetChannel at size L, when it was four round trips, served 695
  req/s with 2 read threads, 893 with 4 and 1,087 with 8. Now that it is one, 4 threads
  serve it about 8 % faster than 8, but GetBucket and the search (several statements)
  15 % slower, so 8 are kept. The other calls keep 2: with 8, the pushes of 16 pushers
  took so much of the interpreter lock that cached reads fell from 0.28x to 0.07x their
  quiet throughput (p99 11 → 37 ms).

PostgreSQL's threads are Packyard's own (:mod:`packyard.api.call_threads`, a hand-off cheaper
than anyio's or an executor's); anyio's serve SQLite's writer (:func:`_sqlite_writer` says
why) and the other blocking calls (password hashing, webhook tests, the metrics page).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from functools import cache, partial
from typing import ParamSpec, TypeVar

import anyio
import anyio.to_thread

from packyard import requestcontext
from packyard.api.call_threads import CallThreads
from packyard.config import env_number
from packyard.services.container import Services

P = ParamSpec("P")
T = TypeVar("T")

# Threads for calls dominated by a deliberately slow hash; see run_hashing.
HASHING_THREADS = 4
# PostgreSQL's write threads, and at most as many of anyio's threads for anything else run
# on a thread (the app's lifespan sets anyio's default limiter to it).
# Python threads share one interpreter lock, so more threads mostly add lock hand-offs for
# calls that use the CPU: when every call still went through one pool (SQLite, 16
# clients), GetChannel served 970 req/s with 1 thread, 820 with 2, 660 with 4 and 430
# with 40 (anyio's default). Two keep one slow request from stalling every other one.
WORKER_THREADS = int(env_number("PACKYARD_WORKER_THREADS", 2, minimum=1))
# Threads for PostgreSQL reads, which mostly wait on round trips (see the module's docstring).
READ_THREADS = int(env_number("PACKYARD_READ_THREADS", 8, minimum=1))
READ_THREAD_NAME = "packyard-read"
WRITE_THREAD_NAME = "packyard-write"


async def run(svc: Services, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)``; where it runs is explained in the module's docstring."""
    if not requestcontext.may_change():
        if svc.store.is_sqlite:
            return fn(*args, **kwargs)
        return await _READS.submit(partial(fn, *args, **kwargs))
    if svc.store.is_sqlite:
        return await anyio.to_thread.run_sync(
            partial(fn, *args, **kwargs), limiter=_sqlite_writer()
        )
    return await _WRITES.submit(partial(fn, *args, **kwargs))


async def run_read(svc: Services, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """:func:`run` for a read asked with a method that may write (SearchExternalArtifact is
    a ``POST``): inline on SQLite like every read."""
    if svc.store.is_sqlite:
        return fn(*args, **kwargs)
    return await _READS.submit(partial(fn, *args, **kwargs))


_READS = CallThreads(READ_THREAD_NAME, READ_THREADS)
_WRITES = CallThreads(WRITE_THREAD_NAME, WORKER_THREADS)


@cache
def _sqlite_writer() -> anyio.CapacityLimiter:
    """SQLite's one writer thread is anyio's: handed over as cheaply as PostgreSQL's writes,
    16 pushers took more of the interpreter lock from the reads served meanwhile (GetChannel
    0.54x its quiet rate against 0.59x, five alternated rounds at size L) and pushed no
    faster alone."""
    return anyio.CapacityLimiter(1)


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


def stop_worker_threads() -> None:
    """Stop anyio's worker threads; the app's lifespan calls this as the server stops.

    anyio stops each worker thread when the task it took for the event loop's root task
    finishes. Under granian that is the worker process's main task, whose completion
    stops the event loop before the callbacks that stop the threads can run. The
    threads, which are not daemons, then wait for work forever, and the process never
    exits after SIGTERM or SIGINT: after load on PostgreSQL, where every service call runs
    on them, ``packyard serve`` had to be killed. A thread still running a call stops
    when the call returns. Requests still queued for a thread when the lifespan ends can
    start new ones: :func:`stop_worker_threads_at_exit` stops those.
    """
    for thread in threading.enumerate():
        stop = getattr(thread, "stop", None)
        if thread.name != _ANYIO_WORKER or not thread.is_alive() or not callable(stop):
            continue
        # Stopped twice (by the lifespan, then at exit), a thread still finishing its call
        # may have no room left in its queue: what is there already ends it. The second
        # stop is the retry of a first that found the queue full.
        with contextlib.suppress(queue.Full):
            stop()


_ANYIO_WORKER = "AnyIO worker thread"  # anyio's name for its worker threads


@cache  # registered once per process
def stop_worker_threads_at_exit() -> None:
    """Stop anyio's worker threads again as the interpreter exits, before it waits for
    every thread that is not a daemon. ``atexit`` runs only after that wait;
    ``threading._register_atexit`` is the hook the standard library's own thread pools
    (``concurrent.futures``) use for the same purpose."""
    threading._register_atexit(stop_worker_threads)  # type: ignore[attr-defined]

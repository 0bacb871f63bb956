"""Where service calls run: reads on the event loop with SQLite, a request that may write on
SQLite's writer thread, everything on worker threads with PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

import anyio.to_thread
import pytest

from packyard import requestcontext
from packyard.api.app import create_app
from packyard.api.calls import (
    READ_THREAD_NAME,
    WORKER_THREADS,
    WRITE_THREAD_NAME,
    run,
    run_read,
    stop_worker_threads,
)
from packyard.errors import ApiError, Code
from packyard.services.container import Services


def _threads(services: Services, *, changing: bool) -> tuple[str, str, str]:
    """(event loop's thread, run's thread, run_read's thread) in a request that may change
    something or in one that may not."""

    def name() -> str:
        return threading.current_thread().name

    async def main() -> tuple[str, str, str]:
        token = requestcontext.enter(requestcontext.RequestContext("req", "127.0.0.1"))
        if not changing:
            requestcontext.leave(token)
        return name(), await run(services, name), await run_read(services, name)

    return asyncio.run(main())


def test_a_read_runs_on_the_event_loop_with_sqlite_only(services: Services) -> None:
    loop, call, read = _threads(services, changing=False)
    if services.store.is_sqlite:
        assert call == read == loop
    else:
        assert loop not in (call, read)


def test_postgresql_reads_run_on_the_read_threads_in_the_requests_context(
    services: Services,
) -> None:
    if services.store.is_sqlite:
        pytest.skip("SQLite reads run on the event loop")

    def where() -> tuple[str, str]:
        return threading.current_thread().name, requestcontext.current().request_id

    async def main() -> tuple[tuple[str, str], tuple[str, str]]:
        plain = await run(services, where)  # a GET's call
        # A request that may change something reads there too, in its own context.
        requestcontext.enter(requestcontext.RequestContext("req-7", "127.0.0.1"))
        return plain, await run_read(services, where)

    plain, declared = asyncio.run(main())
    assert plain[0].startswith(READ_THREAD_NAME) and plain[1] == ""
    assert declared[0].startswith(READ_THREAD_NAME) and declared[1] == "req-7"


def test_a_request_that_may_write_runs_on_a_thread_but_its_declared_reads_do_not(
    services: Services,
) -> None:
    loop, call, read = _threads(services, changing=True)
    writer = "AnyIO worker thread" if services.store.is_sqlite else WRITE_THREAD_NAME + "_"
    assert call.startswith(writer)
    assert (read == loop) is services.store.is_sqlite


def test_sqlite_writes_take_turns_on_one_thread(services: Services) -> None:
    if not services.store.is_sqlite:
        pytest.skip("PostgreSQL writes run on the worker threads, several at a time")
    running = 0
    most = 0

    def write() -> str:
        nonlocal running, most  # one at a time, so no lock is needed
        running += 1
        most = max(most, running)
        threading.Event().wait(0.01)
        running -= 1
        return threading.current_thread().name

    async def main() -> list[str]:
        requestcontext.enter(requestcontext.RequestContext("req", "127.0.0.1"))
        return await asyncio.gather(*(run(services, write) for _ in range(5)))

    assert len(asyncio.run(main())) == 5
    assert most == 1


def test_a_write_whose_request_goes_away_still_finishes(services: Services) -> None:
    """The request ends at once; its write goes on to its end on its thread."""
    release, written = threading.Event(), threading.Event()

    def write() -> str:
        release.wait(5)
        written.set()
        return "done"

    async def main() -> None:
        requestcontext.enter(requestcontext.RequestContext("req", "127.0.0.1"))
        request = asyncio.ensure_future(run(services, write))
        await asyncio.sleep(0.05)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        assert not written.is_set()
        release.set()

    asyncio.run(main())
    assert written.wait(5)


def test_arguments_results_and_errors_pass_through(services: Services) -> None:
    def divide(a: int, *, by: int) -> float:
        if by == 0:
            raise ApiError(Code.INVALID_ARGUMENT, "division by zero")
        return a / by

    assert asyncio.run(run(services, divide, 6, by=3)) == 2
    with pytest.raises(ApiError) as caught:
        asyncio.run(run(services, divide, 6, by=0))
    assert caught.value.code is Code.INVALID_ARGUMENT


def _worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "AnyIO worker thread"]


def test_the_apps_worker_threads_stop_when_its_lifespan_ends(services: Services) -> None:
    """anyio stops its threads only when the task it took for the loop's root ends; under
    granian that ran too late, and ``packyard serve`` never exited after SIGTERM. Here the
    root task (``main``) outlives the lifespan, so only the lifespan can stop them."""
    app = create_app(services, response_cache_mb=0, background_jobs=False)
    before = set(_worker_threads())

    async def main() -> list[threading.Thread]:
        async with app.router.lifespan_context(app):
            gate = threading.Barrier(WORKER_THREADS)
            calls = (anyio.to_thread.run_sync(gate.wait) for _ in range(gate.parties))
            await asyncio.gather(*calls)
            started = [t for t in _worker_threads() if t not in before]
            assert started, "the calls ran on anyio's worker threads"
        for thread in started:
            thread.join(timeout=5)
        return started

    assert not [t for t in asyncio.run(main()) if t.is_alive()]


def test_stopping_worker_threads_lets_a_running_call_finish() -> None:
    finished = threading.Event()
    release = threading.Event()

    def slow() -> str:
        release.wait(5)
        finished.set()
        return "done"

    async def main() -> str:
        call = asyncio.ensure_future(anyio.to_thread.run_sync(slow))
        await asyncio.sleep(0.05)
        stop_worker_threads()
        release.set()
        return await call

    assert asyncio.run(main()) == "done"
    assert finished.is_set()


def test_worker_threads_may_be_stopped_again_while_finishing_a_call() -> None:
    """The lifespan stops them, and the interpreter's exit hook again: a thread still
    finishing its call may have a full queue (it holds two items) by then, which must
    neither raise nor keep the call from finishing."""
    release = threading.Event()

    def slow() -> str:
        release.wait(5)
        return "done"

    async def main() -> str:
        call = asyncio.ensure_future(anyio.to_thread.run_sync(slow))
        await asyncio.sleep(0.05)
        for _ in range(3):
            stop_worker_threads()
        release.set()
        return await call

    assert asyncio.run(main()) == "done"


def test_postgresql_reads_do_not_wait_for_threads_busy_with_writes(services: Services) -> None:
    if services.store.is_sqlite:
        pytest.skip("SQLite reads run on the event loop")
    release = threading.Event()

    def write() -> None:
        release.wait(10)

    async def main() -> str:
        token = requestcontext.enter(requestcontext.RequestContext("req", "127.0.0.1"))
        writes = [asyncio.ensure_future(run(services, write)) for _ in range(WORKER_THREADS + 1)]
        requestcontext.leave(token)
        await asyncio.sleep(0.05)  # every write thread is taken, one more write waits
        try:
            return await asyncio.wait_for(run(services, lambda: "read"), timeout=5)
        finally:
            release.set()
            await asyncio.gather(*writes)

    assert asyncio.run(main()) == "read"


_THREAD_STARTED_AFTER_THE_LOOP = """
import asyncio
import anyio.to_thread
from packyard.api.calls import stop_worker_threads_at_exit

stop_worker_threads_at_exit()
loop = asyncio.new_event_loop()

async def root() -> None:
    await anyio.to_thread.run_sync(lambda: None)  # a thread that anyio ties to this task
    loop.stop()  # the loop ends first, as granian's does, and the task never finishes
    await asyncio.sleep(60)

try:
    loop.run_until_complete(root())
except RuntimeError:
    pass
"""


_CALL_THREAD_AFTER_THE_LOOP = """
import asyncio
from packyard.api.call_threads import CallThreads

loop = asyncio.new_event_loop()

async def root() -> None:
    await CallThreads("calls", 2).submit(lambda: None)
    loop.stop()
    await asyncio.sleep(60)

try:
    loop.run_until_complete(root())
except RuntimeError:
    pass
"""


def test_the_call_threads_do_not_keep_the_process_alive() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CALL_THREAD_AFTER_THE_LOOP], timeout=30, check=False
    )
    assert done.returncode == 0


def test_a_worker_thread_that_outlives_the_loop_does_not_keep_the_process_alive() -> None:
    """The case the lifespan cannot reach: a thread started after it ended (a request still
    queued for a thread) whose root task never finishes."""
    done = subprocess.run(
        [sys.executable, "-c", _THREAD_STARTED_AFTER_THE_LOOP], timeout=30, check=False
    )
    assert done.returncode == 0

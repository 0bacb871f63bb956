"""CallThreads: calls run on a fixed number of threads in their caller's context, answers
and errors reach the caller, a caller that goes away leaves its call to finish and its
thread serving."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from packyard.api.call_threads import CallThreads
from packyard.errors import ApiError, Code

_REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="")


def test_calls_run_on_every_thread_at_once_in_their_callers_context() -> None:
    threads = CallThreads("calls", 4)
    gate = threading.Barrier(threads.count, timeout=5)

    def meet() -> tuple[str, str]:
        gate.wait()  # only passes if every thread runs a call at the same time
        return threading.current_thread().name, _REQUEST.get()

    async def main() -> list[tuple[str, str]]:
        _REQUEST.set("req-7")
        return await asyncio.gather(*(threads.submit(meet) for _ in range(threads.count)))

    found = asyncio.run(main())
    assert sorted(name for name, _ in found) == [f"calls_{i}" for i in range(4)]
    assert {request for _, request in found} == {"req-7"}


def test_a_failing_call_raises_in_its_caller_and_the_thread_goes_on() -> None:
    threads = CallThreads("calls", 1)

    def missing() -> None:
        raise ApiError(Code.NOT_FOUND, "no such channel")

    async def main() -> str:
        with pytest.raises(ApiError) as caught:
            await threads.submit(missing)
        assert caught.value.code is Code.NOT_FOUND
        return await threads.submit(lambda: "next")

    assert asyncio.run(main()) == "next"


def test_a_call_whose_caller_went_away_leaves_its_thread_serving() -> None:
    """The caller's cancellation does not stop the call; its answer then finds nobody
    waiting, and even a closed event loop, without harm to the thread."""
    threads = CallThreads("calls", 1)
    release, finished = threading.Event(), threading.Event()

    def slow() -> str:
        release.wait(5)
        finished.set()
        return "late"

    async def abandon() -> None:
        call = threads.submit(slow)
        await asyncio.sleep(0.05)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call

    asyncio.run(abandon())  # its loop closes before the call ends
    release.set()
    assert finished.wait(5)

    async def next_call() -> str:
        return await asyncio.wait_for(threads.submit(lambda: "served"), timeout=5)

    assert asyncio.run(next_call()) == "served"


def test_threads_start_with_the_first_call_only() -> None:
    threads = CallThreads("unused-calls", 3)
    assert not [t for t in threading.enumerate() if t.name.startswith("unused-calls_")]

    async def main() -> None:
        await threads.submit(lambda: None)

    asyncio.run(main())
    started = [t for t in threading.enumerate() if t.name.startswith("unused-calls_")]
    assert len(started) == 3 and all(t.daemon for t in started)

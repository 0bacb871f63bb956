"""Threads that run the service layer's calls for the event loop (:mod:`packyard.api.calls`
says which calls run where).

Each :class:`CallThreads` is a few daemon threads taking calls from a queue implemented in
C (``queue.SimpleQueue``); the thread that ran a call answers the event loop's future
itself. Neither ``concurrent.futures`` nor anyio: an executor's hand-off (a future with a
lock and a condition of its own, chained to the event loop's by callbacks that check and
copy its state) cost about 35 µs of the server's CPU per call more than this queue, and
anyio's (a capacity limiter, a cancel scope and a queue of Python locks per call) 55 µs
more again. Uncached GetChannel on PostgreSQL at size L took 0.46-0.50 ms of the server's
CPU with the executor against 0.37-0.41 ms with this queue; 16 pushers on PostgreSQL at
size S 29-31 ms per version with anyio's threads against 27-28 ms.

A caller that goes away (its request cancelled) does not stop its call, as with anyio's
threads: the call finishes on its thread, its transaction committed or rolled back whole, and
its answer is dropped. The threads are daemons: a call still running as the interpreter exits
is a transaction the database rolls back.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# A call for a thread: the loop and future to answer, the caller's context, the call.
_Call = tuple[
    asyncio.AbstractEventLoop, "asyncio.Future[Any]", contextvars.Context, Callable[[], Any]
]


class CallThreads:
    """``count`` threads named ``name_<i>``, started by the first call."""

    def __init__(self, name: str, count: int) -> None:
        self.name = name
        self.count = count
        self._calls: queue.SimpleQueue[_Call] | None = None
        self._starting = threading.Lock()

    def submit(self, call: Callable[[], T]) -> asyncio.Future[T]:
        """The future of ``call()``, run on one of the threads in the caller's context.
        Cancelling the future does not stop the call: its result is then dropped."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[T] = loop.create_future()
        self._queue().put((loop, answer, contextvars.copy_context(), call))
        return answer

    def _queue(self) -> queue.SimpleQueue[_Call]:
        if self._calls is None:
            with self._starting:
                if self._calls is None:
                    calls: queue.SimpleQueue[_Call] = queue.SimpleQueue()
                    for i in range(self.count):
                        name = f"{self.name}_{i}"
                        threading.Thread(
                            target=_serve, args=(calls,), name=name, daemon=True
                        ).start()
                    self._calls = calls
        return self._calls


def _serve(calls: queue.SimpleQueue[_Call]) -> None:
    while True:
        loop, answer, context, call = calls.get()
        settle: Callable[[asyncio.Future[Any], Any], None]
        try:
            settle, outcome = _resolve, context.run(call)
        except BaseException as exc:  # raised in the caller, as a call it awaited would
            settle, outcome = _fail, exc
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            loop.call_soon_threadsafe(settle, answer, outcome)
        del answer, context, call, outcome  # not kept while the thread waits for the next call


def _resolve(answer: asyncio.Future[Any], result: Any) -> None:
    if not answer.done():  # cancelled: the caller went away
        answer.set_result(result)


def _fail(answer: asyncio.Future[Any], exc: BaseException) -> None:
    if not answer.done():
        answer.set_exception(exc)


__all__ = ["CallThreads"]

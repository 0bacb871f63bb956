"""A server process's background loops (the revocation scheduler, the queue workers).

Each is a daemon thread that calls its ``step`` until stopped, pausing between passes; a pass
that fails is logged and the loop goes on, since a database that is away for a moment must not
end the work for the life of the process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

log = logging.getLogger(__name__)


class LoopThread:
    """Calls ``step`` every ``interval`` seconds until :meth:`stop`.

    ``pause`` waits between passes (default: the stop event, so a stop ends the wait);
    ``wake`` cuts short a ``pause`` of its own at stop (e.g. a condition variable).
    """

    def __init__(
        self,
        name: str,
        step: Callable[[], None],
        *,
        interval: float,
        pause: Callable[[float], object] | None = None,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.step = step
        self.interval = interval
        self._stop = threading.Event()
        self._pause = pause or self._stop.wait
        self._wake = wake
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._wake is not None:
            self._wake()
        if self.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:
                log.exception("%s: a pass failed; retrying", self.name)
            self._pause(self.interval)


BACKLOG_SAMPLE_S = 60.0


class Queue(Protocol):
    """A durable queue in the database that a worker thread works."""

    def run_one(self) -> bool:
        """Work one due item; whether there was one."""

    def report_backlog(self) -> None:
        """Put the queue's size and age in the metrics."""

    def housekeeping(self) -> None:
        """Periodic upkeep (e.g. deleting what is past its retention)."""

    def wait(self, timeout: float) -> None: ...

    def wake(self) -> None: ...


class QueueWorker(LoopThread):
    """Works ``queue`` until stopped: every due item, then its backlog for the metrics (after
    work, or once a minute), and its housekeeping once an hour; woken at once when this
    process queues an item."""

    def __init__(
        self, name: str, queue: Queue, *, interval: float, housekeeping_s: float = 3600.0
    ) -> None:
        super().__init__(name, self._pass, interval=interval, pause=queue.wait, wake=queue.wake)
        self.queue = queue
        self.housekeeping_s = housekeeping_s
        self._sampled = float("-inf")
        self._housekeeping_at = time.monotonic() + 60.0

    def _pass(self) -> None:
        if time.monotonic() >= self._housekeeping_at:
            self._housekeeping_at = time.monotonic() + self.housekeeping_s
            self.queue.housekeeping()
        worked = False
        while not self.stopping and self.queue.run_one():
            worked = True
        now = time.monotonic()
        if worked or now - self._sampled >= BACKLOG_SAMPLE_S:
            self._sampled = now
            self.queue.report_backlog()


@contextmanager
def running(loop: LoopThread) -> Iterator[LoopThread]:
    """``loop`` running for the duration of the block."""
    loop.start()
    try:
        yield loop
    finally:
        loop.stop()

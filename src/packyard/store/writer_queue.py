"""Where SQLite writers wait their turn: a queue shared by every process on the database.

SQLite lets one transaction write at a time. A writer that finds the database
locked is left to SQLite's busy handler, which sleeps 1, 2, 5, 10 … up to 100 ms
between attempts: under a steady stream of short writes (a Packer push is nine
of them) most of the time goes to those sleeps. Writers therefore take their
turn here first:

- the writers of one process queue on a thread lock, which hands over at once;
- the process holding that lock then takes an advisory ``flock`` on a file beside
  the database, shared with every other Packyard process on it (the workers of
  ``packyard serve``, a second server, ``packyard check``). The kernel releases it
  if a process dies, so a crash never leaves the database blocked.

The lock is an optimisation of waiting, not what makes writes correct: SQLite's
own locking still guards every transaction, also against programs that do not
take part.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from packyard.errors import ApiError, Code

# How long a waiting writer sleeps between attempts at another process's lock:
# short, so the hand-over between processes costs well under a millisecond.
_POLL_FIRST_S = 0.00005
_POLL_MAX_S = 0.001


class WriterQueue:
    def __init__(self, lock_file: Path | None, timeout_s: float) -> None:
        """``lock_file``: beside the database (``None`` for an in-memory database, whose
        writers all live in this process)."""
        self._thread_lock = threading.RLock()
        self._depth = 0  # nesting of the thread holding _thread_lock
        self._lock_file = lock_file
        self._fd: int | None = None
        self._timeout_s = timeout_s
        # Turns taken and seconds spent waiting for them (read by packyard.metrics).
        self.turns = 0
        self.waited_s = 0.0

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the database's write turn (re-entrant within a thread)."""
        asked = time.monotonic()
        deadline = asked + self._timeout_s
        if not self._thread_lock.acquire(timeout=self._timeout_s):
            raise _busy()
        try:
            if self._depth == 0:
                self._lock_other_processes(deadline)
                self.turns += 1
                self.waited_s += time.monotonic() - asked
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def close(self) -> None:
        with self._thread_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _lock_other_processes(self, deadline: float) -> None:
        if self._lock_file is None:
            return
        if self._fd is None:
            self._fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        pause = _POLL_FIRST_S
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                # A blocking flock cannot time out; a short poll can, and still
                # hands over far sooner than SQLite's busy handler would.
                if time.monotonic() >= deadline:
                    raise _busy() from None
                time.sleep(pause)
                pause = min(pause * 2, _POLL_MAX_S)


def _busy() -> ApiError:
    return ApiError(Code.UNAVAILABLE, "The database is busy; retry the request.")


def lock_file_for(database: str | None) -> Path | None:
    """The lock file of a SQLite database path (``None`` for an in-memory database)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).resolve().with_name(Path(database).name + "-writers.lock")

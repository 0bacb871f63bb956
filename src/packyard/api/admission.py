"""Reads before writes: while reads are being served, write requests go one at a time.

One server process answers every request on one event loop and one interpreter lock. A
write request's work on the loop (its caller, the body's validation, the middleware, the
answer) is about as much CPU as its database call. With 16 pushers on PostgreSQL, the
16 requests of theirs under way at once took turns with the reads on the loop, and the
two threads of their database calls took the interpreter lock from it: GetChannel kept
0.26x its quiet throughput, at 12 ms p99. Consumers' reads (Terraform plans, launch
templates, CI lookups) are what people wait for; a push's calls belong to a build that
takes minutes.

So while reads are being served (one began in the last :data:`READING_S`), a write
request goes on past its body only when no other write request of the process is under
way; the others wait, in arrival order, without using the CPU, and each turn begins after
the reads waiting at its start. With no reads, writes go on freely. A write always goes
on when none is under way, so reads never stop writes. Measured at size L with 16
pushers, alternated on the same machine: GetChannel kept 0.45-0.47x its quiet throughput
on PostgreSQL (0.26-0.27x without this) at 7-8 ms p99 (12), and 0.51-0.52x on SQLite
(0.38-0.43x; its writes already went through one thread). A push alone, whose Packer
calls include reads, was as fast with it as without.

Each turn is followed by a rest in proportion to how busy reads keep the process: at
:data:`BUSY_READS` reads per :data:`READING_S` or more, half the turn's length
(:data:`REST`, at most :data:`MAX_REST_S`) goes to the reads alone before the next write
starts; up to :data:`IDLE_READS`, none does. Pushers' own reads (Packer reads its bucket
and version between writes) stay below that, so pushes alone are not slowed. Measured at
size L with 16 pushers, alternated: GetChannel kept 0.59-0.63x its quiet throughput on
PostgreSQL with the rest against 0.44-0.55x without (7,650 against 5,700 req/s), and
0.58-0.60x on SQLite against 0.44-0.47x, while the pushes meanwhile went about a fifth
slower. Pushes alone went as fast as without.

A request waits once its whole body has arrived, inside the body's time limit but not
counted in it (a client sending slowly holds no place), and keeps its place until its
answer has been handed to the server. A request that reads no body (a ``DELETE``) is not
held back, nor is one whose route handler is marked :func:`without_write_turn`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

F = TypeVar("F", bound=Callable[..., Any])

# Reads are being served while one began less than this long ago. A cached read is
# answered within one turn of the event loop, so a count of reads in progress would
# never be seen above zero by a write.
READING_S = 0.1
# Reads per READING_S that leave writes no rest (16 Packer pushers' own reads, about 20)
# and at which the process counts as fully busy with reads (a consumer load: thousands
# a second).
IDLE_READS = 50
BUSY_READS = 150
REST = 0.5  # a turn's share left to reads alone after it, when fully busy with them
MAX_REST_S = 0.05
_EXEMPT = "__packyard_without_write_turn__"


def without_write_turn(endpoint: F) -> F:
    """Requests of this route handler never wait for a write turn: a read sent as a
    ``POST`` (the artifact search), or a call that spends its time in a deliberately slow
    hash off the interpreter lock (sign-in, tokens, passwords), which would hold every
    other write back through the hash."""
    setattr(endpoint, _EXEMPT, True)
    return endpoint


class WriteAdmission:
    """When reads began and how many, the write requests under way and those waiting for
    their turn, in one process. Used from the event loop only."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.last_read = -READING_S  # clock() when the last read began
        self.writes = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._window = -READING_S  # when the current count of reads began
        self._reads = 0  # reads begun since then
        # How busy reads kept the process in the last whole window: 0 (at most IDLE_READS)
        # to 1 (BUSY_READS or more).
        self.busy = 0.0

    def read(self) -> None:
        """A read began (called for every ``GET``)."""
        now = self.last_read = self.clock()
        if now - self._window >= READING_S:
            recent = now - self._window < 2 * READING_S  # the window just ended counts
            counted = (self._reads - IDLE_READS) / (BUSY_READS - IDLE_READS)
            self.busy = min(1.0, max(0.0, counted)) if recent else 0.0
            self._window, self._reads = now, 0
        self._reads += 1

    def reading(self) -> bool:
        return self.clock() - self.last_read < READING_S

    async def admit(self) -> float:
        """Wait for a write's turn; returns when it began, for :meth:`release`."""
        if not self._waiting and not (self.writes and self.reading()):
            self.writes += 1
            return self.clock()
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.cancelled():
                with contextlib.suppress(ValueError):
                    self._waiting.remove(turn)
            else:  # given its turn as it was cancelled: pass the turn on
                self.release(self.clock())
            raise
        return self.clock()

    def release(self, began: float) -> None:
        """End the turn that began at ``began`` (from :meth:`admit`)."""
        self.writes -= 1
        if not self._waiting:
            return
        if self.reading():
            # The next write's turn begins once the reads already waiting have been
            # answered (call_soon runs after the callbacks ready now): reads kept 0.51x
            # instead of 0.46x on SQLite, 0.46x instead of 0.42x on PostgreSQL. Then
            # the rest, if reads keep the process busy.
            rest = min(MAX_REST_S, REST * self.busy * (self.clock() - began))
            loop = asyncio.get_running_loop()
            if rest > 0:
                loop.call_later(rest, self._hand_over)
            else:
                loop.call_soon(self._hand_over)
        else:
            self._hand_over()

    def _hand_over(self) -> None:
        while self._waiting and (self.writes == 0 or not self.reading()):
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                self.writes += 1


class WriteGate:
    """ASGI layer for requests other than ``GET``: holds a write back, once its body has
    arrived, until :class:`WriteAdmission` gives it a turn, and keeps the turn until the
    request is answered."""

    def __init__(self, app: ASGIApp, admission: WriteAdmission) -> None:
        self.app = app
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        began: float | None = None  # when this request's turn began

        async def admitted_receive() -> Message:
            nonlocal began
            message = await receive()
            if (
                began is None
                and message["type"] == "http.request"
                and not message.get("more_body", False)
                # set by the routing of Starlette and of packyard.api.direct alike
                and not getattr(scope.get("endpoint"), _EXEMPT, False)
            ):
                began = await self.admission.admit()
            return message

        try:
            await self.app(scope, admitted_receive, send)
        finally:
            if began is not None:
                self.admission.release(began)

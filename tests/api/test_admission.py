"""Reads before writes: while reads are being served, write requests go one at a time, in
arrival order, once their body has arrived; without reads they go freely."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from packyard.api.admission import (
    BUSY_READS,
    IDLE_READS,
    MAX_REST_S,
    READING_S,
    REST,
    WriteAdmission,
    WriteGate,
    without_write_turn,
)
from packyard.api.app import create_app
from packyard.domain.enums import Role
from packyard.services.container import Services
from tests.support.clock import ManualClock
from tests.support.factories import TenantFixture
from tests.support.server import serving_app


def _reading(admission: WriteAdmission) -> WriteAdmission:
    admission.last_read = time.monotonic() + 3600  # reads go on for the whole test
    return admission


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_without_reads_writes_go_on_together() -> None:
    async def main() -> int:
        admission = WriteAdmission()
        await admission.admit()
        await asyncio.wait_for(admission.admit(), 1)
        return admission.writes

    assert asyncio.run(main()) == 2


def test_while_reads_are_served_writes_go_one_at_a_time_in_arrival_order() -> None:
    async def main() -> list[str]:
        admission = _reading(WriteAdmission())
        order: list[str] = []

        async def write(name: str) -> None:
            began = await admission.admit()
            order.append(f"{name} in")
            await _settle()
            order.append(f"{name} out")
            admission.release(began)

        await asyncio.gather(write("a"), write("b"), write("c"))
        assert admission.writes == 0
        return order

    assert asyncio.run(main()) == ["a in", "a out", "b in", "b out", "c in", "c out"]


def test_a_turn_begins_after_the_reads_that_became_ready_with_it() -> None:
    """While reads are served, the next write starts one turn of the event loop later, so
    reads that arrived meanwhile go first; a write arriving in between waits its turn."""

    async def main() -> list[str]:
        admission = _reading(WriteAdmission())
        order: list[str] = []

        async def write(name: str) -> None:
            await admission.admit()
            order.append(name)

        began = await admission.admit()
        waiting = asyncio.ensure_future(write("waiting"))
        await _settle()
        admission.release(began)
        asyncio.get_running_loop().call_soon(order.append, "read")
        late = asyncio.ensure_future(write("late"))
        await asyncio.wait_for(waiting, 1)
        await _settle()
        assert not late.done()  # behind the waiting write, which holds the turn
        admission.release(began)
        await asyncio.wait_for(late, 1)
        return order

    assert asyncio.run(main()) == ["read", "waiting", "late"]


def test_the_waiting_writes_all_go_on_once_reads_have_stopped() -> None:
    async def main() -> int:
        admission = _reading(WriteAdmission())
        began = await admission.admit()
        waiting = [asyncio.ensure_future(admission.admit()) for _ in range(3)]
        await _settle()
        assert not any(w.done() for w in waiting)
        admission.last_read = time.monotonic() - 1  # the reads stopped
        admission.release(began)
        await asyncio.wait_for(asyncio.gather(*waiting), 1)
        return admission.writes

    assert asyncio.run(main()) == 3


def test_a_write_cancelled_while_waiting_gives_up_its_place() -> None:
    async def main() -> tuple[bool, int]:
        admission = _reading(WriteAdmission())
        began = await admission.admit()
        gone = asyncio.ensure_future(admission.admit())
        after = asyncio.ensure_future(admission.admit())
        await _settle()
        gone.cancel()
        await _settle()
        admission.release(began)
        await asyncio.wait_for(after, 1)
        return gone.cancelled(), admission.writes

    assert asyncio.run(main()) == (True, 1)


def test_a_write_cancelled_as_its_turn_came_passes_the_turn_on() -> None:
    async def main() -> int:
        admission = _reading(WriteAdmission())
        began = await admission.admit()
        unlucky = asyncio.ensure_future(admission.admit())
        next_one = asyncio.ensure_future(admission.admit())
        await _settle()
        admission.release(began)  # unlucky's turn, before it could run again...
        unlucky.cancel()  # ...it is cancelled
        with pytest.raises(asyncio.CancelledError):
            await unlucky
        await asyncio.wait_for(next_one, 1)
        return admission.writes

    assert asyncio.run(main()) == 1


# --- the rest after a turn while reads keep the process busy ------------------------------


def _busy_reads(admission: WriteAdmission, clock: ManualClock, reads: int) -> None:
    """``reads`` reads in one window, then one more that closes it."""
    for _ in range(reads):
        admission.read()
    clock.now += READING_S
    admission.read()


def _rest_after(admission: WriteAdmission, clock: ManualClock, turn_s: float) -> float:
    """Real seconds between the end of a turn of ``turn_s`` (clock time) and the start of
    the next write's."""

    async def main() -> float:
        began = await admission.admit()
        waiting = asyncio.ensure_future(admission.admit())
        await _settle()
        ended = time.monotonic()
        admission.release(began - turn_s)
        await asyncio.wait_for(waiting, 1)
        return time.monotonic() - ended

    return asyncio.run(main())


def test_busy_counts_the_reads_of_the_last_whole_window_beyond_the_idle_ones() -> None:
    clock = ManualClock()
    admission = WriteAdmission(clock)
    _busy_reads(admission, clock, IDLE_READS + (BUSY_READS - IDLE_READS) // 4)
    assert admission.busy == 0.25
    _busy_reads(admission, clock, 3 * BUSY_READS)
    assert admission.busy == 1.0
    clock.now += 3 * READING_S  # a pause: what came before it no longer counts
    admission.read()
    assert admission.busy == 0.0


def test_busy_reads_leave_a_rest_after_each_turn_in_proportion_to_it() -> None:
    clock = ManualClock()
    admission = WriteAdmission(clock)
    _busy_reads(admission, clock, BUSY_READS)
    turn = MAX_REST_S / REST / 2  # its rest: half the longest
    rest = _rest_after(admission, clock, turn)
    assert REST * turn * 0.9 <= rest < MAX_REST_S * 4


def test_the_rest_is_capped() -> None:
    clock = ManualClock()
    admission = WriteAdmission(clock)
    _busy_reads(admission, clock, BUSY_READS)
    assert MAX_REST_S * 0.9 <= _rest_after(admission, clock, turn_s=60) < 0.5


def test_a_few_reads_leave_no_rest() -> None:
    """Reads as few as pushers' own (Packer reads between its writes) do not slow them."""
    clock = ManualClock()
    admission = WriteAdmission(clock)
    _busy_reads(admission, clock, IDLE_READS - 1)
    assert admission.busy == 0.0
    assert _rest_after(admission, clock, turn_s=0.02) < REST * 0.02 / 4


# --- the ASGI layer ---------------------------------------------------------------------


def _endpoint() -> None: ...


@without_write_turn
def _exempt_endpoint() -> None: ...


def _app(seen: list[int], admission: WriteAdmission, *, fail: bool = False) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "DELETE":
            while (await receive()).get("more_body", False):
                pass
        seen.append(admission.writes)
        await _settle()  # the other requests run meanwhile, up to their turn
        if fail:
            raise RuntimeError("boom")

    return app


def _call(gate: WriteGate, method: str = "POST", endpoint: Callable[[], None] = _endpoint) -> Any:
    scope = {"type": "http", "method": method, "endpoint": endpoint}
    chunks = [
        {"type": "http.request", "body": b"{", "more_body": True},
        {"type": "http.request", "body": b"}", "more_body": False},
    ]

    async def receive() -> Message:
        return chunks.pop(0)

    async def send(message: Message) -> None: ...

    return gate(scope, receive, send)


def _run(*calls: Callable[[], Awaitable[Any]]) -> None:
    async def main() -> None:
        await asyncio.gather(*(c() for c in calls))

    asyncio.run(main())


def test_the_gate_holds_a_write_from_its_body_to_its_answer() -> None:
    admission = _reading(WriteAdmission())
    seen: list[int] = []
    gate = WriteGate(_app(seen, admission), admission)
    _run(lambda: _call(gate), lambda: _call(gate))
    assert seen == [1, 1]  # one at a time, each counted while it was answered
    assert admission.writes == 0


def test_without_reads_the_gate_lets_writes_overlap() -> None:
    admission = WriteAdmission()
    seen: list[int] = []
    gate = WriteGate(_app(seen, admission), admission)
    _run(lambda: _call(gate), lambda: _call(gate))
    assert seen == [1, 2]
    assert admission.writes == 0


def test_the_gate_gives_the_turn_back_when_the_answer_fails() -> None:
    admission = _reading(WriteAdmission())
    seen: list[int] = []
    with pytest.raises(RuntimeError):
        _run(lambda: _call(WriteGate(_app(seen, admission, fail=True), admission)))
    assert seen == [1]
    assert admission.writes == 0


def test_exempt_routes_and_bodiless_requests_take_no_turn() -> None:
    admission = _reading(WriteAdmission())
    seen: list[int] = []
    gate = WriteGate(_app(seen, admission), admission)
    _run(lambda: _call(gate, endpoint=_exempt_endpoint), lambda: _call(gate, method="DELETE"))
    assert seen == [0, 0]


# --- over HTTP --------------------------------------------------------------------------


@pytest.mark.slow
def test_a_slow_body_holds_no_place_while_reads_are_served(
    services: Services, tenant: TenantFixture
) -> None:
    """A client that sends a write's body slowly, while reads are being served, does not
    hold back another client's writes."""
    prefix = (
        f"/packer/2023-01-01/organizations/{tenant.organization_id}/projects/{tenant.project_id}"
    )
    headers = {"Authorization": f"Bearer {tenant.identities[Role.ADMIN].token}"}
    app = create_app(services, background_jobs=False, body_timeout_s=30)
    stop = threading.Event()
    with serving_app(app) as base, httpx.Client(base_url=base, headers=headers) as client:

        def read() -> None:
            with httpx.Client(base_url=base, headers=headers) as reader:
                while not stop.is_set():
                    reader.get(f"{prefix}/buckets")

        readers = threading.Thread(target=read)
        readers.start()
        port = int(base.rsplit(":", 1)[1])
        try:
            with socket.create_connection(("127.0.0.1", port)) as slow:
                head = (
                    f"PUT {prefix}/buckets HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                    f"Authorization: {headers['Authorization']}\r\n"
                    "Content-Type: application/json\r\n\r\n"
                )
                slow.sendall(head.encode() + b'{"name": ')
                for n in range(3):
                    started = time.monotonic()
                    made = client.put(f"{prefix}/buckets", json={"name": f"quick-{n}"})
                    assert made.status_code == 200, made.text
                    assert time.monotonic() - started < 5
        finally:
            stop.set()
            readers.join()
    assert app.admission.writes == 0  # type: ignore[attr-defined]

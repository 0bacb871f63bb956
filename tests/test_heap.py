"""Freed memory goes back to the system after a large write transaction (packyard.heap),
and only then."""

from __future__ import annotations

import gc
import json
import platform
import subprocess
import sys
import weakref

import pytest

from packyard import heap
from packyard.domain.enums import Role
from packyard.services.container import Services
from packyard.store import engine
from tests.support.factories import TenantFixture
from tests.support.revocation import new_buckets, push_version, request


def test_glibc_heaps_are_trimmed() -> None:
    assert heap.release_freed() is (platform.libc_ver()[0] == "glibc")


class _Node:
    def __init__(self) -> None:
        self.itself = self


def test_garbage_in_reference_cycles_is_collected_before_the_trim() -> None:
    was_enabled = gc.isenabled()
    gc.disable()  # no collection but release_freed's own
    try:
        node = _Node()
        gone = weakref.ref(node)
        del node
        assert gone() is not None  # its cycle keeps it
        heap.release_freed()
        assert gone() is None
    finally:
        if was_enabled:
            gc.enable()


_THREAD_HEAP = """
import ctypes, ctypes.util, json, sys, threading
from packyard import heap

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd",
        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = MallInfo2

def heaps_mib():  # what glibc's heaps hold from the system, every thread's included
    return libc.mallinfo2().arena / 2**20

def large_write():
    result = bytearray(20 * 2**20)  # above the mmap threshold: freeing it raises glibc's
    del result
    rows = [bytearray(100 * 2**10) for _ in range(300)]  # 30 MiB from this thread's heap
    del rows

bounded = heap.bound_heap_ends() if sys.argv[1] == "bounded" else None
before = heaps_mib()
thread = threading.Thread(target=large_write)
thread.start()
thread.join()
print(json.dumps({"bounded": bounded, "kept": heaps_mib() - before}))
"""


def _kept_after_a_threads_large_work(mode: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _THREAD_HEAP, mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    found: dict[str, object] = json.loads(out.stdout)
    return found


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's heap thresholds")
def test_a_threads_heap_gives_back_its_free_end_once_bounded() -> None:
    bounded = _kept_after_a_threads_large_work("bounded")
    unbounded = _kept_after_a_threads_large_work("default")

    assert bounded["bounded"] is True
    # Most of the 30 MiB goes back; when the thread's heap had to grow a second segment (it
    # depends on where the address space put the first), the first one's free end, about 11 MiB,
    # stays: glibc trims the end of a thread's last segment only.
    assert isinstance(bounded["kept"], float) and bounded["kept"] < 15
    # glibc's own thresholds, raised by the large block: the thread's heap keeps its end
    assert isinstance(unbounded["kept"], float) and unbounded["kept"] > 20


def test_a_transaction_recording_many_events_releases_what_it_freed(
    services: Services, tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    released: list[bool] = []

    def release() -> bool:
        released.append(True)
        return True

    monkeypatch.setattr(heap, "release_freed", release)
    monkeypatch.setattr(engine, "LARGE_WRITE_EVENTS", 3)
    caller = tenant.caller(Role.ADMIN)
    base, child = new_buckets(services, caller, "base", "child")
    root = push_version(services, caller, base)
    push_version(services, caller, child, parent_id=root.id)
    assert released == []  # pushes record an event or two per transaction
    services.revocation.revoke(caller, base, root.fingerprint, request(revoke_in="1h"))
    assert released == []  # two events: the root's and its descendant's
    push_version(services, caller, child, parent_id=root.id)
    services.revocation.revoke(caller, base, root.fingerprint, request(revoke_in="2h"))
    assert released == [True]  # three


def test_a_large_write_transaction_closes_its_postgresql_connection(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libpq keeps the buffers a transaction grew until its connection closes; SQLite
    connections keep nothing of the kind and stay."""
    monkeypatch.setattr(engine, "flush_journal", lambda conn, keys: engine.LARGE_WRITE_EVENTS)
    with services.store.write() as conn:
        driver = conn.connection.driver_connection
    assert getattr(driver, "closed", False) is not services.store.is_sqlite
    with services.store.write() as conn:  # PostgreSQL: the next write opens another
        assert (conn.connection.driver_connection is driver) is services.store.is_sqlite

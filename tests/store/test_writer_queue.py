"""SQLite writers of several processes take turns through the writer queue."""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import multiprocessing.synchronize
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from packyard.errors import ApiError, Code
from packyard.store.writer_queue import WriterQueue, lock_file_for

HOLD_S = 0.3


def _hold_turn(lock_file: str, held: multiprocessing.synchronize.Event, seconds: float) -> None:
    queue = WriterQueue(Path(lock_file), timeout_s=5)
    with queue.turn():
        held.set()
        time.sleep(seconds)


def _start_holder(lock_file: Path, seconds: float) -> multiprocessing.context.ForkProcess:
    context = multiprocessing.get_context("fork")
    held = context.Event()
    holder = context.Process(target=_hold_turn, args=(str(lock_file), held, seconds))
    holder.start()
    assert held.wait(10), "the other process never got its turn"
    return holder


def test_a_writer_waits_for_another_process_and_goes_right_after(tmp_path: Path) -> None:
    lock_file = tmp_path / "db-writers.lock"
    holder = _start_holder(lock_file, HOLD_S)  # returns once the holder has its turn
    started = time.monotonic()
    queue = WriterQueue(lock_file, timeout_s=5)
    try:
        with queue.turn():
            waited = time.monotonic() - started
        # Without a lock shared across processes the turn would come at once.
        assert waited >= HOLD_S * 0.5
        assert waited < HOLD_S + 2  # handed over promptly, not after SQLite-style sleeps
    finally:
        holder.join(10)
        queue.close()


def test_a_turn_not_given_in_time_is_a_retryable_error(tmp_path: Path) -> None:
    lock_file = tmp_path / "db-writers.lock"
    holder = _start_holder(lock_file, 5)
    queue = WriterQueue(lock_file, timeout_s=0.2)
    try:
        with pytest.raises(ApiError) as caught, queue.turn():
            pass
        assert caught.value.code is Code.UNAVAILABLE
    finally:
        holder.kill()
        holder.join(10)
        queue.close()


def test_a_killed_holder_releases_the_turn(tmp_path: Path) -> None:
    lock_file = tmp_path / "db-writers.lock"
    holder = _start_holder(lock_file, 60)
    assert holder.pid is not None
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(10)
    queue = WriterQueue(lock_file, timeout_s=2)
    with queue.turn():
        pass
    queue.close()


def test_threads_of_one_process_never_overlap_and_a_turn_nests(tmp_path: Path) -> None:
    queue = WriterQueue(tmp_path / "db-writers.lock", timeout_s=5)
    inside = 0
    overlaps = 0
    guard = threading.Lock()

    def write() -> None:
        nonlocal inside, overlaps
        for _ in range(200):
            with queue.turn(), queue.turn():  # nested: the same thread's turn
                with guard:
                    inside += 1
                    overlaps += inside > 1
                time.sleep(0)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    queue.close()
    assert overlaps == 0


def test_in_memory_databases_need_no_lock_file(tmp_path: Path) -> None:
    assert lock_file_for(":memory:") is None
    assert lock_file_for(None) is None
    assert lock_file_for(str(tmp_path / "packyard.db")) == tmp_path / "packyard.db-writers.lock"

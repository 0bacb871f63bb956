"""The dead webhook receiver of the benchmark: alive for the verification, then a black hole;
and the comparison's medians and ratio."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from bench.push import PushResult
from bench.webhooks import DeadReceiver, compare


def test_answers_until_it_dies_then_holds_connections_unanswered() -> None:
    receiver = DeadReceiver()
    try:
        answer = httpx.post(receiver.url, json={"event_action": "test"}, timeout=5)
        assert (answer.status_code, answer.json(), receiver.answered) == (200, {}, 1)
        receiver.die()
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(receiver.url, json={"event_action": "create"}, timeout=0.5)
        assert (receiver.answered, receiver.held) == (1, 1)
    finally:
        receiver.close()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", receiver.port), 1):
        pass  # closed: nothing listens any more


def _result(rate: float) -> PushResult:
    return PushResult(
        pushers=8,
        seconds=10.0,
        versions=int(rate * 10),
        versions_per_s=rate,
        failures=0,
        calls_per_s=rate * 12,
        version_p50_ms=100.0,
        version_p99_ms=200.0,
        statuses={},
    )


def test_compare_alternates_abba_and_reports_medians_and_their_ratio() -> None:
    # without, with; with, without; without, with
    rates = iter([50.0, 45.0, 44.0, 40.0, 60.0, 47.0])
    order: list[str] = []

    @contextmanager
    def hook() -> Iterator[DeadReceiver]:
        receiver = DeadReceiver()
        order.append("hook")
        try:
            yield receiver
        finally:
            receiver.close()

    def push() -> PushResult:
        order.append("push")
        return _result(next(rates))

    found = compare(push, hook, rounds=3, log=lambda _: None)
    assert order == ["push", "hook", "push", "hook", "push", "push", "push", "hook", "push"]
    assert found["versions_per_s_without"] == 50.0
    assert found["versions_per_s_dead_receiver"] == 45.0
    assert found["ratio"] == 0.9
    assert (found["rounds"], found["pushers"], len(found["runs_dead_receiver"])) == (3, 8, 3)

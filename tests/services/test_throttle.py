"""The token endpoint's failure counters (pure, no storage)."""

from __future__ import annotations

import pytest

from packyard.errors import ApiError, Code
from packyard.services.throttle import FailureCounter, LoginThrottle, retry_after, throttled
from tests.support.clock import ManualClock


def test_sliding_window() -> None:
    clock = ManualClock(0.0)
    counter = FailureCounter(limit=3, window=10, clock=clock)
    for _ in range(3):
        assert counter.wait("k") == 0
        counter.failed("k")
        clock.now += 2
    assert counter.wait("k") == pytest.approx(4)  # first failure at 0 leaves at 10; now 6
    clock.now = 10
    assert counter.wait("k") == 0
    counter.failed("k")
    assert counter.wait("k") == pytest.approx(2)  # failures at 2, 4, 10: 2 leaves at 12


def test_clear_and_independent_keys() -> None:
    clock = ManualClock(0.0)
    counter = FailureCounter(limit=1, window=5, clock=clock)
    counter.failed("a")
    assert counter.wait("a") > 0
    assert counter.wait("b") == 0
    counter.clear("a")
    assert counter.wait("a") == 0


def test_memory_is_bounded() -> None:
    clock = ManualClock(0.0)
    counter = FailureCounter(limit=2, window=60, clock=clock, max_keys=100)
    for i in range(1000):
        counter.failed(f"client-{i}")
    assert len(counter._failures) <= 100
    counter.failed("x" * 10_000)
    assert max(len(k) for k in counter._failures) <= 128


def test_login_throttle_raises_resource_exhausted() -> None:
    clock = ManualClock(0.0)
    throttle = LoginThrottle.with_limits(
        client_failures=2, address_failures=3, window=30, clock=clock
    )
    throttle.failed("c1", "10.0.0.1")
    throttle.check("c1", "10.0.0.1")
    throttle.failed("c1", "10.0.0.1")
    with pytest.raises(ApiError) as err:
        throttle.check("c1", None)
    assert err.value.code is Code.RESOURCE_EXHAUSTED
    assert err.value.http_status == 429
    assert retry_after(err.value) == 30
    throttle.failed("c2", "10.0.0.1")
    with pytest.raises(ApiError):
        throttle.check("c3", "10.0.0.1")  # the address is now locked for everyone
    throttle.check("c3", "10.0.0.2")
    throttle.succeeded("c1")
    throttle.check("c1", "10.0.0.2")


def test_retry_after_is_whole_seconds() -> None:
    assert retry_after(throttled(0.2)) == 1
    assert retry_after(throttled(2.5)) == 3
    assert retry_after(ApiError(Code.INTERNAL, "x")) is None

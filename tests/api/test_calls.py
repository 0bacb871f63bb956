"""Service calls run on the event loop with SQLite and on worker threads with PostgreSQL."""

from __future__ import annotations

import asyncio
import threading

import pytest

from packyard.api.calls import run
from packyard.errors import ApiError, Code
from packyard.services.container import Services


def test_where_a_service_call_runs(services: Services) -> None:
    async def main() -> tuple[str, str]:
        loop_thread = threading.current_thread().name
        call_thread = await run(services, lambda: threading.current_thread().name)
        return loop_thread, call_thread

    loop_thread, call_thread = asyncio.run(main())
    if services.store.is_sqlite:
        assert call_thread == loop_thread
    else:
        assert call_thread != loop_thread


def test_arguments_results_and_errors_pass_through(services: Services) -> None:
    def divide(a: int, *, by: int) -> float:
        if by == 0:
            raise ApiError(Code.INVALID_ARGUMENT, "division by zero")
        return a / by

    assert asyncio.run(run(services, divide, 6, by=3)) == 2
    with pytest.raises(ApiError) as caught:
        asyncio.run(run(services, divide, 6, by=0))
    assert caught.value.code is Code.INVALID_ARGUMENT

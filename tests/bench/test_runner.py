"""The harness's run options."""

from __future__ import annotations

import pytest
from bench.runner import Options, console_wrk_connections
from bench.seed import SIZES


@pytest.mark.parametrize(
    ("connections", "seconds", "expected"),
    [([1, 16], 5.0, 16), ([64, 1], 5.0, 64), ([1, 16], 0.0, None), ([], 5.0, None)],
    ids=["highest", "unordered", "wrk-off", "no-reads"],
)
def test_the_console_pages_wrk_runs_at_the_reads_highest_connection_count(
    connections: list[int], seconds: float, expected: int | None
) -> None:
    opts = Options(
        size="S",
        shape=SIZES["S"],
        backends=["sqlite"],
        connections=connections,
        console_wrk_seconds=seconds,
    )
    assert console_wrk_connections(opts) == expected

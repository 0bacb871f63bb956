"""Timestamps on the wire: RFC 3339 in UTC with microseconds, as HCP renders them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from packyard.api.render import ts
from packyard.api.responses import JSONBody


@pytest.mark.parametrize(
    ("moment", "wire"),
    [
        (datetime(2026, 11, 30, 1, 2, 3, 4, tzinfo=UTC), "2026-11-30T01:02:03.000004Z"),
        (datetime(2026, 11, 30, 1, 2, 3, tzinfo=UTC), "2026-11-30T01:02:03.000000Z"),
        (
            datetime(2026, 11, 30, 6, 2, 3, tzinfo=timezone(timedelta(hours=5))),
            "2026-11-30T01:02:03.000000Z",
        ),
        (datetime(2026, 11, 30, 1, 2, 3), "2026-11-30T01:02:03.000000Z"),  # naive: taken as UTC
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00.000000Z"),
        (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "9999-12-31T23:59:59.999999Z"),
        (datetime(1, 1, 1, 0, 0, 0, 10, tzinfo=UTC), "0001-01-01T00:00:00.000010Z"),
    ],
)
def test_timestamps(moment: datetime, wire: str) -> None:
    assert JSONBody({"at": ts(moment)}).body == b'{"at":"' + wire.encode() + b'"}'


def test_unset_is_null() -> None:
    assert ts(None) is None

"""Timestamps: stored as SQLAlchemy's SQLite text, read back timezone-aware in UTC."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, insert, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import StatementError

from packyard.store.engine import Store, sqlite_url
from packyard.store.migrate import upgrade
from packyard.store.types import UTCDateTime, json_dumps

_meta = MetaData()
_stamps = Table("stamps", _meta, Column("id", Integer, primary_key=True), Column("at", UTCDateTime))

MOMENTS = [
    datetime(2026, 11, 30, 1, 2, 3, 4, tzinfo=UTC),
    datetime(2026, 11, 30, 6, 2, 3, tzinfo=timezone(timedelta(hours=5))),  # stored as UTC
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(sqlite_url(str(tmp_path / "t.db")))
    upgrade(s)  # the generation counters every write moves
    _meta.create_all(s.engine)
    yield s
    s.dispose()


@pytest.mark.parametrize("moment", MOMENTS)
def test_sqlite_text_is_sqlalchemys_own_format(moment: datetime) -> None:
    """Databases written before keep reading, comparing and sorting the same."""
    dialect = sqlite.dialect()
    theirs = DateTime().dialect_impl(dialect).bind_processor(dialect)
    ours = UTCDateTime().bind_processor(dialect)
    assert theirs is not None and ours is not None
    assert ours(moment) == theirs(moment.astimezone(UTC).replace(tzinfo=None))


def test_round_trip_is_exact_and_aware(store: Store) -> None:
    with store.write() as conn:
        conn.execute(insert(_stamps), [{"id": i, "at": m} for i, m in enumerate(MOMENTS)])
        conn.execute(insert(_stamps), {"id": 99, "at": None})
    with store.read() as conn:
        got = {row.id: row.at for row in conn.execute(select(_stamps.c.id, _stamps.c.at))}
        raw = conn.execute(text("SELECT at FROM stamps WHERE id = 0")).scalar_one()
    assert raw == "2026-11-30 01:02:03.000004"
    assert got.pop(99) is None
    for i, moment in enumerate(MOMENTS):
        assert got[i] == moment and got[i].tzinfo is UTC


def test_comparisons_in_sql_see_the_same_text(store: Store) -> None:
    with store.write() as conn:
        conn.execute(insert(_stamps), [{"id": i, "at": m} for i, m in enumerate(MOMENTS)])
    cutoff = datetime(2026, 11, 30, 1, 2, 3, 4, tzinfo=UTC)
    with store.read() as conn:
        before = conn.execute(select(_stamps.c.id).where(_stamps.c.at <= cutoff)).scalars()
        assert sorted(before) == [0, 1, 2]


def test_naive_timestamps_are_refused(store: Store) -> None:
    with pytest.raises(StatementError, match="naive"), store.write() as conn:
        conn.execute(insert(_stamps), {"id": 1, "at": datetime(2026, 1, 1)})


@pytest.mark.parametrize(
    "value",
    [
        {"labels": {"os": "ubuntü"}, "n": [1, 2.5, None, True]},
        {"big": 2**70},  # beyond 64 bits: the standard library writes it
        {1: "a key that is not a string"},
    ],
    ids=["plain", "big-int", "int-key"],
)
def test_json_dumps_writes_what_the_standard_library_reads_back(value: object) -> None:
    assert json.loads(json_dumps(value)) == json.loads(json.dumps(value))

"""Lean statements give what SQLAlchemy's execution gives, in the same transaction."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    select,
    text,
    union_all,
)
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from packyard.store.engine import Store
from packyard.store.lean import LeanSelect
from packyard.store.types import UTCDateTime, in_list, json_loads, json_rows, utc_from_json

_meta = MetaData()
_things = Table(
    "lean_things",
    _meta,
    Column("id", String(20), primary_key=True),
    Column("n", Integer, nullable=False),
    Column("flag", Boolean, nullable=False),
    Column("labels", JSON, nullable=True),
    Column("at", UTCDateTime, nullable=True),
)
_parts = Table(
    "lean_parts",
    _meta,
    Column("id", String(20), primary_key=True),
    Column("thing_id", String(20), nullable=False),
    Column("at", UTCDateTime, nullable=False),
)
_T0 = datetime(2026, 12, 5, 18, 0, 0, 123456, tzinfo=UTC)

_BY_IDS = select(_things).where(in_list(_things.c.id, "ids")).order_by(_things.c.id)
_AFTER = select(_things.c.id).where(_things.c.at > bindparam("since", type_=UTCDateTime))
_WITH_PARTS = select(
    _things.c.id,
    select(json_rows(_parts.c.id, _parts.c.at))
    .where(_parts.c.thing_id == _things.c.id)
    .scalar_subquery()
    .label("parts"),
).order_by(_things.c.id)
_WITH_LITERAL = select(_things.c.id).where(_things.c.n > 1, _things.c.id == bindparam("id"))


@pytest.fixture
def things(store: Store) -> Iterator[Store]:
    _meta.create_all(store.engine)
    with store.write() as conn:
        conn.execute(
            _things.insert(),
            [
                {"id": "a", "n": 1, "flag": True, "labels": {"os": "linux"}, "at": _T0},
                {"id": "b", "n": 2, "flag": False, "labels": None, "at": None},
                {"id": "c", "n": 3, "flag": True, "labels": {"k": [1, 2]}, "at": _T0},
            ],
        )
        conn.execute(
            _parts.insert(),
            [
                {"id": "p1", "thing_id": "a", "at": _T0},
                {"id": "p2", "thing_id": "a", "at": _T0.replace(microsecond=120000)},
                {"id": "p3", "thing_id": "c", "at": _T0.replace(microsecond=0)},
            ],
        )
    yield store
    _meta.drop_all(store.engine)


def test_rows_are_those_sqlalchemy_reads_with_the_column_types_applied(things: Store) -> None:
    lean = LeanSelect(_BY_IDS)
    with things.read() as conn:
        expected = [tuple(r) for r in conn.execute(_BY_IDS, {"ids": ["c", "a", "zz"]})]
        got = lean.rows(conn, {"ids": ["c", "a", "zz"]})
    assert [tuple(r) for r in got] == expected
    first = got[0]
    assert (first.id, first.flag, first.labels, first.at) == ("a", True, {"os": "linux"}, _T0)
    assert first.at.tzinfo is UTC


def test_json_rows_aggregate_a_parents_children_with_their_timestamps(things: Store) -> None:
    lean = LeanSelect(_WITH_PARTS)
    with things.read() as conn:
        rows = lean.rows(conn, {})
    parts = {r.id: sorted((part_id, utc_from_json(at)) for part_id, at in r.parts) for r in rows}
    assert parts == {
        "a": [("p1", _T0), ("p2", _T0.replace(microsecond=120000))],
        "b": [],  # no children: an empty array, not null
        "c": [("p3", _T0.replace(microsecond=0))],
    }


def test_a_list_parameter_may_be_empty_or_long(things: Store) -> None:
    lean = LeanSelect(_BY_IDS)
    with things.read() as conn:
        assert lean.rows(conn, {"ids": []}) == []
        many = [f"x{i}" for i in range(2000)] + ["b"]
        assert [r.id for r in lean.rows(conn, {"ids": many})] == ["b"]


def test_parameters_go_through_their_types_and_literals_keep_their_values(
    things: Store,
) -> None:
    with things.read() as conn:
        assert LeanSelect(_AFTER).rows(conn, {"since": datetime(2026, 1, 1, tzinfo=UTC)}) != []
        assert LeanSelect(_AFTER).first(conn, {"since": _T0}) is None
        assert LeanSelect(_WITH_LITERAL).first(conn, {"id": "a"}) is None
        assert [r.id for r in LeanSelect(_WITH_LITERAL).rows(conn, {"id": "c"})] == ["c"]


def test_a_parameter_used_twice_is_one_value_converted_once(things: Store) -> None:
    twice = union_all(
        select(_things.c.id).where(in_list(_things.c.id, "ids"), _things.c.flag.is_(True)),
        select(_parts.c.id).where(in_list(_parts.c.thing_id, "ids")),
    ).subquery()
    statement = select(twice.c.id).order_by(twice.c.id)
    with things.write() as conn:
        conn.execute(_things.insert(), {"id": "long", "n": 4, "flag": True})
        conn.execute(_parts.insert(), {"id": "p4", "thing_id": "long", "at": _T0})
    ids = {"ids": ["long", "b"]}  # ids of one letter would hide a list converted twice
    with things.read() as conn:
        expected = [r.id for r in conn.execute(statement, ids)]
        got = [r.id for r in LeanSelect(statement).rows(conn, ids)]
    assert got == expected == ["long", "p4"]


def test_the_statement_reads_inside_the_callers_transaction(things: Store) -> None:
    lean = LeanSelect(select(_things.c.id).where(_things.c.id == bindparam("id")))
    with pytest.raises(RuntimeError), things.write() as conn:
        conn.execute(_things.insert(), {"id": "new", "n": 9, "flag": False})
        assert lean.first(conn, {"id": "new"}) is not None
        raise RuntimeError("roll back")
    with things.read() as conn:
        assert lean.first(conn, {"id": "new"}) is None


def test_statement_counters_count_lean_statements(things: Store) -> None:
    counter = things.enable_statement_counter()
    before, _ = counter.snapshot()
    with things.read() as conn:
        LeanSelect(_BY_IDS).rows(conn, {"ids": ["a"]})
    assert counter.snapshot()[0] - before == 1


def test_a_driver_error_is_raised_as_sqlalchemys(things: Store) -> None:
    broken = LeanSelect(select(_things.c.id).where(text("no_such_column = 1")))
    with pytest.raises(DBAPIError) as raised, things.read() as conn:
        broken.rows(conn, {})
    # The driver's own class, as SQLAlchemy maps it (api/errors.py answers by this class).
    expected = OperationalError if things.is_sqlite else ProgrammingError
    assert type(raised.value) is expected
    assert raised.value.hide_parameters
    with things.read() as conn:  # the store serves on
        assert [r.id for r in LeanSelect(_BY_IDS).rows(conn, {"ids": ["a"]})] == ["a"]


def test_json_columns_fall_back_to_the_standard_library_for_what_orjson_refuses() -> None:
    assert json_loads('{"a": [1, "b"]}') == {"a": [1, "b"]}
    assert math.isnan(json_loads('{"x": NaN}')["x"])
    assert json_loads("[123456789012345678901234567890]") == [123456789012345678901234567890]


@pytest.mark.parametrize(
    "number",
    [
        18446744073709551615,  # the largest orjson reads as an integer
        18446744073709551616,
        -9223372036854775808,  # the smallest
        -9223372036854775809,
        1234567890123456789,
    ],
)
def test_json_integers_keep_every_digit(number: int) -> None:
    for document in (f'{{"n": {number}}}', f'{{"n": {number}}}'.encode()):
        value = json_loads(document)["n"]
        assert (type(value), value) == (int, number)


def test_json_text_beyond_ascii_reads_the_same() -> None:
    assert json_loads('{"ü": "٣٣٣٣٣٣٣٣٣٣٣٣٣٣٣٣٣٣٣٣", "n": 1}') == {"ü": "٣" * 20, "n": 1}

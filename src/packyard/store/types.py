"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import ARRAY, JSON, ColumnElement, DateTime, Dialect, String, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import NullType, TypeDecorator, TypeEngine


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as naive UTC and always returned timezone-aware (UTC).

    On SQLite the value is text, ``YYYY-MM-DD HH:MM:SS.ffffff`` (SQLAlchemy's own
    SQLite format, so existing databases read and sort the same). The conversions
    are done here in one step each, with the C ``isoformat``/``fromisoformat``,
    rather than by SQLAlchemy's SQLite processors followed by this type's own: a
    push reads and writes about a hundred timestamps.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return _naive_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        # PostgreSQL (the driver returns datetimes); SQLite reads through result_processor.
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def to_text(value: datetime | None) -> str | None:
            if value is None:
                return None
            return _naive_utc(value).isoformat(sep=" ", timespec="microseconds")

        return to_text

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def from_text(value: str | None) -> datetime | None:
            if value is None:
                return None
            # Parsed with its offset in one C call (3x faster than parse, then replace).
            return datetime.fromisoformat(value + "+00:00")

        return from_text


def json_loads(text: str | bytes) -> Any:
    """JSON columns as read: orjson, ~4x faster than the standard library. What orjson
    reads differently goes to the standard library: ``NaN`` (refused) and integers
    beyond 64 bits (orjson turns them into floats), found as runs of 19 digits or more
    (the shortest such integer is ``-9223372036854775809``)."""
    raw = text.encode() if isinstance(text, str) else text
    # One C pass over the bytes: a regex scan cost 15 times orjson's parse of the text.
    if _LONG_RUN not in raw.translate(_ASCII_DIGITS):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def json_dumps(value: Any) -> str:
    """JSON text to store: orjson, several times faster than the standard library (a
    push's audit records are most of what its writes encode). What orjson refuses goes
    to the standard library: integers beyond 64 bits and keys that are not strings."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value)


# Every ASCII digit becomes "0" and every other byte a blank: a long number is a long
# run of zeros.
_ASCII_DIGITS = bytes(ord("0") if chr(i).isdigit() and i < 128 else ord(" ") for i in range(256))
_LONG_RUN = b"0" * 19


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored")
    return value.astimezone(UTC).replace(tzinfo=None)


class _IdList(TypeDecorator[list[str]]):
    """A list of strings bound as one parameter: JSON text on SQLite, an array on PostgreSQL."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(String))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        items = list(value)
        return orjson.dumps(items).decode() if dialect.name == "sqlite" else items


class InList(ColumnElement[Any]):
    """``column IN (<list parameter>)`` with one parameter whatever the list's length.

    SQLAlchemy's expanding ``IN`` renders one placeholder per item, so the SQL text
    changes with the count and is rewritten on every execution; this form keeps one
    statement text (``IN (SELECT value FROM json_each(?))`` on SQLite, ``= ANY(%s)``
    on PostgreSQL), which :class:`packyard.store.lean.LeanSelect` needs and which
    both planners answer from the column's index.
    """

    inherit_cache = True
    type: TypeEngine[Any] = NullType()  # Boolean() would make SQLite render "… = 1" after it
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("param", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], name: str) -> None:
        self.column = column
        self.param = bindparam(name, type_=_IdList())


def in_list(column: ColumnElement[Any], name: str) -> InList:
    return InList(column, name)


@compiles(InList, "sqlite")
def _in_list_sqlite(element: InList, compiler: Any, **kw: Any) -> str:
    # Both fragments are rendered by the compiler (a column name, a placeholder).
    column, param = compiler.process(element.column, **kw), compiler.process(element.param, **kw)
    return f"{column} IN (SELECT value FROM json_each({param}))"  # noqa: S608


@compiles(InList, "postgresql")
def _in_list_postgresql(element: InList, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    return f"{column} = ANY({compiler.process(element.param, **kw)})"


class JsonRows(FunctionElement[Any]):
    """An aggregate of the selected rows as one JSON array of arrays (``[]`` for none).

    A parent read with its children in one statement, one row per parent: an outer
    join repeats the parent's columns (and their conversions) on every child row, and
    each row is driver work. Values come back as JSON gives them: timestamps as text
    (:func:`utc_from_json`), in no particular order (SQLite 3.40 has no ``ORDER BY``
    inside an aggregate).
    """

    name = "json_rows"
    type = JSON()
    inherit_cache = True


def json_rows(*columns: ColumnElement[Any]) -> JsonRows:
    return JsonRows(*columns)


@compiles(JsonRows, "sqlite")
def _json_rows_sqlite(element: JsonRows, compiler: Any, **kw: Any) -> str:
    return f"json_group_array(json_array({compiler.process(element.clauses, **kw)}))"


@compiles(JsonRows, "postgresql")
def _json_rows_postgresql(element: JsonRows, compiler: Any, **kw: Any) -> str:
    values = compiler.process(element.clauses, **kw)
    return f"coalesce(json_agg(json_build_array({values})), '[]'::json)"


class JsonValue(FunctionElement[Any]):
    """A JSON column (or a :func:`json_rows` aggregate) inside a :func:`json_rows`, kept as
    JSON rather than turned into a string: SQLite stores JSON as text, which its
    ``json_array`` would quote (``json()`` marks it as JSON; numbers keep their text), and
    PostgreSQL embeds ``json`` values as they are."""

    name = "json_value"
    type = JSON()
    inherit_cache = True


def json_value(column: ColumnElement[Any]) -> JsonValue:
    return JsonValue(column)


@compiles(JsonValue, "sqlite")
def _json_value_sqlite(element: JsonValue, compiler: Any, **kw: Any) -> str:
    return f"json({compiler.process(element.clauses, **kw)})"


@compiles(JsonValue, "postgresql")
def _json_value_postgresql(element: JsonValue, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


def utc_from_json(text: str) -> datetime:
    """A UTCDateTime column's value as JSON aggregates write it: SQLite's stored text
    (``2026-12-05 18:00:00.123456``) or PostgreSQL's ``2026-12-05T18:00:00.12``."""
    return datetime.fromisoformat(text + "+00:00")

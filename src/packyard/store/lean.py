"""Hot read statements run straight on the driver's cursor.

A statement executed through SQLAlchemy's ``Connection.execute`` costs about 40 µs
of Python (execution context, parameter processing, result set-up) before and
after the database's own few microseconds, several times the cost of a read
statement on SQLite. :class:`LeanSelect` keeps SQLAlchemy where it helps — the
statement is written as a SQLAlchemy ``Select`` and compiled by the dialect, and
column values go through the column types' own result processors — and drops it
where it does not: the SQL text and the positions of its parameters are compiled
once per dialect, then every execution is one call on the DB-API connection of the
transaction, and rows come back as light named tuples read the same way as
SQLAlchemy's rows (``row.column``).

What the bypass keeps: the same transaction (the DB-API connection under the
SQLAlchemy connection), driver errors raised as SQLAlchemy's ``DBAPIError``
family (a lost connection invalidated as SQLAlchemy would), and the
``before_cursor_execute`` event, so statement counters still count every statement.
Only ``SELECT`` statements with named scalar parameters are accepted; a list
parameter is written with :func:`packyard.store.types.in_list`.
"""

from __future__ import annotations

import threading
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...] | None  # parameter order for positional drivers; None: by name
    binds: tuple[tuple[str, Processor], ...]  # (parameter, bind processor of its type)
    defaults: Mapping[str, Any]  # values of the statement's literal parameters
    processors: tuple[tuple[int, Processor], ...]  # (column position, result processor)
    row: Callable[..., Any]  # the named tuple type of a row


class LeanSelect:
    """A ``SELECT`` compiled once per dialect and run on the DB-API connection."""

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._columns = list(statement.selected_columns)
        self._keys = list(statement.selected_columns.keys())
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Every row of the statement, its values processed by the column types."""
        compiled = self._compiled.get(conn.dialect.name) or self._compile(conn.dialect)
        if compiled.binds or compiled.defaults:
            params = {**compiled.defaults, **params}
            for name, process in compiled.binds:
                params[name] = process(params[name])
        args: Sequence[Any] | Mapping[str, Any] = (
            params if compiled.names is None else [params[name] for name in compiled.names]
        )
        raw = _execute(conn, compiled.sql, args)
        make, processors = compiled.row, compiled.processors
        if not processors:
            return [make(*values) for values in raw]
        out = []
        for values in raw:
            items = list(values)
            for index, process in processors:
                items[index] = process(items[index])
            out.append(make(*items))
        return out

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Any | None:
        found = self.rows(conn, params)
        return found[0] if found else None

    def _compile(self, dialect: Dialect) -> _Compiled:
        with self._lock:
            known = self._compiled.get(dialect.name)
            if known is not None:
                return known
            compiled = self.statement.compile(dialect=dialect)
            positional = tuple(compiled.positiontup or ()) if compiled.positional else None
            binds: dict[str, Processor] = {}
            defaults = {}
            for bind, name in compiled.bind_names.items():
                bound = bind.type.dialect_impl(dialect).bind_processor(dialect)
                # A parameter used twice in the statement is one value, processed once.
                if bound is not None:
                    binds[name] = bound
                if not bind.required:
                    defaults[name] = bind.effective_value
            processors = []
            for index, column in enumerate(self._columns):
                process = column.type.dialect_impl(dialect).result_processor(dialect, None)
                if process is not None:
                    processors.append((index, process))
            done = _Compiled(
                sql=compiled.string,
                names=positional,
                binds=tuple(binds.items()),
                defaults=defaults,
                processors=tuple(processors),
                row=namedtuple("LeanRow", self._keys),
            )
            self._compiled[dialect.name] = done
            return done


def _execute(conn: Connection, sql: str, args: Any) -> list[Any]:
    dbapi_conn = conn.connection.driver_connection
    assert dbapi_conn is not None  # a connection in a transaction is open
    events = conn.dispatch
    cursor = dbapi_conn.cursor()
    try:
        for before in events.before_cursor_execute:
            before(conn, cursor, sql, args, None, False)
        cursor.execute(sql, args)
        for after in events.after_cursor_execute:
            after(conn, cursor, sql, args, None, False)
        rows: list[Any] = cursor.fetchall()  # a list on both drivers
        return rows
    except conn.dialect.loaded_dbapi.Error as exc:
        gone = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor)
        if gone:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            sql,
            args,
            exc,
            conn.dialect.loaded_dbapi.Error,
            hide_parameters=True,
            dialect=conn.dialect,
            connection_invalidated=gone,
        ) from exc
    finally:
        cursor.close()

"""Engine set-up for the two supported databases and the transaction helpers.

SQLite (the embedded default) runs in WAL mode with foreign keys on and a busy
timeout; write transactions start with ``BEGIN IMMEDIATE`` so concurrent
writers queue on the database lock instead of failing on a lock upgrade.
PostgreSQL uses psycopg 3; writers serialise per bucket with row locks taken by
the repositories (``SELECT … FOR UPDATE``).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry

from packyard import heap
from packyard.store import generations
from packyard.store.journal import flush as flush_journal
from packyard.store.types import json_dumps, json_loads
from packyard.store.writer_queue import WriterQueue, lock_file_for

SQLITE_BUSY_TIMEOUT_S = 30
_PING = text("SELECT COUNT(*) FROM cache_generations WHERE scope = '*'")
# Seconds a new PostgreSQL connection may take (unless the URL sets connect_timeout).
PG_CONNECT_TIMEOUT_S = 10
# Seconds an open PostgreSQL connection may go without hearing from the database's host
# while it waits for it (unless the URL sets tcp_user_timeout): then it fails, and the pool
# opens a new one. Without this, a connection whose route was dropped (a failed-over
# primary, a firewall forgetting the connection) waits for the kernel's retransmissions,
# about 15 minutes. TCP keepalives are what notice a silent peer while a query runs.
PG_DEAD_PEER_S = 20
PG_KEEPALIVE_IDLE_S = 5
# How the next SQLite transaction on a connection begins (key of Connection.info).
_BEGIN = "packyard_begin"
# Seconds a PostgreSQL connection serves before it is replaced (firewalls and load
# balancers drop connections that live too long).
PG_RECYCLE_S = 1800
# A write transaction recording at least this many events gives back the memory it freed
# (packyard.heap): a revocation reaching 1,000 descendants or more.
LARGE_WRITE_EVENTS = 1000
# PostgreSQL isolation levels: one-statement reads (no transaction), reads, writes.
_STATEMENT = "AUTOCOMMIT"
_READ = "REPEATABLE READ"
_WRITE = "READ COMMITTED"
_PG_LEVELS = (_STATEMENT, _READ, _WRITE)


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and pick the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def pg_liveness(query: Mapping[str, object]) -> dict[str, int]:
    """The libpq parameters that bound how long a PostgreSQL connection waits for a host
    that has gone silent, except those the database URL's ``query`` sets itself."""
    wanted = {
        "connect_timeout": PG_CONNECT_TIMEOUT_S,
        "keepalives": 1,
        "keepalives_idle": PG_KEEPALIVE_IDLE_S,
        "keepalives_interval": PG_KEEPALIVE_IDLE_S,
        # the user timeout, once set, is what ends the keepalive probes
        "keepalives_count": PG_DEAD_PEER_S // PG_KEEPALIVE_IDLE_S,
        "tcp_user_timeout": PG_DEAD_PEER_S * 1000,
    }
    return {name: value for name, value in wanted.items() if name not in query}


def sqlite_url(path: str) -> str:
    return f"sqlite+pysqlite:///{path}"


class StatementCounter:
    """Counts the SQL statements and transactions an engine runs (benchmarks, query budgets).

    Opt-in through :meth:`Store.enable_statement_counter`: nothing is attached to
    the engine otherwise. Every statement executed through SQLAlchemy counts;
    ``BEGIN``, ``COMMIT`` and ``ROLLBACK`` go straight to the driver and do not. Work of
    threads named in ``ignore_threads`` (background jobs) is not counted.
    """

    def __init__(self, ignore_threads: Collection[str] = ()) -> None:
        self._lock = threading.Lock()
        self._ignore = frozenset(ignore_threads)
        self.statements = 0
        self.transactions = 0

    def on_statement(self, *_: Any) -> None:
        if threading.current_thread().name not in self._ignore:
            with self._lock:
                self.statements += 1

    def on_begin(self, *_: Any) -> None:
        if threading.current_thread().name not in self._ignore:
            with self._lock:
                self.transactions += 1

    def snapshot(self) -> tuple[int, int]:
        """``(statements, transactions)`` so far."""
        with self._lock:
            return self.statements, self.transactions


class Store:
    """The database: an engine plus read and write transaction scopes."""

    def __init__(self, url: str, *, pool_size: int = 20) -> None:
        self.url = normalize_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            _create_private(parsed.database)
            kwargs["connect_args"] = {
                "timeout": SQLITE_BUSY_TIMEOUT_S,
                "check_same_thread": False,
            }
            # Enough pooled connections for every worker thread: no connect/close churn.
            kwargs["pool_size"] = pool_size * 2
            kwargs["max_overflow"] = pool_size * 2
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            # No pre-ping round trip per checkout; a dropped connection invalidates the
            # pool on its first error, and old connections are recycled.
            kwargs["pool_recycle"] = PG_RECYCLE_S
            # Packyard's statements are short index reads and writes. The planner's guess at
            # a recursive query's size (ancestry, lineage) is far above what its LIMITs let
            # it read, which made PostgreSQL JIT-compile such queries: 20-50 ms for a read of
            # a few milliseconds. JIT never pays here.
            # Prepared statements keep one plan for all parameter values. PostgreSQL would
            # otherwise plan every run of a statement with an ``= ANY(array)`` parameter
            # again: it cannot price a generic plan for an array of unknown length below the
            # custom one. Planning was most of the database's CPU for a read (0.45 ms of
            # 0.5 for a version's row); with one plan an uncached GetChannel costs PostgreSQL
            # 0.39 ms of CPU instead of 0.69. The statements are short index reads and
            # writes whose best plan does not depend on the values.
            connect_args: dict[str, Any] = {
                "options": "-c jit=off -c plan_cache_mode=force_generic_plan"
            }
            # An unreachable host fails a connection attempt, and a host gone silent an open
            # connection, rather than hanging it.
            connect_args.update(pg_liveness(parsed.query))
            # psycopg prepares a statement on its second run rather than its sixth: the
            # server then parses and plans the hot statements once per connection (a few
            # ms of PostgreSQL CPU less per push), and one-off statements stay unprepared.
            connect_args["prepare_threshold"] = 1
            kwargs["connect_args"] = connect_args
        # Never echo bound parameters (the token signing key, secret hashes) into error
        # messages and therefore into logs.
        kwargs["hide_parameters"] = True
        kwargs["json_serializer"] = json_dumps
        kwargs["json_deserializer"] = json_loads
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self.statement_counter: StatementCounter | None = None
        # SQLite connections kept by the thread that last used them (see _connection).
        self._idle = threading.local() if self.is_sqlite else None
        self._held: set[Connection] = set()
        # PostgreSQL connections kept out of the pool between transactions, by isolation
        # level, with the time each was opened (see _connection).
        self._kept: dict[str, list[tuple[Connection, float]]] = {level: [] for level in _PG_LEVELS}
        self._keep = pool_size // 2
        self._held_lock = threading.Lock()
        self._disposed = False
        # SQLite has one writer at a time: writers of every process take turns in a
        # queue rather than sleeping in SQLite's busy handler.
        self._writers = (
            WriterQueue(lock_file_for(parsed.database), SQLITE_BUSY_TIMEOUT_S)
            if self.is_sqlite
            else None
        )

    def enable_statement_counter(self, ignore_threads: Collection[str] = ()) -> StatementCounter:
        """Start counting statements and transactions (off by default; the first call wins)."""
        if self.statement_counter is None:
            counter = StatementCounter(ignore_threads)
            event.listen(self.engine, "before_cursor_execute", counter.on_statement)
            event.listen(self.engine, "begin", counter.on_begin)
            self.statement_counter = counter
        return self.statement_counter

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def write_waits(self) -> tuple[float, int] | None:
        """(seconds waited for a write turn, turns taken) in this process (SQLite only)."""
        if self._writers is None:
            return None
        return self._writers.waited_s, self._writers.turns

    def ping(self) -> None:
        """Read one table: the database answers and holds Packyard's schema (a fresh
        connection must find the schema, not just open a file). Raises SQLAlchemy's error."""
        with self.read() as conn:
            conn.execute(_PING).scalar()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (one consistent snapshot on both databases)."""
        with self._connection(_READ) as conn:
            if self.is_sqlite:
                conn.info[_BEGIN] = "BEGIN"
            with conn.begin():
                yield conn

    @contextmanager
    def read_statement(self) -> Iterator[Connection]:
        """A read made of one statement, run outside a transaction.

        A statement sees one snapshot of the database by itself, on both databases, so a
        read of one statement needs no transaction: on PostgreSQL this saves BEGIN and
        COMMIT, two of its three round trips (an uncached GetChannel cost the server and
        PostgreSQL 0.61 ms of CPU with them, 0.2 ms without). Reads of more than one
        statement use :meth:`read`; a statement run through SQLAlchemy here (rather than a
        :class:`~packyard.store.lean.LeanSelect`) opens a transaction, committed at the end.
        """
        with self._connection(_STATEMENT) as conn:
            yield conn
            if conn.in_transaction():
                conn.commit()

    @contextmanager
    def write(
        self, project_id: str | None = None, *, affects_reads: bool = True
    ) -> Iterator[Connection]:
        """A write transaction: everything in it commits together or not at all.

        ``project_id`` names the only project the transaction changes; without it
        the write counts as changing every project. Either way the matching
        generation counters move in the same transaction, which is what keeps
        cached read responses exact (:mod:`packyard.store.generations`): the
        project's, or only those of the buckets the transaction declared it is
        confined to (``generations.confine``).
        ``affects_reads=False`` is for rows no API response is made from (console
        users and their sessions): such a write leaves every cached response valid.
        """
        turn = self._writers.turn() if self._writers is not None else nullcontext()
        with turn, self._connection(_WRITE) as conn:
            if self.is_sqlite:
                conn.info[_BEGIN] = "BEGIN IMMEDIATE"
            with conn.begin():
                yield conn
                changed = generations.changed_keys(conn, project_id) if affects_reads else []
                # The journal's per-project counter row is taken last, so that it stays
                # locked for as short a time as possible: from here to COMMIT.
                recorded = flush_journal(conn, changed)
            if recorded >= LARGE_WRITE_EVENTS and not self.is_sqlite:
                # libpq keeps the buffers a transaction grew (a batch of events at least,
                # journal.WRITE_AHEAD_EVENTS) for as long as its connection is open.
                conn.invalidate()
        if recorded >= LARGE_WRITE_EVENTS:
            # What such a transaction built (an event per descendant of a revocation) is
            # garbage by now; see packyard.heap.
            heap.release_freed()

    @contextmanager
    def _connection(self, isolation_level: str) -> Iterator[Connection]:
        """A connection for one transaction (or one statement, in ``AUTOCOMMIT``).

        Connections are kept out of the pool between transactions and taken up again:
        checking one out of the pool and back in cost more CPU than a short SQLite
        transaction, and on PostgreSQL, with its isolation level set and reset, about
        90 µs of the interpreter lock, as much as a short statement's round trip. SQLite
        connections are kept by the thread that last used them (``isolation_level`` does
        not apply: reads and writes say how they begin). PostgreSQL connections are kept
        by isolation level, set once when one is opened (setting it again on a kept
        connection would queue one more reset for its check-in), at most
        ``pool_size // 2`` idle per level, so that the idle ones and the busy ones stay
        within the pool's size plus overflow; one older than ``PG_RECYCLE_S`` is
        replaced, as the pool replaces its own.
        """
        if self._idle is not None:
            idle: list[tuple[Connection, float]] = self._idle.__dict__.setdefault("connections", [])
            keep = None
        else:
            idle, keep = self._kept[isolation_level], self._keep
        conn, opened = self._take(idle, isolation_level)
        try:
            yield conn
        finally:
            if conn.invalidated or conn.in_transaction() or self._disposed:
                self._close(conn)
            elif keep is None or len(idle) < keep:
                idle.append((conn, opened))
            else:
                self._close(conn)

    def _take(
        self, idle: list[tuple[Connection, float]], isolation_level: str
    ) -> tuple[Connection, float]:
        """An idle connection from ``idle`` still fit for use, else a new one."""
        while True:
            try:
                conn, opened = idle.pop()
            except IndexError:
                break
            if not conn.invalidated and (
                self.is_sqlite or time.monotonic() - opened < PG_RECYCLE_S
            ):
                return conn, opened
            conn.invalidate()  # the driver's connection is closed, not pooled again
            self._close(conn)
        conn = self._open()
        if not self.is_sqlite:
            try:
                conn.execution_options(isolation_level=isolation_level)
            except BaseException:
                self._close(conn)
                raise
        return conn, time.monotonic()

    def _open(self) -> Connection:
        conn = self.engine.connect()
        with self._held_lock:
            self._held.add(conn)
        return conn

    def _close(self, conn: Connection) -> None:
        with self._held_lock:
            self._held.discard(conn)
        conn.close()

    def dispose(self) -> None:
        self._disposed = True
        for kept in self._kept.values():
            kept.clear()  # closed below with every connection held
        with self._held_lock:
            held, self._held = self._held, set()
        for conn in held:  # idle in some thread's list; a busy one closes when it is done
            if not conn.in_transaction():
                conn.close()
        self.engine.dispose()
        if self._writers is not None:
            self._writers.close()


def _create_private(database: str | None) -> None:
    """Create a SQLite database file with mode 0600 before SQLite opens it.

    SQLite creates the file with mode 0644 (less the umask) and gives its ``-wal`` and
    ``-shm`` files the database file's mode: created 0600 here, all three are private
    (the database holds the token signing key). A path that cannot be created is left
    for SQLite to report when it connects.
    """
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        os.close(fd)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        # BEGIN is issued by the dialect hook below (pysqlite would defer it).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    def begin(dbapi_connection: Any) -> None:
        # Straight to the driver: through SQLAlchemy's statement execution the BEGIN
        # cost as much CPU as the statements of a short transaction. A dialect hook
        # rather than a "begin" event: any connection event listener on the engine
        # makes SQLAlchemy dispatch events around every statement.
        dbapi_connection.driver_connection.execute(dbapi_connection.info.pop(_BEGIN, "BEGIN"))

    engine.dialect.do_begin = begin  # type: ignore[method-assign]

"""Transaction scopes of the store: atomic writes, snapshot reads, reused SQLite connections."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, literal_column, make_url, select, text
from sqlalchemy.exc import PendingRollbackError

from packyard.store import engine as engine_module
from packyard.store.engine import Store, sqlite_url
from packyard.store.lean import LeanSelect
from packyard.store.migrate import upgrade
from tests.support.postgres import unix_socket
from tests.support.tcp_proxy import freezable_proxy


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(sqlite_url(str(tmp_path / "p.db")))
    upgrade(s)
    with s.write() as conn:
        conn.execute(text("CREATE TABLE notes (n INTEGER)"))
    yield s
    s.dispose()


def _notes(conn: Connection) -> list[int]:
    return [row[0] for row in conn.execute(text("SELECT n FROM notes ORDER BY n"))]


def test_a_thread_takes_up_its_connection_again(store: Store) -> None:
    with store.write() as first:
        conn_id = id(first.connection.driver_connection)
    with store.read() as again:
        assert id(again.connection.driver_connection) == conn_id
    seen: list[int] = []

    def elsewhere() -> None:
        with store.read() as conn:
            seen.append(id(conn.connection.driver_connection))

    worker = threading.Thread(target=elsewhere)
    worker.start()
    worker.join()
    assert seen and seen[0] != conn_id  # each thread its own


def test_nested_transactions_on_one_thread_use_separate_connections(store: Store) -> None:
    with store.read() as outer, store.read() as inner:
        assert outer is not inner
        assert _notes(outer) == _notes(inner) == []


def test_a_failed_write_changes_nothing_and_the_connection_serves_on(store: Store) -> None:
    with pytest.raises(RuntimeError), store.write() as conn:
        conn.execute(text("INSERT INTO notes VALUES (1)"))
        raise RuntimeError("refused half-way")
    with store.write() as conn:
        conn.execute(text("INSERT INTO notes VALUES (2)"))
    with store.read() as conn:
        assert _notes(conn) == [2]


def test_a_read_after_a_write_on_the_same_connection_does_not_hold_the_write_lock(
    store: Store, tmp_path: Path
) -> None:
    with store.write() as conn:
        conn.execute(text("INSERT INTO notes VALUES (1)"))
    other = Store(sqlite_url(str(tmp_path / "p.db")))
    try:
        with store.read() as conn:
            assert _notes(conn) == [1]
            # A read (deferred BEGIN) leaves the database to other writers meanwhile;
            # a reused connection must not begin it the way the write before did.
            done = threading.Event()

            def write_elsewhere() -> None:
                with other.write() as c:
                    c.execute(text("INSERT INTO notes VALUES (2)"))
                done.set()

            worker = threading.Thread(target=write_elsewhere)
            worker.start()
            worker.join(10)
            assert done.is_set()
            assert _notes(conn) == [1]  # still this transaction's snapshot
    finally:
        other.dispose()
    with store.read() as conn:
        assert _notes(conn) == [1, 2]


def test_a_write_begins_immediately(store: Store, tmp_path: Path) -> None:
    """A write takes the database lock at BEGIN, not at its first change."""
    other = Store(sqlite_url(str(tmp_path / "p.db")))
    try:
        with store.write() as conn:
            conn.execute(text("SELECT 1"))
            raw = other.engine.raw_connection()
            try:
                raw.driver_connection.execute("PRAGMA busy_timeout=0")  # type: ignore[union-attr]
                with pytest.raises(Exception, match="locked"):
                    raw.driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
            finally:
                raw.close()
    finally:
        other.dispose()


def test_dispose_closes_the_idle_connections(store: Store) -> None:
    with store.read() as conn:
        driver = conn.connection.driver_connection
    store.dispose()
    with pytest.raises(Exception, match="closed"):
        driver.execute("SELECT 1")  # type: ignore[union-attr]


def test_an_invalidated_connection_is_not_taken_up_again(store: Store) -> None:
    with store.read() as conn:
        first = conn.connection.driver_connection
    with pytest.raises(PendingRollbackError), store.read() as conn:
        conn.invalidate()
        conn.execute(text("SELECT 1"))
    with store.read() as conn:
        assert conn.connection.driver_connection is not first
        assert _notes(conn) == []


def test_postgresql_connections_never_jit_compile_and_keep_one_plan(db_url: str) -> None:
    postgres = Store(db_url)
    try:
        if postgres.is_sqlite:
            pytest.skip("SQLite has neither JIT nor a plan cache setting")
        with postgres.read() as conn:
            assert conn.execute(text("SHOW jit")).scalar_one() == "off"
            plans = conn.execute(text("SHOW plan_cache_mode")).scalar_one()
        assert plans == "force_generic_plan"
    finally:
        postgres.dispose()


def test_a_one_statement_read_opens_no_transaction(db_url: str) -> None:
    store = Store(db_url)
    one = LeanSelect(select(literal_column("1").label("one")))
    try:
        with store.read_statement() as conn:
            assert one.first(conn, {}) == (1,)
            driver = conn.connection.driver_connection
            if store.is_sqlite:
                assert driver.in_transaction is False  # type: ignore[union-attr]
            else:
                status = driver.info.transaction_status  # type: ignore[union-attr]
                assert status == psycopg.pq.TransactionStatus.IDLE
            assert not conn.in_transaction()
        if not store.is_sqlite:
            # The connection goes back to the pool with its usual isolation levels.
            with store.read() as conn:
                isolation = conn.execute(text("SHOW transaction_isolation")).scalar_one()
                assert isolation == "repeatable read"
            with store.write() as conn:
                isolation = conn.execute(text("SHOW transaction_isolation")).scalar_one()
                assert isolation == "read committed"
    finally:
        store.dispose()


@pytest.fixture
def postgres(db_url: str) -> Iterator[Store]:
    store = Store(db_url, pool_size=4)
    if store.is_sqlite:
        store.dispose()
        pytest.skip("SQLite connections are kept per thread (above)")
    yield store
    store.dispose()


def _driver(store: Store) -> Any:
    with store.read_statement() as conn:
        return conn.connection.driver_connection


def test_one_statement_reads_keep_their_connections_out_of_the_pool(postgres: Store) -> None:
    first = _driver(postgres)
    assert _driver(postgres) is first
    assert first.autocommit is True
    # Two at a time keep two; more than pool_size // 2 at a time keep pool_size // 2.
    with (
        postgres.read_statement() as a,
        postgres.read_statement() as b,
        postgres.read_statement() as c,
    ):
        held = {id(x.connection.driver_connection) for x in (a, b, c)}
    assert len(held) == 3
    assert len(postgres._kept["AUTOCOMMIT"]) == 2


def _isolation(conn: Connection) -> str:
    return str(conn.execute(text("SHOW transaction_isolation")).scalar_one())


def test_transactions_keep_a_connection_per_isolation_level(postgres: Store) -> None:
    with postgres.read() as conn:
        reader = conn.connection.driver_connection
        assert _isolation(conn) == "repeatable read"
    with postgres.write() as conn:
        writer = conn.connection.driver_connection
        assert _isolation(conn) == "read committed"
    statement = _driver(postgres)
    assert len({id(reader), id(writer), id(statement)}) == 3
    for _ in range(2):  # each level takes up its own connection again
        with postgres.read() as conn:
            assert conn.connection.driver_connection is reader
            assert _isolation(conn) == "repeatable read"
        with postgres.write() as conn:
            assert conn.connection.driver_connection is writer
            assert _isolation(conn) == "read committed"
        assert _driver(postgres) is statement
    # A write that failed was rolled back: its connection is taken up again.
    with pytest.raises(RuntimeError), postgres.write() as conn:
        conn.execute(text("SELECT 1"))
        raise RuntimeError("boom")
    assert [c.connection.driver_connection for c, _ in postgres._kept["READ COMMITTED"]] == [writer]


def test_a_kept_connection_is_replaced_when_invalidated_or_old(
    postgres: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    with postgres.read_statement() as conn:
        first = conn.connection.driver_connection
        assert first is not None
        conn.invalidate()
    assert first.closed
    second = _driver(postgres)
    assert second is not first and not second.closed
    monkeypatch.setattr(engine_module, "PG_RECYCLE_S", 0)
    third = _driver(postgres)
    assert third is not second and second.closed


def test_dispose_closes_the_kept_connections(postgres: Store) -> None:
    kept = _driver(postgres)
    postgres.dispose()
    assert kept.closed


_LIVENESS_OPTIONS = [
    ("keepalive", socket.SOL_SOCKET, socket.SO_KEEPALIVE),
    ("idle", socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
    ("interval", socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
    ("user_timeout", socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
]


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize(
    ("query", "user_timeout_ms"),
    [("", engine_module.PG_DEAD_PEER_S * 1000), ("?tcp_user_timeout=7000", 7000)],
)
def test_postgresql_connections_give_up_on_a_host_gone_silent(
    db_url: str, query: str, user_timeout_ms: int
) -> None:
    """The socket of a TCP connection carries the bound (the database URL's own value
    wins), so a dropped route fails a waiting connection (tests/robustness)."""
    url = make_url(db_url)
    with freezable_proxy(unix_socket(db_url)) as proxy:
        store = Store(f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{url.database}{query}")
        try:
            with store.read() as conn:
                fd = conn.connection.driver_connection.fileno()  # type: ignore[union-attr]
                with socket.socket(fileno=os.dup(fd)) as sock:
                    options = {
                        name: sock.getsockopt(level, option)
                        for name, level, option in _LIVENESS_OPTIONS
                    }
        finally:
            store.dispose()
    assert options == {
        "keepalive": 1,
        "idle": engine_module.PG_KEEPALIVE_IDLE_S,
        "interval": engine_module.PG_KEEPALIVE_IDLE_S,
        "user_timeout": user_timeout_ms,
    }

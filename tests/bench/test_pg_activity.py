"""The PostgreSQL activity sampler of the two-servers scenario: what waiting backends wait for,
from synthetic snapshots and from a real lock wait on a real cluster."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from bench.pgactivity import (
    ActivitySampler,
    Backend,
    Lock,
    Snapshot,
    backend_from_row,
    lock_from_row,
    snapshot_from_rows,
    statement,
    summarize,
    waited_relation,
)

from tests.support.postgres import PostgresCluster

UPDATE = "UPDATE projects SET generation = generation + 1 WHERE id = $1"


def test_rows_are_parsed_and_statements_collapsed() -> None:
    b = backend_from_row((7, "active", "Lock", "transactionid", "SELECT\n  1", [3, 4]))
    assert (b.pid, b.state, b.wait_event, b.query, b.blocked_by) == (
        7,
        "active",
        "transactionid",
        "SELECT\n  1",
        (3, 4),
    )
    assert backend_from_row((8, "idle", None, None, None, None)).blocked_by == ()
    assert lock_from_row((7, "tuple", "ExclusiveLock", True, "projects")).granted is True
    assert statement("SELECT  a,\n\t b FROM t") == "SELECT a, b FROM t"
    assert len(statement("x" * 500)) == 70
    assert statement("") == "(none)"
    snap = snapshot_from_rows(
        [
            (7, "active", "Lock", "transactionid", "UPDATE t", None, [["tuple", "X", True, "t"]]),
            (8, "idle", None, None, "COMMIT", None, None),
        ]
    )
    assert [b.pid for b in snap.backends] == [7, 8]
    assert snap.locks == (Lock(7, "tuple", "X", True, "t"),)


def test_waited_relation_names_the_row_behind_a_transaction_wait() -> None:
    tx = Lock(1, "transactionid", "ShareLock", False, None)
    row = Lock(1, "tuple", "ExclusiveLock", True, "projects")
    assert waited_relation([tx, row]) == "projects (row)"
    assert waited_relation([Lock(2, "tuple", "ExclusiveLock", False, "projects")]) == (
        "projects (row)"
    )
    assert waited_relation([Lock(3, "relation", "AccessExclusiveLock", False, "t")]) == (
        "t (relation, AccessExclusiveLock)"
    )
    assert waited_relation([tx]) == "a transaction (no row lock held)"
    assert waited_relation([Lock(4, "advisory", "ExclusiveLock", False, None)]) == (
        "advisory (ExclusiveLock)"
    )
    assert waited_relation([], "tuple") == "tuple (granted before pg_locks was read)"


def test_summary_averages_per_sample() -> None:
    holder = Backend(1, "idle in transaction", "Client", "ClientRead", UPDATE)
    first = Backend(2, "active", "Lock", "transactionid", UPDATE, blocked_by=(1,))
    second = Backend(3, "active", "Lock", "tuple", UPDATE, blocked_by=(2,))
    idle = Backend(4, "idle", "Client", "ClientRead", "COMMIT")
    busy = Backend(5, "active", None, None, "SELECT 1")
    locks = (
        Lock(2, "transactionid", "ShareLock", False, None),
        Lock(2, "tuple", "ExclusiveLock", True, "projects"),
        Lock(3, "tuple", "ExclusiveLock", False, "projects"),
    )
    snapshots = [
        Snapshot((holder, first, second, idle), locks),
        Snapshot((holder, idle, busy), ()),
    ]
    found = summarize(snapshots, 0.06)
    assert (found["samples"], found["interval_ms"]) == (2, 30.0)
    assert found["avg_backends"] == 3.5
    assert found["avg_active"] == 1.5
    assert found["avg_idle_in_transaction"] == 1.0
    assert found["avg_waiting_on_locks"] == 1.0
    assert found["waiting_by_relation"] == {"projects (row)": 1.0}
    assert found["waiting_by_statement"] == {statement(UPDATE): 1.0}
    assert found["blockers"] == {
        f"idle in transaction: {statement(UPDATE)}": 0.5,
        f"active: {statement(UPDATE)}": 0.5,
    }
    assert found["idle_in_transaction_by_statement"] == {statement(UPDATE): 1.0}
    # idle backends' ClientRead is not a wait of work in progress
    assert found["wait_events"] == {
        "Client:ClientRead": 1.0,
        "Lock:transactionid": 0.5,
        "Lock:tuple": 0.5,
    }
    assert summarize([], 0.0)["avg_backends"] == 0.0


@pytest.fixture
def database(pg_cluster: PostgresCluster | None) -> Iterator[str]:
    assert pg_cluster is not None
    name = f"act_{uuid.uuid4().hex[:12]}"
    url = pg_cluster.create_database(name)
    yield url
    pg_cluster.drop_database(name)


# (client backends, of which waiting on a lock) in a database
_BACKENDS = """
SELECT count(*), count(*) FILTER (WHERE wait_event_type = 'Lock') FROM pg_stat_activity
WHERE datname = %s AND backend_type = 'client backend'
"""


def database_name(url: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])


def test_samples_a_real_row_lock_wait(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as setup:
        setup.execute("CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL)")
        setup.execute("INSERT INTO counters VALUES (1, 0)")
    holder = psycopg.connect(database)
    holder.execute("UPDATE counters SET n = n + 1 WHERE id = %s", (1,))  # left open
    errors: list[BaseException] = []

    def wait_for_row() -> None:
        try:
            with psycopg.connect(database, autocommit=True) as conn:
                conn.execute("UPDATE counters SET n = n + 1 WHERE id = %s", (1,))
        except BaseException as exc:  # surfaced by the test below
            errors.append(exc)

    waiters = [threading.Thread(target=wait_for_row) for _ in range(2)]
    try:
        for w in waiters:
            w.start()
        # Watched from another database, so that no backend but the three under test is
        # ever in this one (a closed connection's backend lingers there while it exits).
        with psycopg.connect(database, dbname="postgres", autocommit=True) as probe:
            deadline = time.monotonic() + 10
            while probe.execute(_BACKENDS, (database_name(database),)).fetchone() != (3, 2):
                assert time.monotonic() < deadline, "the updates never waited"
                time.sleep(0.02)
        with ActivitySampler(database, interval=0.02) as sampler:
            time.sleep(0.3)
    finally:
        holder.commit()
        holder.close()
        for w in waiters:
            w.join(timeout=10)
    assert errors == []
    found = sampler.summary()
    update = "UPDATE counters SET n = n + 1 WHERE id = $1"
    assert "error" not in found
    assert found["samples"] >= 5
    assert found["avg_backends"] == 3.0
    assert found["avg_waiting_on_locks"] == 2.0
    assert found["avg_idle_in_transaction"] == 1.0
    assert found["waiting_by_relation"] == {"counters (row)": 2.0}
    assert found["waiting_by_statement"] == {update: 2.0}
    assert found["idle_in_transaction_by_statement"] == {update: 1.0}
    assert f"idle in transaction: {update}" in found["blockers"]

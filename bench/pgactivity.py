"""What PostgreSQL's backends wait for while pushers push: ``pg_stat_activity`` and the
ungranted ``pg_locks``, sampled every few tens of milliseconds from a connection of its own,
and averaged over the samples.

A backend waiting for a row another transaction has locked holds the row's ``tuple`` lock
and waits on that transaction's id (``transactionid``, no relation); the next waiters queue
on the ``tuple`` lock itself. Both are reported as the row's table, so "waiting on locks, by
relation" names the rows pushes queue for.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import psycopg

# One query, so that the backends' states and the lock table are read microseconds apart: the
# ungranted locks and the granted row (tuple) locks (a backend waiting for a row holds the
# row's tuple lock and waits on the holder's transaction id, which names no relation), of this
# database or of none (transaction ids); per client backend of the database (the sampler's own
# connection excepted) its state, wait, statement, locks, and who blocks it when it waits on a
# lock (only then: pg_blocking_pids takes the lock manager's partition locks).
SAMPLE_SQL = """
WITH l AS MATERIALIZED (
  SELECT pid, locktype, mode, granted, relation::regclass::text AS relation
  FROM pg_locks
  WHERE (NOT granted OR locktype = 'tuple') AND pid IS NOT NULL
    AND (database IS NULL
         OR database = (SELECT oid FROM pg_database WHERE datname = current_database()))
)
SELECT a.pid, a.state, a.wait_event_type, a.wait_event, left(a.query, 300),
       CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) END,
       (SELECT json_agg(json_build_array(l.locktype, l.mode, l.granted, l.relation))
        FROM l WHERE l.pid = a.pid)
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.backend_type = 'client backend'
  AND a.pid <> pg_backend_pid()
"""
PREFIX_CHARS = 70
TOP = 8
IDLE_IN_TRANSACTION = ("idle in transaction", "idle in transaction (aborted)")


@dataclass(frozen=True, slots=True)
class Backend:
    pid: int
    state: str | None
    wait_event_type: str | None
    wait_event: str | None
    query: str
    blocked_by: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Lock:
    pid: int
    locktype: str
    mode: str
    granted: bool
    relation: str | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    backends: tuple[Backend, ...]
    locks: tuple[Lock, ...]


def backend_from_row(row: tuple[Any, ...]) -> Backend:
    pid, state, wait_type, wait_event, query, blockers = row
    return Backend(
        pid=int(pid),
        state=state,
        wait_event_type=wait_type,
        wait_event=wait_event,
        query=query or "",
        blocked_by=tuple(int(p) for p in blockers or ()),
    )


def lock_from_row(row: tuple[Any, ...]) -> Lock:
    pid, locktype, mode, granted, relation = row
    return Lock(
        pid=int(pid), locktype=locktype, mode=mode, granted=bool(granted), relation=relation
    )


def snapshot_from_rows(rows: list[tuple[Any, ...]]) -> Snapshot:
    """A snapshot from :data:`SAMPLE_SQL`'s rows: each backend's columns, then its locks as
    a JSON list of ``[locktype, mode, granted, relation]`` (or null)."""
    backends = []
    locks = []
    for row in rows:
        backends.append(backend_from_row(row[:6]))
        for lock in row[6] or ():
            locks.append(lock_from_row((row[0], *lock)))
    return Snapshot(backends=tuple(backends), locks=tuple(locks))


def statement(query: str) -> str:
    """A statement's prefix, whitespace collapsed: psycopg sends parameters apart ($1, $2),
    so the same statement looks the same whatever its values."""
    return " ".join(query.split())[:PREFIX_CHARS] or "(none)"


def waited_relation(locks: list[Lock], wait_event: str | None = None) -> str:
    """What a backend waiting on a lock (``wait_event``) waits for, from its own locks."""
    ungranted = [lock for lock in locks if not lock.granted]
    for lock in ungranted:
        if lock.relation is not None:
            what = "row" if lock.locktype == "tuple" else f"{lock.locktype}, {lock.mode}"
            return f"{lock.relation} ({what})"
    rows = [lock for lock in locks if lock.granted and lock.locktype == "tuple" and lock.relation]
    if any(lock.locktype == "transactionid" for lock in ungranted):
        # no row lock: e.g. an insert waiting for another's insert of the same unique key
        return f"{rows[0].relation} (row)" if rows else "a transaction (no row lock held)"
    if ungranted:
        return f"{ungranted[0].locktype} ({ungranted[0].mode})"
    # the views are read one after the other: the lock was granted in between
    return f"{wait_event or 'a lock'} (granted before pg_locks was read)"


def summarize(snapshots: list[Snapshot], seconds: float) -> dict[str, Any]:
    """Averages per sample: backends, active ones, ones idle in a transaction, ones waiting
    on a lock (by relation, by statement and by what their blockers are doing), and the wait
    events of the backends not idle."""
    n = len(snapshots)
    totals: Counter[str] = Counter()
    by_relation: Counter[str] = Counter()
    by_statement: Counter[str] = Counter()
    blockers: Counter[str] = Counter()
    idle_statements: Counter[str] = Counter()
    wait_events: Counter[str] = Counter()
    for snap in snapshots:
        by_pid = {b.pid: b for b in snap.backends}
        locks: dict[int, list[Lock]] = {}
        for lock in snap.locks:
            locks.setdefault(lock.pid, []).append(lock)
        for b in snap.backends:
            totals["backends"] += 1
            if b.state == "active":
                totals["active"] += 1
            if b.state in IDLE_IN_TRANSACTION:
                totals["idle_in_transaction"] += 1
                idle_statements[statement(b.query)] += 1
            if b.state != "idle" and b.wait_event_type:
                wait_events[f"{b.wait_event_type}:{b.wait_event}"] += 1
            if b.wait_event_type == "Lock":
                totals["waiting_on_locks"] += 1
                by_relation[waited_relation(locks.get(b.pid, []), b.wait_event)] += 1
                by_statement[statement(b.query)] += 1
                for pid in b.blocked_by:
                    other = by_pid.get(pid)
                    blockers[
                        f"{other.state}: {statement(other.query)}" if other else "(not sampled)"
                    ] += 1

    def avg(count: int) -> float:
        return round(count / n, 3) if n else 0.0

    def top(counter: Counter[str]) -> dict[str, float]:
        return {key: avg(count) for key, count in counter.most_common(TOP)}

    return {
        "samples": n,
        "seconds": round(seconds, 2),
        "interval_ms": round(seconds / n * 1000, 1) if n else None,
        "avg_backends": avg(totals["backends"]),
        "avg_active": avg(totals["active"]),
        "avg_idle_in_transaction": avg(totals["idle_in_transaction"]),
        "avg_waiting_on_locks": avg(totals["waiting_on_locks"]),
        "waiting_by_relation": top(by_relation),
        "waiting_by_statement": top(by_statement),
        "blockers": top(blockers),
        "idle_in_transaction_by_statement": top(idle_statements),
        "wait_events": top(wait_events),
    }


class ActivitySampler:
    """Samples the database's backends and locks every ``interval`` seconds in a thread of
    its own, on a connection of its own, until the block ends; :meth:`summary` after."""

    def __init__(self, conninfo: str, interval: float = 0.03) -> None:
        self.conninfo = conninfo
        self.interval = interval
        self.snapshots: list[Snapshot] = []
        self.error = ""
        self.seconds = 0.0
        self._stop = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None
        self._thread = threading.Thread(target=self._run, name="pg-activity", daemon=True)

    def sample(self) -> Snapshot:
        assert self._conn is not None
        return snapshot_from_rows(self._conn.execute(SAMPLE_SQL).fetchall())

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            while not self._stop.is_set():
                began = time.perf_counter()
                self.snapshots.append(self.sample())
                self._stop.wait(max(0.0, self.interval - (time.perf_counter() - began)))
        except psycopg.Error as exc:  # reported with the summary
            self.error = str(exc).splitlines()[0][:200]
        self.seconds = time.perf_counter() - started

    def __enter__(self) -> ActivitySampler:
        self._conn = psycopg.connect(self.conninfo, autocommit=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        if self._conn is not None:
            self._conn.close()

    def summary(self) -> dict[str, Any]:
        found = summarize(self.snapshots, self.seconds)
        if self.error:
            found["error"] = self.error
        return found

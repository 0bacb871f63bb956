"""The per-request generation probe: one indexed statement, no ORM, no thread hop.

A cached response is served only after the probe has read the sum of the keys it
depends on (:mod:`packyard.store.generations`) from the database: a few
primary-key lookups, or one primary-key range for a project-wide response. The
probe uses a dedicated DB-API connection in autocommit mode, so every probe sees
every transaction committed before it started, whichever process committed it:

- SQLite: a ``sqlite3`` connection (``query_only``) queried on the event loop (an
  index lookup in WAL mode takes microseconds and never waits for writers);
- PostgreSQL: one ``psycopg`` async connection per server process.

Any failure makes the probe answer ``None``: the request then takes the normal,
uncached path, which reports database trouble properly.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.engine import make_url

from packyard.store.engine import Store, pg_liveness
from packyard.store.generations import Buckets, probe_params, probe_sql

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)
# Seconds the probe waits for a new connection: cached reads wait for the probe.
CONNECT_TIMEOUT_S = 5


class GenerationProbe(Protocol):
    async def generation(self, project_id: str, bucket_names: Buckets) -> int | None: ...

    async def aclose(self) -> None: ...


class SQLiteProbe:
    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA query_only=ON")
        conn.execute("PRAGMA busy_timeout=1000")
        return conn

    async def generation(self, project_id: str, bucket_names: Buckets) -> int | None:
        count = None if bucket_names is None else len(bucket_names)
        params = probe_params("sqlite", project_id, bucket_names)
        try:
            if self._conn is None:
                self._conn = self._connect()
            row = self._conn.execute(probe_sql("sqlite", count), params).fetchone()
        except sqlite3.Error as exc:
            log.warning("response cache probe failed: %s", exc)
            await self.aclose()
            return None
        return int(row[0])

    async def aclose(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class PostgresProbe:
    """One async connection; concurrent probes of the same keys share one round trip.

    A probe must start after the request that asked for it arrived. Requests that
    ask while a probe of their keys is in flight therefore join the *next*
    batch, whose query starts only after they joined; one round trip then answers
    all of them.
    """

    def __init__(self, conninfo: str, liveness: Mapping[str, int]) -> None:
        # Imported here: a SQLite server never loads the driver (~7 MB resident).
        import psycopg

        self._connect = psycopg.AsyncConnection.connect
        self._error = psycopg.Error
        options = {**liveness, "connect_timeout": CONNECT_TIMEOUT_S}
        self._conninfo = psycopg.conninfo.make_conninfo(conninfo, **options)
        self._conn: psycopg.AsyncConnection[tuple[int]] | None = None
        self._lock = asyncio.Lock()  # one statement at a time on the connection
        self._waiting: dict[tuple[str, Buckets], asyncio.Future[int | None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def generation(self, project_id: str, bucket_names: Buckets) -> int | None:
        keys = (project_id, bucket_names)
        batch = self._waiting.get(keys)
        if batch is None:
            batch = asyncio.get_running_loop().create_future()
            self._waiting[keys] = batch
            task = asyncio.ensure_future(self._answer(keys))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(batch)

    async def _answer(self, keys: tuple[str, Buckets]) -> None:
        async with self._lock:
            # Whoever joined until now is answered by the query below, which starts later.
            batch = self._waiting.pop(keys)
            value: int | None = None
            try:
                value = await self._query(*keys)
            finally:
                if not batch.done():
                    batch.set_result(value)

    async def _query(self, project_id: str, bucket_names: Buckets) -> int | None:
        count = None if bucket_names is None else len(bucket_names)
        params = probe_params("postgresql", project_id, bucket_names)
        try:
            if self._conn is None or self._conn.closed:
                self._conn = await self._connect(self._conninfo, autocommit=True)
            cur = await self._conn.execute(probe_sql("postgresql", count), params, prepare=True)
            row = await cur.fetchone()
        except self._error as exc:
            log.warning("response cache probe failed: %s", exc)
            await self._close()
            return None
        return int(row[0]) if row else None

    async def _close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def aclose(self) -> None:
        async with self._lock:
            await self._close()


def open_probe(store: Store) -> GenerationProbe | None:
    """The probe for ``store``'s database, or ``None`` where none can work (in-memory SQLite)."""
    url = make_url(store.url)
    if store.is_sqlite:
        path = url.database
        if not path or path == ":memory:" or path.startswith("file:"):
            return None
        return SQLiteProbe(path)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return PostgresProbe(conninfo, pg_liveness(url.query))

"""The journal numbers a project's records in commit order, with writers in parallel."""

from __future__ import annotations

import random
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, select

from packyard.domain.enums import Role
from packyard.domain.events import VERSION_SOURCE, AuditAction, Change, EventAction, VersionEvent
from packyard.ids import new_id
from packyard.services.container import Services
from packyard.services.journal import record
from packyard.store import generations, journal
from packyard.store.engine import Store
from packyard.store.schema import audit_events, events, webhook_deliveries, webhooks
from tests.support.factories import TenantFixture, make_tenant
from tests.support.postgres import PostgresCluster

WRITERS = 6
PER_WRITER = 8


def _seqs(services: Services, project_id: str) -> tuple[list[int], list[int]]:
    with services.store.read() as conn:
        audit = conn.execute(
            select(audit_events.c.seq).where(audit_events.c.scope == project_id)
        ).scalars()
        recorded = conn.execute(
            select(events.c.seq).where(events.c.project_id == project_id)
        ).scalars()
        return sorted(audit), sorted(recorded)


def test_seqs_follow_commit_order_with_concurrent_writers(
    services: Services, tenant: TenantFixture
) -> None:
    """A reader never sees a record while one numbered before it is still to commit: every
    snapshot holds numbers 1..n without a gap (what audit cursors and deliveries rely on)."""
    _race_writers_and_a_reader(services, tenant)


def _race_writers_and_a_reader(services: Services, tenant: TenantFixture) -> None:
    """WRITERS threads record changes while a reader takes snapshots; the numbers end up
    1..n, and every snapshot held them without a gap."""
    project = tenant.project_id
    caller = tenant.caller(Role.ADMIN)
    engine = services.store.engine

    def slow_commit(_: Any) -> None:  # after the numbers are taken, before COMMIT
        time.sleep(random.uniform(0, 0.004))

    event.listen(engine, "commit", slow_commit)
    errors: list[BaseException] = []
    done = threading.Event()

    def write(i: int) -> None:
        try:
            for n in range(PER_WRITER):
                change = Change(
                    AuditAction.CREATE,
                    "Created version",
                    bucket="golden",
                    events=tuple(
                        VersionEvent(EventAction.CREATE, {"bucket": {"id": f"b-{i}"}})
                        for _ in range(1 + n % 2)  # one or two numbers per transaction
                    ),
                )
                with services.store.write(project) as conn:
                    record(conn, project, caller, change)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    snapshots: list[tuple[list[int], list[int]]] = []

    def read() -> None:
        while not done.is_set():
            snapshots.append(_seqs(services, project))

    writers = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)]
    reader = threading.Thread(target=read)
    try:
        reader.start()
        for t in writers:
            t.start()
        for t in writers:
            t.join()
    finally:
        done.set()
        reader.join()
        event.remove(engine, "commit", slow_commit)
    assert errors == []
    audit, recorded = _seqs(services, project)
    events_per_writer = sum(1 + n % 2 for n in range(PER_WRITER))
    assert audit == list(range(1, WRITERS * PER_WRITER + 1))
    assert recorded == list(range(1, WRITERS * events_per_writer + 1))
    assert len(snapshots) > 1
    for seen_audit, seen_events in snapshots:
        assert seen_audit == list(range(1, len(seen_audit) + 1))
        assert seen_events == list(range(1, len(seen_events) + 1))


def test_a_rolled_back_change_records_nothing(services: Services, tenant: TenantFixture) -> None:
    """Records queued by a transaction that rolls back are dropped with it, not written by the
    next transaction on the same connection."""
    project = tenant.project_id
    caller = tenant.caller(Role.ADMIN)
    before = _seqs(services, project)

    class Boom(Exception):
        pass

    try:
        with services.store.write(project) as conn:
            record(conn, project, caller, Change(AuditAction.CREATE, "Created bucket"))
            raise Boom
    except Boom:
        pass
    with services.store.write(project) as conn:
        pass
    assert _seqs(services, project) == before


def _bucket_key(services: Services, project_id: str, bucket: str) -> int:
    with services.store.read() as conn:
        return generations.current(conn, project_id, (bucket,))


def test_a_recording_write_moves_its_generation_keys_in_its_last_statement(
    services: Services, tenant: TenantFixture
) -> None:
    """The keys move whether the write records anything or not; on PostgreSQL the journal's
    statement moves them, so the records and the keys are one statement before COMMIT."""
    project = tenant.project_id
    caller = tenant.caller(Role.ADMIN)
    change = Change(
        AuditAction.CREATE,
        "Created version",
        bucket="golden",
        events=(VersionEvent(EventAction.CREATE, {"bucket": {"id": "b"}}),),
    )
    statements: list[str] = []

    def seen(_c: Any, _cur: Any, sql: str, *_: Any) -> None:
        statements.append(sql)

    before = _bucket_key(services, project, "golden"), _bucket_key(services, project, "other")
    event.listen(services.store.engine, "before_cursor_execute", seen)
    try:
        with services.store.write(project) as conn:
            generations.confine(conn, "golden")
            record(conn, project, caller, change)
            statements.clear()  # what the end of the write runs
    finally:
        event.remove(services.store.engine, "before_cursor_execute", seen)
    after = _bucket_key(services, project, "golden"), _bucket_key(services, project, "other")
    assert after == (before[0] + 1, before[1])
    audit, recorded = _seqs(services, project)
    assert (len(audit), len(recorded)) == (1, 1)
    if services.store.is_sqlite:
        assert len(statements) == 5  # keys, two counters, the audit row, the event row
    else:
        assert len(statements) == 1
        assert "cache_generations" in statements[0] and "journal_sequences" in statements[0]
    with services.store.write(project) as conn:  # nothing recorded: the keys still move
        generations.confine(conn, "golden")
    assert _bucket_key(services, project, "golden") == before[0] + 2


def _hook(services: Services, project_id: str) -> str:
    """An enabled webhook subscribed to every version event (never sent to here)."""
    hook_id = new_id()
    now = datetime.now(UTC)
    with services.store.write(project_id) as conn:
        conn.execute(
            webhooks.insert().values(
                id=hook_id,
                project_id=project_id,
                name=f"hook-{hook_id}",
                description="",
                url="https://127.0.0.1:9/",
                hmac_key_sealed=None,
                enabled=True,
                subscriptions=[{"events": [{"source": VERSION_SOURCE, "action": "*"}]}],
                created_at=now,
                updated_at=now,
            )
        )
    return hook_id


def _many(count: int, start: int = 0) -> Change:
    return Change(
        AuditAction.UPDATE,
        "Revoked version",
        bucket="golden",
        events=(
            VersionEvent(EventAction.REVOKE, {"bucket": {"id": f"b-{i}"}})
            for i in range(start, start + count)
        ),
    )


def _recorded(services: Services, project_id: str) -> list[tuple[int, str, int | None]]:
    """(seq, the event's bucket id, its delivery's seq) of every event, by seq."""
    with services.store.read() as conn:
        rows = conn.execute(
            select(events.c.seq, events.c.body, webhook_deliveries.c.seq.label("delivered"))
            .outerjoin(webhook_deliveries, webhook_deliveries.c.event_id == events.c.id)
            .where(events.c.project_id == project_id)
            .order_by(events.c.seq)
        ).all()
    return [(r.seq, r.body["event_payload"]["bucket"]["id"], r.delivered) for r in rows]


def test_many_events_are_handed_on_before_the_end_and_numbered_in_order(
    services: Services, tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change with more events than WRITE_AHEAD_EVENTS has them written (SQLite) or
    staged (PostgreSQL) as they come, yet numbered in their order with their deliveries;
    twice on the same connection, the second after one that was rolled back."""
    monkeypatch.setattr(journal, "WRITE_AHEAD_EVENTS", 3)
    project = tenant.project_id
    caller = tenant.caller(Role.ADMIN)
    _hook(services, project)
    statements: list[str] = []

    def seen(_c: Any, _cur: Any, sql: str, *_: Any) -> None:
        statements.append(sql)

    event.listen(services.store.engine, "before_cursor_execute", seen)
    try:
        with services.store.write(project) as conn:
            record(conn, project, caller, _many(8))
            before_the_end = list(statements)
        with pytest.raises(ZeroDivisionError), services.store.write(project) as conn:
            record(conn, project, caller, _many(5, start=100))
            1 / 0  # noqa: B018
        with services.store.write(project) as conn:
            record(conn, project, caller, _many(7, start=8))
    finally:
        event.remove(services.store.engine, "before_cursor_execute", seen)
    batch = "INSERT INTO events" if services.store.is_sqlite else "INSERT INTO pg_temp"
    handed_on = [sql for sql in before_the_end if sql.lstrip().startswith(batch)]
    assert len(handed_on) == 2  # 8 events handed on every 3: twice before the end
    recorded = _recorded(services, project)
    assert [seq for seq, _, _ in recorded] == list(range(1, 16))
    assert [bucket for _, bucket, _ in recorded] == [f"b-{i}" for i in range(15)]
    assert all(delivered == seq for seq, _, delivered in recorded)
    audit, _ = _seqs(services, project)
    assert audit == [1, 2]  # one entry per committed change


def test_writers_handing_on_their_events_keep_commit_order(
    services: Services, tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every writer hands its events on before the end: no gap for any reader, no deadlock
    between writers (on PostgreSQL the staged events take no lock a writer waits on)."""
    monkeypatch.setattr(journal, "WRITE_AHEAD_EVENTS", 1)
    _race_writers_and_a_reader(services, tenant)


def test_a_role_that_may_not_create_temporary_tables_holds_its_events_to_the_end(
    pg_cluster: PostgresCluster | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With TEMPORARY revoked from PUBLIC on the database (a hardening), a PostgreSQL role's
    large transaction stages nothing and still records every event, in order, at the end."""
    if pg_cluster is None:
        pytest.skip("PostgreSQL is not available here")
    database, role = f"t_{uuid.uuid4().hex[:16]}", f"r_{uuid.uuid4().hex[:16]}"
    pg_cluster.create_database(database, template="packyard_template")
    with pg_cluster.admin() as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        admin.execute(f'REVOKE TEMPORARY ON DATABASE "{database}" FROM PUBLIC')
    with psycopg.connect(pg_cluster.url(database), autocommit=True) as owner:
        owner.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{role}"')
    store = Store(pg_cluster.url(database).replace("postgres@", f"{role}@", 1))
    try:
        services = Services.create(store)
        tenant = make_tenant(services)
        monkeypatch.setattr(journal, "WRITE_AHEAD_EVENTS", 3)
        statements: list[str] = []

        def seen(_c: Any, _cur: Any, sql: str, *_: Any) -> None:
            statements.append(sql)

        event.listen(store.engine, "before_cursor_execute", seen)
        try:
            with store.write(tenant.project_id) as conn:
                record(conn, tenant.project_id, tenant.caller(Role.ADMIN), _many(8))
        finally:
            event.remove(store.engine, "before_cursor_execute", seen)
        assert not [sql for sql in statements if "journal_staged" in sql]
        recorded = _recorded(services, tenant.project_id)
        assert [(seq, bucket) for seq, bucket, _ in recorded] == [
            (i + 1, f"b-{i}") for i in range(8)
        ]
    finally:
        store.dispose()
        pg_cluster.drop_database(database)
        with pg_cluster.admin() as admin:
            admin.execute(f'DROP ROLE "{role}"')

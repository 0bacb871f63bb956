"""The transactional outbox: audit entries, events and their webhook deliveries, written in
the transaction of the change they record.

Records are queued on the connection while the transaction runs (:meth:`JournalRepo.add_audit`,
:meth:`JournalRepo.add_events`) and written by :func:`flush`, which
:meth:`packyard.store.engine.Store.write` calls just before it commits. There each scope's
numbers (``seq``) are taken from its counter row in ``journal_sequences``; that row stays
locked until the commit, so a scope's records are numbered in commit order. Taken last, the
lock is held for the end of the transaction only, not across the change's statements: on
PostgreSQL the numbers and every row are written by one statement, which also moves the
transaction's cache generation keys (:mod:`packyard.store.generations`), a round trip less
per write.

A transaction recording many events (a revocation records one per descendant) hands them on
every :data:`WRITE_AHEAD_EVENTS` rather than holding them all until the end: on SQLite,
whose one writer at a time keeps every other from numbering meanwhile, they are numbered and
written at once; on PostgreSQL they wait, unnumbered, in a temporary table that the last
statement numbers and empties (taking the counter row earlier would take it before the
generation keys, in the other order from every other writer). Held to the end, 10,000
events held their bodies, their JSON document, the driver's copy of it and libpq's buffer:
about 70 MB more at the peak on PostgreSQL and 26 MB on SQLite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Connection,
    RootTransaction,
    Text,
    bindparam,
    insert,
    select,
    text,
    true,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from packyard.domain.events import Actor, AuditStatus, Subscription, SubscriptionEvent
from packyard.store import generations
from packyard.store.schema import (
    audit_events,
    events,
    journal_sequences,
    projects,
    registries,
    webhook_deliveries,
    webhooks,
)
from packyard.store.types import json_dumps

QUEUED = "queued"
# Queued events handed on once this many are waiting (see the module's docstring).
WRITE_AHEAD_EVENTS = 1000
# Key of Connection.info: the records queued by the open write transaction.
_PENDING = "packyard_journal"


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: str
    scope: str
    seq: int
    at: datetime
    status: AuditStatus
    action: str
    description: str
    actor: Actor
    bucket: str
    record: Mapping[str, Any]
    request_id: str
    source_address: str


@dataclass(frozen=True, slots=True)
class EventRow:
    """An event to record; its ``seq`` is taken when its transaction commits.

    ``body`` is the envelope already encoded as JSON text: a revocation records an event per
    descendant, and 10,000 envelopes held as nested objects until the commit kept 38 MB
    alive at once, whose interpreter arenas stayed resident after the request."""

    id: str
    project_id: str
    source: str
    action: str
    body: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ProjectHooks:
    """What recording a project's events needs: its organization, its registry's id ("" when
    it has none) and its enabled webhooks as (id, subscriptions)."""

    organization_id: str
    registry_id: str
    webhooks: tuple[tuple[str, tuple[Subscription, ...]], ...]


@dataclass(slots=True)
class _Pending:
    transaction: RootTransaction
    audit: list[AuditRow] = field(default_factory=list)  # seq not taken yet (0)
    events: list[EventRow] = field(default_factory=list)
    deliveries: list[tuple[str, str, str, datetime]] = field(default_factory=list)
    hooks: dict[str, ProjectHooks] = field(default_factory=dict)
    ahead: int = 0  # events handed on before the end (written, or staged on PostgreSQL)
    staged: dict[str, int] = field(default_factory=dict)  # PostgreSQL: staged, by project
    may_stage: bool | None = None  # PostgreSQL: whether the role may create a temporary table


def _take_numbers() -> Any:
    count = bindparam("count", type_=BigInteger)
    return (
        sqlite_insert(journal_sequences)
        .values(scope=bindparam("scope"), last=count)
        .on_conflict_do_update(
            index_elements=[journal_sequences.c.scope],
            set_={"last": journal_sequences.c.last + count},
        )
        .returning(journal_sequences.c.last)
    )


# SQLite: one upsert per counter, then one insert (an executemany) per kind of row.
_TAKE_NUMBERS = _take_numbers()
_INSERT_AUDIT = insert(audit_events)
# The body is JSON text already (EventRow): bound as text, not encoded a second time.
_INSERT_EVENTS = insert(events).values(body=bindparam("body", type_=Text()))
_INSERT_DELIVERIES = insert(webhook_deliveries)

# PostgreSQL: the generation keys, the counters and every row in one statement, the rows
# passed as JSON arrays so that its text (and the server's prepared plan) is the same for any
# number of them. Keys and counters are upserted in key order, and every transaction takes
# them through this one statement (one plan, one order of its parts), so two transactions
# never wait on each other's in a cycle.
_FLUSH_PG_SQL = """
WITH bumped AS (
    INSERT INTO cache_generations AS g (scope, bucket, generation)
    SELECT k.scope, k.bucket, 1 FROM json_to_recordset(CAST(:generations AS json))
        AS k(scope text, bucket text)
    ON CONFLICT (scope, bucket) DO UPDATE SET generation = g.generation + 1
), counters AS (
    INSERT INTO journal_sequences AS s (scope, last)
    SELECT c.scope, c.n FROM json_to_recordset(CAST(:counters AS json)) AS c(scope text, n bigint)
    ON CONFLICT (scope) DO UPDATE SET last = s.last + excluded.last
    RETURNING s.scope, s.last
), audit AS (
    INSERT INTO audit_events (id, scope, seq, at, status, action, description, actor_type,
        actor_id, actor_name, bucket, record, request_id, source_address)
    SELECT a.id, a.scope, c.last - a.n + a.k, a.at, a.status, a.action, a.description,
        a.actor_type, a.actor_id, a.actor_name, a.bucket, a.record, a.request_id,
        a.source_address
    FROM json_to_recordset(CAST(:audit AS json)) AS a(id text, scope text, k bigint, n bigint,
        at timestamp, status text, action text, description text, actor_type text,
        actor_id text, actor_name text, bucket text, record json, request_id text,
        source_address text)
    JOIN counters AS c ON c.scope = 'audit:' || a.scope
), recorded AS (
    INSERT INTO events (id, project_id, seq, source, action, body, created_at)
    SELECT e.id, e.project_id, c.last - e.n + e.k, e.source, e.action, e.body, e.at
    FROM {events}
    JOIN counters AS c ON c.scope = 'events:' || e.project_id
    RETURNING events.id, events.seq
)
INSERT INTO webhook_deliveries (id, webhook_id, event_id, seq, state, attempts,
    next_attempt_at, request, response, last_error, created_at, finished_at)
SELECT d.id, d.webhook_id, d.event_id, r.seq, 'queued', 0, d.at, 'null', 'null', '', d.at, NULL
FROM json_to_recordset(CAST(:deliveries AS json)) AS d(id text, webhook_id text,
    event_id text, at timestamp)
JOIN recorded AS r ON r.id = d.event_id
"""
# An event's columns as PostgreSQL's JSON parameters carry them (``k``: its place among its
# project's events in the transaction); the final statement's also carry ``n``, the count.
_EVENT_COLUMNS = (
    "id text, project_id text, k bigint, source text, action text, body json, at timestamp"
)
_JSON_EVENTS = f"json_to_recordset(CAST(:events AS json)) AS e({_EVENT_COLUMNS}, n bigint)"
# The events staged before the end (WRITE_AHEAD_EVENTS), then the others; a staged row's
# ``n`` is its project's count in the counters.
_STAGED_AND_JSON_EVENTS = f"""(
        SELECT s.id, s.project_id, s.k, t.n, s.source, s.action, s.body, s.at
        FROM pg_temp.journal_staged AS s
        JOIN json_to_recordset(CAST(:counters AS json)) AS t(scope text, n bigint)
            ON t.scope = 'events:' || s.project_id
        UNION ALL
        SELECT e.id, e.project_id, e.k, e.n, e.source, e.action, e.body, e.at
        FROM {_JSON_EVENTS}
    ) AS e"""  # noqa: S608 (built from constants only, as the statements below)
_FLUSH_PG = text(_FLUSH_PG_SQL.format(events=_JSON_EVENTS))
_FLUSH_PG_STAGED = text(_FLUSH_PG_SQL.format(events=_STAGED_AND_JSON_EVENTS))
# PostgreSQL lets every role create temporary tables unless the database's TEMPORARY
# privilege was revoked from PUBLIC (a hardening some deployments apply): such a role's
# transactions hold their events until the end instead, as they all did before batches.
_MAY_CREATE_TEMPORARY = text("SELECT has_database_privilege(current_database(), 'TEMPORARY')")
_CREATE_STAGED = text(f"CREATE TEMPORARY TABLE journal_staged ({_EVENT_COLUMNS}) ON COMMIT DROP")
_STAGE_EVENTS = text(
    "INSERT INTO pg_temp.journal_staged "  # noqa: S608
    f"SELECT * FROM json_to_recordset(CAST(:events AS json)) AS e({_EVENT_COLUMNS})"
)

# The project's organization, registry and enabled webhooks, in one statement (a project has
# at most one registry).
_PROJECT_HOOKS = (
    select(
        projects.c.organization_id,
        registries.c.id.label("registry_id"),
        webhooks.c.id.label("webhook_id"),
        webhooks.c.subscriptions,
    )
    .select_from(
        projects.outerjoin(registries, registries.c.project_id == projects.c.id).outerjoin(
            webhooks,
            (webhooks.c.project_id == projects.c.id) & (webhooks.c.enabled.is_(true())),
        )
    )
    .where(projects.c.id == bindparam("project_id"))
)
_ENABLED_WEBHOOKS = select(webhooks.c.id, webhooks.c.subscriptions).where(
    webhooks.c.project_id == bindparam("project_id"), webhooks.c.enabled.is_(true())
)


class JournalRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add_audit(self, row: AuditRow) -> None:
        """Queue ``row`` (its ``seq`` is taken when the transaction commits)."""
        self._pending().audit.append(row)

    def add_event(self, row: EventRow, deliveries: Sequence[tuple[str, str]]) -> None:
        """Queue ``row`` and one delivery of it per (webhook id, delivery id)."""
        pending = self._pending()
        pending.events.append(row)
        pending.deliveries += [
            (delivery_id, hook_id, row.id, row.created_at) for hook_id, delivery_id in deliveries
        ]
        if len(pending.events) >= WRITE_AHEAD_EVENTS:
            _write_ahead(self.conn, pending)

    def project_hooks(self, project_id: str) -> ProjectHooks:
        """The project's organization, registry and enabled webhooks: one statement, once per
        transaction."""
        pending = self._pending()
        found = pending.hooks.get(project_id)
        if found is None:
            rows = self.conn.execute(_PROJECT_HOOKS, {"project_id": project_id}).all()
            found = ProjectHooks(
                organization_id=rows[0].organization_id if rows else "",
                registry_id=(rows[0].registry_id or "") if rows else "",
                webhooks=tuple(
                    (r.webhook_id, subscriptions_from_json(r.subscriptions))
                    for r in rows
                    if r.webhook_id is not None
                ),
            )
            pending.hooks[project_id] = found
        return found

    def enabled_webhooks(self, project_id: str) -> list[tuple[str, tuple[Subscription, ...]]]:
        """(id, subscriptions) of the project's enabled webhooks."""
        rows = self.conn.execute(_ENABLED_WEBHOOKS, {"project_id": project_id})
        return [(r.id, subscriptions_from_json(r.subscriptions)) for r in rows]

    def _pending(self) -> _Pending:
        transaction = self.conn.get_transaction()
        assert transaction is not None, "records are written inside a write transaction"
        pending: _Pending | None = self.conn.info.get(_PENDING)
        # A record queued by an earlier transaction on this connection was rolled back.
        if pending is None or pending.transaction is not transaction:
            pending = self.conn.info[_PENDING] = _Pending(transaction)
        return pending


def flush(conn: Connection, generation_keys: Sequence[tuple[str, str]] = ()) -> int:
    """Number and write the records the transaction queued, and move ``generation_keys``
    (:func:`packyard.store.generations.changed_keys`): call it last before COMMIT.
    Returns how many events the transaction recorded."""
    pending: _Pending | None = conn.info.pop(_PENDING, None)
    if pending is not None and pending.transaction is not conn.get_transaction():
        pending = None  # queued by a rolled-back transaction
    ahead = pending.ahead if pending is not None else 0
    if pending is not None and not (pending.audit or pending.events or pending.staged):
        pending = None  # nothing (left) to write
    postgres = conn.dialect.name == "postgresql"
    if generation_keys and (pending is None or not postgres):
        generations.bump(conn, generation_keys)
        generation_keys = ()
    if pending is None:
        return ahead
    counts, audit_k, events_k = _numbering(pending)
    if postgres:
        _flush_pg(conn, pending, counts, audit_k, events_k, generation_keys)
    else:
        _flush_sqlite(conn, pending, counts, audit_k, events_k)
    return ahead + len(pending.events)


def _numbering(pending: _Pending) -> tuple[dict[str, int], list[int], list[int]]:
    """How many numbers each counter gives (the events staged so far included), and each
    queued audit entry's and event's place among its counter's (from 1, after the staged)."""
    counts = {f"events:{project}": n for project, n in pending.staged.items()}
    audit_k: list[int] = []
    for row in pending.audit:
        key = f"audit:{row.scope}"
        counts[key] = counts.get(key, 0) + 1
        audit_k.append(counts[key])
    events_k: list[int] = []
    for event in pending.events:
        key = f"events:{event.project_id}"
        counts[key] = counts.get(key, 0) + 1
        events_k.append(counts[key])
    return counts, audit_k, events_k


def _write_ahead(conn: Connection, pending: _Pending) -> None:
    """Hand on the events queued so far, before the end of the transaction (see the module's
    docstring): SQLite writes them (with the audit entries and deliveries queued so far),
    PostgreSQL stages them; the deliveries wait for the end there, to be numbered with them."""
    if conn.dialect.name == "postgresql":
        if pending.may_stage is None:
            pending.may_stage = bool(conn.execute(_MAY_CREATE_TEMPORARY).scalar())
        if not pending.may_stage:
            return  # they wait for the end, all of them (see _MAY_CREATE_TEMPORARY)
        if not pending.staged:
            conn.execute(_CREATE_STAGED)
        rows = []
        for e in pending.events:
            k = pending.staged[e.project_id] = pending.staged.get(e.project_id, 0) + 1
            rows.append({**_event_columns(e), "k": k})
        conn.execute(_STAGE_EVENTS, {"events": json_dumps(rows)})
    else:
        _flush_sqlite(conn, pending, *_numbering(pending))
        pending.audit.clear()
        pending.deliveries.clear()
    pending.ahead += len(pending.events)
    pending.events.clear()


def _event_columns(e: EventRow) -> dict[str, Any]:
    """An event's columns as PostgreSQL's JSON parameters carry them."""
    return {
        "id": e.id,
        "project_id": e.project_id,
        "source": e.source,
        "action": e.action,
        "body": orjson.Fragment(e.body),
        "at": _naive_utc(e.created_at),
    }


def _flush_pg(
    conn: Connection,
    pending: _Pending,
    counts: dict[str, int],
    audit_k: list[int],
    events_k: list[int],
    generation_keys: Sequence[tuple[str, str]],
) -> None:
    keys = [{"scope": scope, "bucket": bucket} for scope, bucket in generation_keys]
    counters = [{"scope": scope, "n": n} for scope, n in sorted(counts.items())]
    audit = [
        {
            **_audit_columns(r),
            "k": k,
            "n": counts[f"audit:{r.scope}"],
            "at": _naive_utc(r.at),
            "record": r.record,
        }
        for r, k in zip(pending.audit, audit_k, strict=True)
    ]
    recorded = [
        {**_event_columns(e), "k": k, "n": counts[f"events:{e.project_id}"]}
        for e, k in zip(pending.events, events_k, strict=True)
    ]
    deliveries = [
        {"id": d, "webhook_id": hook, "event_id": event, "at": _naive_utc(at)}
        for d, hook, event, at in pending.deliveries
    ]
    conn.execute(
        _FLUSH_PG_STAGED if pending.staged else _FLUSH_PG,
        {
            "generations": json_dumps(keys),
            "counters": json_dumps(counters),
            "audit": json_dumps(audit),
            "events": json_dumps(recorded),
            "deliveries": json_dumps(deliveries),
        },
    )


def _audit_columns(r: AuditRow) -> dict[str, Any]:
    """An audit entry's columns that both databases take as they are."""
    return {
        "id": r.id,
        "scope": r.scope,
        "status": r.status.value,
        "action": r.action,
        "description": r.description,
        "actor_type": r.actor.type.value,
        "actor_id": r.actor.id,
        "actor_name": r.actor.name,
        "bucket": r.bucket,
        "request_id": r.request_id,
        "source_address": r.source_address,
    }


def _flush_sqlite(
    conn: Connection,
    pending: _Pending,
    counts: dict[str, int],
    audit_k: list[int],
    events_k: list[int],
) -> None:
    first: dict[str, int] = {}
    for scope, n in sorted(counts.items()):
        last = conn.execute(_TAKE_NUMBERS, {"scope": scope, "count": n}).scalar_one()
        first[scope] = int(last) - n + 1
    if pending.audit:
        conn.execute(
            _INSERT_AUDIT,
            [
                {
                    **_audit_columns(r),
                    "seq": first[f"audit:{r.scope}"] + k - 1,
                    "at": r.at,
                    "record": dict(r.record),
                }
                for r, k in zip(pending.audit, audit_k, strict=True)
            ],
        )
    if not pending.events:
        return
    seqs: dict[str, int] = {}
    rows = []
    for e, k in zip(pending.events, events_k, strict=True):
        seqs[e.id] = first[f"events:{e.project_id}"] + k - 1
        rows.append(
            {
                "id": e.id,
                "project_id": e.project_id,
                "seq": seqs[e.id],
                "source": e.source,
                "action": e.action,
                "body": e.body,
                "created_at": e.created_at,
            }
        )
    conn.execute(_INSERT_EVENTS, rows)
    if pending.deliveries:
        conn.execute(
            _INSERT_DELIVERIES,
            [
                {
                    "id": d,
                    "webhook_id": hook,
                    "event_id": event,
                    "seq": seqs[event],
                    "state": QUEUED,
                    "attempts": 0,
                    "next_attempt_at": at,
                    "request": None,
                    "response": None,
                    "last_error": "",
                    "created_at": at,
                    "finished_at": None,
                }
                for d, hook, event, at in pending.deliveries
            ],
        )


def _naive_utc(value: datetime) -> str:
    """``value`` as PostgreSQL's ``timestamp`` columns hold it (UTC, no zone)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat()


def subscriptions_from_json(value: Any) -> tuple[Subscription, ...]:
    return tuple(
        Subscription(
            events=tuple(
                SubscriptionEvent(source=e.get("source", ""), action=e.get("action", ""))
                for e in s.get("events") or []
            ),
            resource_id=s.get("resource_id", ""),
        )
        for s in value or []
    )


def subscriptions_to_json(subscriptions: tuple[Subscription, ...]) -> list[dict[str, Any]]:
    return [
        {
            "resource_id": s.resource_id,
            "events": [{"source": e.source, "action": e.action} for e in s.events],
        }
        for s in subscriptions
    ]

"""The transactional outbox: audit entries, events and their webhook deliveries, written in
the transaction of the change they record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, bindparam, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from packyard.domain.events import Actor, AuditStatus, Subscription, SubscriptionEvent
from packyard.store.schema import (
    audit_events,
    events,
    journal_sequences,
    webhook_deliveries,
    webhooks,
)

QUEUED = "queued"


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
    id: str
    project_id: str
    seq: int
    source: str
    action: str
    body: Mapping[str, Any]
    created_at: datetime


def _take_numbers(insert_: Any) -> Any:
    """The counter upsert of :meth:`JournalRepo.next_seqs`, built once per dialect."""
    count = bindparam("count", type_=BigInteger)
    return (
        insert_(journal_sequences)
        .values(scope=bindparam("scope"), last=count)
        .on_conflict_do_update(
            index_elements=[journal_sequences.c.scope],
            set_={"last": journal_sequences.c.last + count},
        )
        .returning(journal_sequences.c.last)
    )


# SQLite's and PostgreSQL's upserts differ only in their dialect's insert; by "is PostgreSQL".
_TAKE_NUMBERS = {False: _take_numbers(sqlite_insert), True: _take_numbers(pg_insert)}


class JournalRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def next_seq(self, scope: str) -> int:
        """The next number of ``scope``'s records. The counter row stays locked until the
        transaction ends, so numbers are taken (and committed) in order."""
        return self.next_seqs(scope, 1)

    def next_seqs(self, scope: str, count: int) -> int:
        """Take ``count`` consecutive numbers of ``scope``; returns the first. One statement
        (an upsert), the first use of a scope included, so that a change always records in
        the same number of statements."""
        stmt = _TAKE_NUMBERS[self.conn.dialect.name == "postgresql"]
        taken = self.conn.execute(stmt, {"scope": scope, "count": count}).scalar_one()
        return int(taken) - count + 1

    def add_events(self, rows: Sequence[EventRow]) -> None:
        """Insert ``rows`` in one statement (an ``executemany``)."""
        if not rows:
            return
        self.conn.execute(
            insert(events),
            [
                {
                    "id": r.id,
                    "project_id": r.project_id,
                    "seq": r.seq,
                    "source": r.source,
                    "action": r.action,
                    "body": dict(r.body),
                    "created_at": r.created_at,
                }
                for r in rows
            ],
        )

    def add_delivery_rows(self, items: Sequence[tuple[EventRow, str, str]], now: datetime) -> None:
        """Queue one delivery per (event, webhook id, delivery id), in one statement."""
        if not items:
            return
        self.conn.execute(
            insert(webhook_deliveries),
            [_delivery(event, hook, delivery, now) for event, hook, delivery in items],
        )

    def add_audit(self, row: AuditRow) -> None:
        self.conn.execute(
            insert(audit_events).values(
                id=row.id,
                scope=row.scope,
                seq=row.seq,
                at=row.at,
                status=row.status.value,
                action=row.action,
                description=row.description,
                actor_type=row.actor.type.value,
                actor_id=row.actor.id,
                actor_name=row.actor.name,
                bucket=row.bucket,
                record=dict(row.record),
                request_id=row.request_id,
                source_address=row.source_address,
            )
        )

    def enabled_webhooks(self, project_id: str) -> list[tuple[str, tuple[Subscription, ...]]]:
        """(id, subscriptions) of the project's enabled webhooks."""
        rows = self.conn.execute(
            select(webhooks.c.id, webhooks.c.subscriptions).where(
                webhooks.c.project_id == project_id, webhooks.c.enabled.is_(True)
            )
        )
        return [(r.id, subscriptions_from_json(r.subscriptions)) for r in rows]


def _delivery(event: EventRow, webhook_id: str, delivery_id: str, now: datetime) -> dict[str, Any]:
    return {
        "id": delivery_id,
        "webhook_id": webhook_id,
        "event_id": event.id,
        "seq": event.seq,
        "state": QUEUED,
        "attempts": 0,
        "next_attempt_at": now,
        "request": None,
        "response": None,
        "last_error": "",
        "created_at": now,
        "finished_at": None,
    }


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

"""SQL of webhooks and their delivery queue (:mod:`packyard.services.webhooks`,
:mod:`packyard.services.webhook_deliveries`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, func, insert, select, update

from packyard.domain.paging import Page, PageRequest, SortKey
from packyard.domain.webhooks import (
    DELIVERED,
    FINISHED,
    PENDING,
    QUEUED,
    RUNNING,
    Delivery,
    Webhook,
)
from packyard.store.journal import subscriptions_from_json, subscriptions_to_json
from packyard.store.pagination import SortColumn, paginate
from packyard.store.schema import events, webhook_deliveries, webhooks


@dataclass(frozen=True, slots=True)
class WebhookRow:
    """A webhook as stored: the domain model and its sealed HMAC key."""

    webhook: Webhook
    hmac_key_sealed: bytes | None


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery a worker holds (``claim``), with what it needs to send it."""

    delivery: Delivery
    claim: str
    webhook: WebhookRow
    body: dict[str, Any]


def _webhook_row(row: Any) -> WebhookRow:
    sealed = row.hmac_key_sealed
    return WebhookRow(
        Webhook(
            id=row.id,
            project_id=row.project_id,
            name=row.name,
            description=row.description,
            url=row.url,
            has_hmac_key=sealed is not None,
            enabled=bool(row.enabled),
            subscriptions=subscriptions_from_json(row.subscriptions),
            created_at=row.created_at,
            updated_at=row.updated_at,
        ),
        bytes(sealed) if sealed is not None else None,
    )


_D = webhook_deliveries


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        webhook_id=row.webhook_id,
        event_id=row.event_id,
        seq=int(row.seq),
        state=row.state,
        attempts=int(row.attempts),
        next_attempt_at=row.next_attempt_at,
        request=row.request,
        response=row.response,
        last_error=row.last_error,
        created_at=row.created_at,
        finished_at=row.finished_at,
        payload=row.body,
    )


_DELIVERY_COLUMNS = (*_D.c, events.c.body)
WEBHOOK_SORTS = {
    "name": SortColumn(webhooks.c.name),
    "created_at": SortColumn(webhooks.c.created_at, is_time=True),
    "updated_at": SortColumn(webhooks.c.updated_at, is_time=True),
}
DELIVERY_SORTS = {
    "seq": SortColumn(_D.c.seq),
    "created_at": SortColumn(_D.c.created_at, is_time=True),
}


class WebhookRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- webhooks ---------------------------------------------------------------------

    def get(self, project_id: str, name: str) -> WebhookRow | None:
        row = self.conn.execute(
            select(webhooks).where(webhooks.c.project_id == project_id, webhooks.c.name == name)
        ).first()
        return _webhook_row(row) if row is not None else None

    def by_id(self, webhook_id: str) -> WebhookRow | None:
        row = self.conn.execute(select(webhooks).where(webhooks.c.id == webhook_id)).first()
        return _webhook_row(row) if row is not None else None

    def list(self, project_id: str, page: PageRequest) -> Page[Webhook]:
        return paginate(
            self.conn,
            select(webhooks).where(webhooks.c.project_id == project_id),
            page,
            sort_columns=WEBHOOK_SORTS,
            default_order=(SortKey("name"),),
            id_column=webhooks.c.id,
            convert=lambda r: _webhook_row(r).webhook,
            scope=f"webhooks:{project_id}",
        )

    def insert(self, hook: Webhook, hmac_key_sealed: bytes | None) -> None:
        self.conn.execute(
            insert(webhooks).values(
                id=hook.id,
                project_id=hook.project_id,
                name=hook.name,
                description=hook.description,
                url=hook.url,
                hmac_key_sealed=hmac_key_sealed,
                enabled=hook.enabled,
                subscriptions=subscriptions_to_json(hook.subscriptions),
                created_at=hook.created_at,
                updated_at=hook.updated_at,
            )
        )

    def replace(
        self, hook: Webhook, hmac_key_sealed: bytes | None, *, expected_updated_at: datetime
    ) -> bool:
        """Store ``hook`` (same id) if nobody changed it since ``expected_updated_at``."""
        result = self.conn.execute(
            update(webhooks)
            .where(webhooks.c.id == hook.id, webhooks.c.updated_at == expected_updated_at)
            .values(
                name=hook.name,
                description=hook.description,
                url=hook.url,
                hmac_key_sealed=hmac_key_sealed,
                enabled=hook.enabled,
                subscriptions=subscriptions_to_json(hook.subscriptions),
                updated_at=hook.updated_at,
            )
        )
        return bool(result.rowcount)

    def delete(self, webhook_id: str) -> bool:
        """Delete the webhook and its deliveries."""
        self.conn.execute(delete(_D).where(_D.c.webhook_id == webhook_id))
        return bool(self.conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id)).rowcount)

    # --- deliveries -------------------------------------------------------------------

    def deliveries(self, webhook_id: str, page: PageRequest) -> Page[Delivery]:
        """Newest first by default."""
        return paginate(
            self.conn,
            select(*_DELIVERY_COLUMNS)
            .join(events, events.c.id == _D.c.event_id)
            .where(_D.c.webhook_id == webhook_id),
            page,
            sort_columns=DELIVERY_SORTS,
            default_order=(SortKey("seq", descending=True),),
            id_column=_D.c.id,
            convert=_delivery,
            scope=f"deliveries:{webhook_id}",
        )

    def delivery(self, webhook_id: str, delivery_id: str) -> Delivery | None:
        row = self.conn.execute(
            select(*_DELIVERY_COLUMNS)
            .join(events, events.c.id == _D.c.event_id)
            .where(_D.c.webhook_id == webhook_id, _D.c.id == delivery_id)
        ).first()
        return _delivery(row) if row is not None else None

    def newest(self, webhook_ids: Sequence[str], *, delivered: bool = False) -> dict[str, Delivery]:
        """Each webhook's newest delivery (with ``delivered``: newest successful one), in one
        statement whatever the number of webhooks."""
        if not webhook_ids:
            return {}
        order = (_D.c.finished_at.desc(), _D.c.seq.desc()) if delivered else (_D.c.seq.desc(),)
        rank = func.row_number().over(partition_by=_D.c.webhook_id, order_by=order)
        ranked = (
            select(*_DELIVERY_COLUMNS, rank.label("rank"))
            .join(events, events.c.id == _D.c.event_id)
            .where(_D.c.webhook_id.in_(list(webhook_ids)))
        )
        if delivered:
            ranked = ranked.where(_D.c.state == DELIVERED)
        inner = ranked.subquery()
        rows = self.conn.execute(select(inner).where(inner.c.rank == 1))
        return {r.webhook_id: _delivery(r) for r in rows}

    def last_delivered(self, webhook_id: str) -> Delivery | None:
        row = self.conn.execute(
            select(*_DELIVERY_COLUMNS)
            .join(events, events.c.id == _D.c.event_id)
            .where(_D.c.webhook_id == webhook_id, _D.c.state == DELIVERED)
            .order_by(_D.c.finished_at.desc(), _D.c.seq.desc())
            .limit(1)
        ).first()
        return _delivery(row) if row is not None else None

    def requeue(self, webhook_id: str, delivery_id: str, now: datetime) -> bool:
        """Send a finished delivery again (same event, so the same ``event_id``), from its
        first attempt; whether it was finished."""
        result = self.conn.execute(
            update(_D)
            .where(_D.c.webhook_id == webhook_id, _D.c.id == delivery_id, _D.c.state.in_(FINISHED))
            .values(
                state=QUEUED,
                attempts=0,
                next_attempt_at=now,
                claim=None,
                last_error="",
                finished_at=None,
            )
        )
        return bool(result.rowcount)

    def _due(self, now: datetime) -> Any:
        """Deliveries that may be sent at ``now``: each enabled webhook's first unfinished
        one (in event order), once it is due (a queued one's time has come, or a running
        one's lease lapsed)."""
        earlier = _D.alias("earlier")
        return and_(
            _D.c.state.in_(PENDING),
            _D.c.next_attempt_at <= now,
            exists()
            .where(webhooks.c.id == _D.c.webhook_id, webhooks.c.enabled.is_(True))
            .correlate(_D),
            ~exists()
            .where(
                earlier.c.webhook_id == _D.c.webhook_id,
                earlier.c.state.in_(PENDING),
                earlier.c.seq < _D.c.seq,
            )
            .correlate(_D),
        )

    def has_due(self, now: datetime) -> bool:
        return self.conn.execute(select(_D.c.id).where(self._due(now)).limit(1)).first() is not None

    def claim(self, now: datetime, lease_until: datetime, claim: str) -> Claimed | None:
        """Take the delivery due first and hold it until ``lease_until``. PostgreSQL:
        ``FOR UPDATE SKIP LOCKED``, so servers never take the same one (and a webhook's next
        delivery waits: its predecessor is pending until finished); SQLite: write
        transactions are serial."""
        row = self.conn.execute(
            select(_D.c.id)
            .where(self._due(now))
            .order_by(_D.c.next_attempt_at, _D.c.seq, _D.c.id)
            .limit(1)
            .with_for_update(skip_locked=True, of=_D)
        ).first()
        if row is None:
            return None
        self.conn.execute(
            update(_D)
            .where(_D.c.id == row.id)
            .values(
                state=RUNNING,
                attempts=_D.c.attempts + 1,
                next_attempt_at=lease_until,
                claim=claim,
            )
        )
        found = self.conn.execute(
            select(*_DELIVERY_COLUMNS)
            .join(events, events.c.id == _D.c.event_id)
            .where(_D.c.id == row.id)
        ).one()
        delivery = _delivery(found)
        hook = self.by_id(delivery.webhook_id)
        assert hook is not None  # the delivery's foreign key
        return Claimed(delivery, claim, hook, dict(found.body))

    def change(self, delivery_id: str, claim: str, **values: Any) -> bool:
        """Update a delivery if ``claim`` still holds it (no other server took it over after
        the claim's lease lapsed); whether it did."""
        result = self.conn.execute(
            update(_D)
            .where(_D.c.id == delivery_id, _D.c.claim == claim, _D.c.state == RUNNING)
            .values(**values)
        )
        return bool(result.rowcount)

    def backlog(self) -> tuple[int, datetime | None]:
        """(deliveries not finished, when the oldest of them was queued)."""
        row = self.conn.execute(
            select(func.count(), func.min(_D.c.created_at)).where(_D.c.state.in_(PENDING))
        ).one()
        return int(row[0]), row[1]

    def purge(self, cutoff: datetime, batch: int) -> int:
        """Delete up to ``batch`` finished deliveries finished before ``cutoff``, then the
        events older than it that no delivery waits for; how many deliveries went."""
        old = (
            select(webhook_deliveries.c.id)
            .where(
                webhook_deliveries.c.state.in_(FINISHED),
                webhook_deliveries.c.finished_at < cutoff,
            )
            .limit(batch)
        )
        gone = self.conn.execute(
            delete(webhook_deliveries).where(webhook_deliveries.c.id.in_(old.scalar_subquery()))
        ).rowcount
        waiting = exists().where(webhook_deliveries.c.event_id == events.c.id)
        stale = select(events.c.id).where(events.c.created_at < cutoff, ~waiting).limit(batch)
        self.conn.execute(delete(events).where(events.c.id.in_(stale.scalar_subquery())))
        return int(gone)


__all__ = ["Claimed", "WebhookRepo", "WebhookRow"]

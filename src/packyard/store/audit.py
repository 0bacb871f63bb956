"""Reading the audit log, purging it, and the bookkeeping of its streaming.

Entries are written by :mod:`packyard.services.journal`; here they are listed (newest first,
a page at a time), read in ``seq`` order for streaming, and deleted past the retention. The
streaming state is two small tables: how far each sink has streamed each scope
(``audit_cursors``) and which server streams (the ``leases`` row ``audit-stream``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from packyard.domain.audit import AuditQuery
from packyard.domain.events import Actor, ActorType, AuditStatus
from packyard.domain.paging import Page, PageRequest, SortKey
from packyard.store.journal import AuditRow
from packyard.store.pagination import SortColumn, paginate
from packyard.store.schema import audit_cursors, audit_events, journal_sequences, leases

_AUDIT_COUNTER = "audit:"  # journal_sequences.scope of a scope's audit counter


def _row(r: Any) -> AuditRow:
    return AuditRow(
        id=r.id,
        scope=r.scope,
        seq=int(r.seq),
        at=r.at,
        status=AuditStatus(r.status),
        action=r.action,
        description=r.description,
        actor=Actor(ActorType(r.actor_type), r.actor_id, r.actor_name),
        bucket=r.bucket,
        record=r.record,
        request_id=r.request_id,
        source_address=r.source_address,
    )


def _conditions(query: AuditQuery) -> list[ColumnElement[bool]]:
    c = audit_events.c
    found: list[ColumnElement[bool]] = []
    if query.since is not None:
        found.append(c.at >= query.since)
    if query.until is not None:
        found.append(c.at < query.until)
    if query.actor:
        found.append(or_(c.actor_id == query.actor, c.actor_name == query.actor))
    if query.bucket:
        found.append(c.bucket == query.bucket)
    if query.action is not None:
        found.append(c.action == query.action.value)
    if query.description:
        found.append(func.lower(c.description) == query.description.lower())
    if query.status is not None:
        found.append(c.status == query.status.value)
    return found


class AuditRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- reading ---------------------------------------------------------------------

    def page(self, scope: str | None, query: AuditQuery, page: PageRequest) -> Page[AuditRow]:
        """Entries matching ``query``, newest first: of one scope by ``seq`` (commit order),
        or of every scope (``scope=None``, the operator) by time."""
        q = select(audit_events).where(*_conditions(query))
        if scope is not None:
            q = q.where(audit_events.c.scope == scope)
            sort = {"seq": SortColumn(audit_events.c.seq)}
            order = (SortKey("seq", descending=True),)
        else:
            sort = {"at": SortColumn(audit_events.c.at, is_time=True)}
            order = (SortKey("at", descending=True),)
        return paginate(
            self.conn,
            q,
            PageRequest(size=page.size, next_token=page.next_token),
            sort_columns=sort,
            default_order=order,
            id_column=audit_events.c.id,
            convert=_row,
            scope=f"audit|{'*' if scope is None else scope}|{query.key()}",
        )

    def after(self, scope: str, seq: int, limit: int) -> list[AuditRow]:
        """The first ``limit`` entries of ``scope`` after ``seq``, in ``seq`` order."""
        rows = self.conn.execute(
            select(audit_events)
            .where(audit_events.c.scope == scope, audit_events.c.seq > seq)
            .order_by(audit_events.c.seq)
            .limit(limit)
        )
        return [_row(r) for r in rows]

    def heads(self) -> dict[str, int]:
        """The last ``seq`` of every scope that has entries (committed numbers only: the
        counter moves in the transaction of the entry)."""
        rows = self.conn.execute(
            select(journal_sequences.c.scope, journal_sequences.c.last).where(
                journal_sequences.c.scope.startswith(_AUDIT_COUNTER)
            )
        )
        return {r.scope[len(_AUDIT_COUNTER) :]: int(r.last) for r in rows}

    # --- retention ---------------------------------------------------------------------

    def purge(self, cutoff: datetime, limit: int, held_for: Sequence[str] = ()) -> int:
        """Delete up to ``limit`` entries older than ``cutoff``; how many. An entry that one
        of the sinks ``held_for`` has not streamed yet is kept."""
        q = select(audit_events.c.id).where(audit_events.c.at < cutoff)
        if held_for:
            streamed = (
                select(func.min(audit_cursors.c.last_seq))
                .where(
                    audit_cursors.c.scope == audit_events.c.scope,
                    audit_cursors.c.sink.in_(list(held_for)),
                )
                .scalar_subquery()
            )
            tracked = (
                select(func.count())
                .select_from(audit_cursors)
                .where(
                    audit_cursors.c.scope == audit_events.c.scope,
                    audit_cursors.c.sink.in_(list(held_for)),
                )
                .scalar_subquery()
            )
            q = q.where(tracked == len(set(held_for)), audit_events.c.seq <= streamed)
        ids = list(self.conn.execute(q.order_by(audit_events.c.at).limit(limit)).scalars())
        if not ids:
            return 0
        self.conn.execute(delete(audit_events).where(audit_events.c.id.in_(ids)))
        return len(ids)

    # --- streaming bookkeeping --------------------------------------------------------

    def cursors(self, sink: str) -> dict[str, int]:
        rows = self.conn.execute(
            select(audit_cursors.c.scope, audit_cursors.c.last_seq).where(
                audit_cursors.c.sink == sink
            )
        )
        return {r.scope: int(r.last_seq) for r in rows}

    def advance(self, sink: str, scope: str, seq: int) -> None:
        """Record that ``sink`` holds ``scope``'s entries up to ``seq``. A cursor only moves
        forward: a late writer (a server whose lease lapsed) cannot move it back."""
        moved = self.conn.execute(
            update(audit_cursors)
            .where(
                audit_cursors.c.sink == sink,
                audit_cursors.c.scope == scope,
                audit_cursors.c.last_seq < seq,
            )
            .values(last_seq=seq)
        ).rowcount
        if moved:
            return
        try:
            with self.conn.begin_nested():
                self.conn.execute(
                    insert(audit_cursors).values(sink=sink, scope=scope, last_seq=seq)
                )
        except IntegrityError:  # it exists and is at or past seq
            pass

    def acquire_lease(self, name: str, owner: str, now: datetime, until: datetime) -> bool:
        """Take or renew the lease ``name`` for ``owner`` until ``until``: it is free when
        nobody holds it or its holder let it lapse. Whether ``owner`` holds it now."""
        taken = self.conn.execute(
            update(leases)
            .where(leases.c.name == name, or_(leases.c.owner == owner, leases.c.expires_at <= now))
            .values(owner=owner, expires_at=until)
        ).rowcount
        if taken:
            return True
        try:
            with self.conn.begin_nested():
                self.conn.execute(insert(leases).values(name=name, owner=owner, expires_at=until))
        except IntegrityError:  # held by another server
            return False
        return True

    def release_lease(self, name: str, owner: str) -> None:
        self.conn.execute(
            delete(leases).where(and_(leases.c.name == name, leases.c.owner == owner))
        )

    def lease_holder(self, name: str, now: datetime) -> str | None:
        row = self.conn.execute(
            select(leases.c.owner).where(leases.c.name == name, leases.c.expires_at > now)
        ).first()
        return None if row is None else str(row.owner)

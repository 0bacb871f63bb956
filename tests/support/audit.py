"""Audit entries for tests, written as the services write them (services.journal.record)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update

from packyard.domain.enums import Role
from packyard.domain.events import AuditAction, Change
from packyard.domain.models import Caller, Operator
from packyard.errors import invalid
from packyard.services.journal import record, record_failure
from packyard.store.engine import Store
from packyard.store.schema import audit_events


def caller(
    project_id: str,
    name: str = "ci-bot",
    *,
    principal_id: str | None = None,
    organization_id: str = "org-1",
    role: Role = Role.ADMIN,
) -> Caller:
    return Caller(
        principal_id=principal_id or f"sp-{name}",
        name=name,
        organization_id=organization_id,
        project_id=project_id,
        role=role,
    )


def add(
    store: Store,
    project_id: str | None,
    who: Caller | Operator,
    description: str = "Created bucket",
    *,
    action: AuditAction = AuditAction.CREATE,
    bucket: str = "",
) -> None:
    """One OK entry, in a write transaction of its own as a change would make it."""
    blocks = {"bucket": {"id": f"id-{bucket}", "name": bucket}} if bucket else {}
    with store.write(project_id) as conn:
        record(conn, project_id, who, Change(action, description, blocks, bucket=bucket))


def add_failure(
    store: Store,
    project_id: str | None,
    who: Caller | Operator,
    description: str = "Created bucket",
    *,
    bucket: str = "",
) -> None:
    blocks = {"bucket": {"id": f"id-{bucket}", "name": bucket}} if bucket else {}
    change = Change(AuditAction.CREATE, description, blocks, bucket=bucket)
    record_failure(store, project_id, who, change, invalid("the name is taken"))


def set_time(store: Store, scope: str, seq: int, at: datetime) -> None:
    """Move an entry in time (the journal stamps entries with the current time)."""
    with store.write(affects_reads=False) as conn:
        conn.execute(
            update(audit_events)
            .where(audit_events.c.scope == scope, audit_events.c.seq == seq)
            .values(at=at)
        )

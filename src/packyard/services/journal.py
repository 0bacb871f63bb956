"""Recording changes: the audit log and the webhook events, in the change's own transaction.

A service that changes something calls :func:`record` inside its write transaction, after
the change. The audit entry, each event and one delivery per subscribed, enabled webhook are
inserted there: they commit with the change or not at all, so an event exists if and only if
its change does, and a change whose record cannot be written does not happen (the audit
fails closed). Deliveries are then sent by :mod:`packyard.services.webhook_deliveries`,
audit entries streamed by :mod:`packyard.services.audit`.

A refused change (bad input, no permission) is recorded by :func:`record_failure`, in a
transaction of its own since the change's was rolled back.

Records are numbered per project (``seq``) in commit order: see
:mod:`packyard.store.journal`.
"""

from __future__ import annotations

import secrets
import string
from datetime import datetime
from itertools import chain
from typing import Any

from sqlalchemy import Connection, bindparam, select

from packyard import requestcontext
from packyard.domain.events import (
    EVENT_VERSION,
    VERSION_SOURCE,
    Actor,
    AuditStatus,
    Change,
    VersionEvent,
    subscribed,
)
from packyard.domain.models import Caller, Operator
from packyard.domain.rules import utcnow
from packyard.errors import ApiError
from packyard.ids import new_id
from packyard.store.engine import Store
from packyard.store.journal import AuditRow, EventRow, JournalRepo
from packyard.store.schema import projects
from packyard.store.types import json_dumps

Who = Caller | Operator | Actor
_EVENT_ID_ALPHABET = string.ascii_letters + string.digits
_ORGANIZATION = select(projects.c.organization_id).where(projects.c.id == bindparam("project_id"))


def record(conn: Connection, project_id: str | None, who: Who, change: Change) -> None:
    """Audit ``change`` (status OK) and record its events, inside the caller's transaction.

    The rows are queued and written, numbered, when the transaction commits
    (:func:`packyard.store.journal.flush`); a change with many events (a revocation's
    descendants) has them written as they come (:meth:`JournalRepo.add_event`)."""
    repo = JournalRepo(conn)
    actor = Actor.of(who)
    now = utcnow()
    events = iter(change.events)
    first = next(events, None)
    if first is None:
        organization_id = _organization(conn, who, project_id)
        _audit(repo, organization_id, project_id, actor, change, now, AuditStatus.OK)
        return
    assert project_id is not None, "version events belong to a project"
    found = repo.project_hooks(project_id)
    organization_id = who.organization_id if isinstance(who, Caller) else found.organization_id
    _audit(repo, organization_id, project_id, actor, change, now, AuditStatus.OK)
    registry_id = found.registry_id
    for event in chain([first], events):
        event_id = new_event_id("packer")
        resources = [registry_id, str(event.payload.get("bucket", {}).get("id", ""))]
        repo.add_event(
            EventRow(
                id=event_id,
                project_id=project_id,
                source=VERSION_SOURCE,
                action=event.action.value,
                body=json_dumps(
                    envelope(event_id, organization_id, project_id, registry_id, event, actor)
                ),
                created_at=now,
            ),
            [
                (hook_id, new_id())
                for hook_id, subs in found.webhooks
                if subscribed(subs, VERSION_SOURCE, event.action.value, resources)
            ],
        )


def record_failure(
    store: Store, project_id: str | None, who: Who, change: Change, error: ApiError
) -> None:
    """Audit a refused change (status FAILED, with its error) in a transaction of its own."""
    actor = Actor.of(who)
    now = utcnow()
    with store.write(affects_reads=False) as conn:
        organization_id = _organization(conn, who, project_id)
        error_text = f"code = {error.code.name} desc = {error.message}"
        _audit(
            JournalRepo(conn),
            organization_id,
            project_id,
            actor,
            change,
            now,
            AuditStatus.FAILED,
            error_text,
        )


def _audit(
    repo: JournalRepo,
    organization_id: str,
    project_id: str | None,
    actor: Actor,
    change: Change,
    now: datetime,
    status: AuditStatus,
    error: str | None = None,
) -> None:
    scope = project_id or ""
    context = requestcontext.current()
    entry = audit_record(organization_id, project_id, actor, change, status=status, at=now)
    if error is not None:
        entry["error"] = error
    repo.add_audit(
        AuditRow(
            id=new_id(),
            scope=scope,
            seq=0,  # taken when the transaction commits
            at=now,
            status=status,
            action=change.action.value,
            description=change.description,
            actor=actor,
            bucket=change.bucket,
            record=entry,
            request_id=context.request_id,
            source_address=context.source_address,
        )
    )


def audit_record(
    organization_id: str,
    project_id: str | None,
    actor: Actor,
    change: Change,
    *,
    status: AuditStatus,
    at: datetime,
) -> dict[str, Any]:
    """The flat record HCP's audit events are: shared fields, then the change's blocks."""
    return {
        "status": status.value,
        "action": change.action.value,
        "description": change.description,
        "organization_id": organization_id,
        "project_id": project_id or "",
        "timestamp": at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "actor": actor_block(actor),
        **change.record,
    }


def envelope(
    event_id: str,
    organization_id: str,
    project_id: str,
    registry_id: str,
    event: VersionEvent,
    actor: Actor,
) -> dict[str, Any]:
    """The body every delivery of ``event`` sends, as HCP Packer's webhooks carry it."""
    payload: dict[str, Any] = {
        "organization_id": organization_id,
        "project_id": project_id,
        "registry": {"id": registry_id},
        **dict(event.payload),
        "actor": actor_block(actor),
    }
    return {
        "resource_id": registry_id,
        "resource_name": f"packer/project/{project_id}/registry/{registry_id}",
        "event_id": event_id,
        "event_action": event.action.value,
        "event_description": event.action.description,
        "event_source": VERSION_SOURCE,
        "event_version": EVENT_VERSION,
        "event_payload": payload,
    }


def _organization(conn: Connection, who: Who, project_id: str | None) -> str:
    if isinstance(who, Caller):
        return who.organization_id
    if project_id is None:
        return ""
    organization_id: str = conn.execute(_ORGANIZATION, {"project_id": project_id}).scalar_one()
    return organization_id


def actor_block(actor: Actor) -> dict[str, Any]:
    block: dict[str, Any] = {"principal_id": actor.id, "type": actor.type.value}
    if actor.type.name == "USER":
        block["user"] = {"id": actor.id, "email": actor.name, "name": actor.name}
    elif actor.type.name == "SERVICE":
        block["service"] = {"id": actor.id, "name": actor.name, "user_managed": True}
    elif actor.type.name == "INTERNAL_OPERATOR":
        block["internal_operator"] = {"id": actor.id}
    return block


def new_event_id(service: str) -> str:
    """``<service>.event:<16 random letters and digits>``, as HCP's event ids look."""
    token = "".join(secrets.choice(_EVENT_ID_ALPHABET) for _ in range(16))
    return f"{service}.event:{token}"

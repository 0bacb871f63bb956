"""What the registry tells the outside world about its changes: webhook events and audit
entries, independent of storage and wire.

Every change is audited (who, what, outcome); eight changes of a version are also
*events*, delivered to the webhooks subscribed to them, as HCP Packer sends them. Both are
recorded by :mod:`packyard.services.journal` in the transaction of the change itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from packyard.domain.models import Caller, Operator

VERSION_SOURCE = "hashicorp.packer.version"
VERIFICATION_SOURCE = "hashicorp.webhook.verification"
EVENT_VERSION = "1"
WILDCARD = "*"
SOURCE_PATTERN = re.compile(r"^hashicorp(\.[a-z][a-z-]*){2}$")


class EventAction(StrEnum):
    """HCP Packer's version events, with the ``event_description`` each is sent with."""

    CREATE = "create"
    COMPLETE = "complete"
    REVOKE = "revoke"
    RESTORE = "restore"
    DELETE = "delete"
    SCHEDULE_REVOCATION = "schedule-revocation"
    CANCEL_REVOCATION = "cancel-revocation"
    ASSIGN = "assign"

    @property
    def description(self) -> str:
        return _EVENT_DESCRIPTIONS[self]


_EVENT_DESCRIPTIONS = {
    EventAction.CREATE: "Created version",
    EventAction.COMPLETE: "Completed version",
    EventAction.REVOKE: "Revoked version",
    EventAction.RESTORE: "Restored version",
    EventAction.DELETE: "Deleted version",
    EventAction.SCHEDULE_REVOCATION: "Scheduled version revocation",
    EventAction.CANCEL_REVOCATION: "Cancelled version revocation",
    EventAction.ASSIGN: "Assigned version to channel",
}


class AuditAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class AuditStatus(StrEnum):
    OK = "OK"
    FAILED = "FAILED"


class ActorType(StrEnum):
    """As HCP names them in webhook and audit payloads."""

    USER = "TYPE_USER"
    SERVICE = "TYPE_SERVICE"
    INTERNAL_OPERATOR = "TYPE_INTERNAL_OPERATOR"
    ANONYMOUS = "TYPE_ANONYMOUS"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: a service principal, a person in the console, the operator's
    commands, Packyard itself (the revocation scheduler), or nobody known (a refused
    request without valid credentials)."""

    type: ActorType
    id: str
    name: str

    @staticmethod
    def of(who: Caller | Operator | Actor) -> Actor:
        if isinstance(who, Actor):
            return who
        if isinstance(who, Operator):
            return Actor(ActorType.INTERNAL_OPERATOR, "operator", who.name)
        kind = ActorType.USER if who.person else ActorType.SERVICE
        return Actor(kind, who.principal_id, who.name)


SYSTEM = Actor(ActorType.INTERNAL_OPERATOR, "packyard", "HCP Packer")
"""The registry itself (scheduled revocations taking effect): HCP's name for it."""
ANONYMOUS = Actor(ActorType.ANONYMOUS, "", "")


@dataclass(frozen=True, slots=True)
class VersionEvent:
    """A webhook event: its action and ``event_payload`` as recorded."""

    action: EventAction
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Change:
    """One audited change: HCP's audit ``action`` and ``description``, the object blocks of
    the record (``bucket``, ``version``, ``builds``, ``channel``…, as HCP's audit events
    carry them, plus Packyard's ``before``/``after`` where a change has them), the bucket it
    concerns (for queries), and the webhook events it causes: read once, as they are
    recorded, so that they may be produced as they are read (a revocation's, one per
    descendant)."""

    action: AuditAction
    description: str
    record: Mapping[str, Any] = field(default_factory=dict)
    bucket: str = ""
    events: Iterable[VersionEvent] = ()


@dataclass(frozen=True, slots=True)
class SubscriptionEvent:
    source: str
    action: str


@dataclass(frozen=True, slots=True)
class Subscription:
    """Events of ``source``/``action`` (either may be ``*``) about ``resource_id`` (empty:
    any resource of the project)."""

    events: tuple[SubscriptionEvent, ...]
    resource_id: str = ""


def subscribed(
    subscriptions: Sequence[Subscription], source: str, action: str, resource_ids: Sequence[str]
) -> bool:
    """Whether a webhook with ``subscriptions`` receives this event (``resource_ids``: the
    resources it concerns, e.g. the registry and the bucket)."""
    for sub in subscriptions:
        if sub.resource_id and sub.resource_id not in resource_ids:
            continue
        for e in sub.events:
            if e.source in (source, WILDCARD) and e.action in (action, WILDCARD):
                return True
    return False

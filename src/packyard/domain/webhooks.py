"""Webhooks: where a project's version events are sent, and each event's delivery to them.

HCP's webhook service names a webhook ``webhook/project/<project>/geo/us/webhook/<name>``;
its HMAC key signs every request (``X-HCP-Webhook-Signature``) and is never shown again
once set, so the domain model only says whether there is one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from packyard.domain.events import SOURCE_PATTERN, WILDCARD, Subscription, SubscriptionEvent
from packyard.errors import invalid

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_NAME = 128
MAX_URL = 2048
MAX_DESCRIPTION = 2000
MAX_HMAC_KEY = 1024
MAX_SUBSCRIPTIONS = 100
MAX_EVENTS = 100
MAX_ACTION = 64
MAX_RESOURCE_ID = 256
GEO = "us"

# Delivery states: queued (waiting for its turn or its next attempt), running (an attempt
# is under way, or its server died and the lease has not lapsed yet), delivered, dead
# (refused, or failed every attempt).
QUEUED = "queued"
RUNNING = "running"
DELIVERED = "delivered"
DEAD = "dead"
PENDING = (QUEUED, RUNNING)
FINISHED = (DELIVERED, DEAD)


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    project_id: str
    name: str
    description: str
    url: str
    has_hmac_key: bool
    enabled: bool
    subscriptions: tuple[Subscription, ...]
    created_at: datetime
    updated_at: datetime

    @property
    def resource_name(self) -> str:
        return resource_name(self.project_id, self.name)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event's delivery to one webhook, with what its last attempt sent and received."""

    id: str
    webhook_id: str
    event_id: str
    seq: int
    state: str
    attempts: int
    next_attempt_at: datetime
    request: dict[str, Any] | None
    response: dict[str, Any] | None
    last_error: str
    created_at: datetime
    finished_at: datetime | None
    payload: dict[str, Any]  # the event's envelope, as sent


def resource_name(project_id: str, name: str) -> str:
    return f"webhook/project/{project_id}/geo/{GEO}/webhook/{name}"


def check_name(value: str | None, field: str = "name") -> str:
    if not value:
        raise invalid("A webhook name is required.", field=field)
    if len(value) > MAX_NAME or not NAME_PATTERN.fullmatch(value):
        raise invalid(
            f"Invalid webhook name {value[:64]!r}: up to {MAX_NAME} letters, digits, '_', '.' "
            "and '-', starting with a letter or digit.",
            field=field,
        )
    return value


def check_url(value: str | None, field: str = "config.url") -> str:
    """An absolute http(s) URL with a host (whether it may be called is decided when it is)."""
    if not value:
        raise invalid("config.url is required.", field=field)
    problem = ""
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError:
        problem = "it is not a valid URL"
    else:
        if parts.scheme not in ("http", "https"):
            problem = "it must start with https:// or http://"
        elif not parts.hostname:
            problem = "it names no host"
    if not problem and (len(value) > MAX_URL or any(ord(c) <= 32 or c == "\x7f" for c in value)):
        problem = f"it must be at most {MAX_URL} characters without spaces or control characters"
    if problem:
        raise invalid(f"Invalid webhook URL: {problem}.", field=field)
    return value


def check_description(value: str | None) -> str:
    text = value or ""
    if len(text) > MAX_DESCRIPTION:
        raise invalid(
            f"The description must be at most {MAX_DESCRIPTION} characters.", field="description"
        )
    return text


def check_hmac_key(value: str | None) -> str:
    key = value or ""
    if len(key) > MAX_HMAC_KEY:
        raise invalid(
            f"config.hmac_key must be at most {MAX_HMAC_KEY} characters.", field="config.hmac_key"
        )
    return key


def parse_subscriptions(value: Any, field: str = "subscriptions") -> tuple[Subscription, ...]:
    """The wire's ``[{resource_id, events: [{source, action}]}]`` (``null``: none), in order."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_SUBSCRIPTIONS:
        raise invalid(f"{field} must be a list of at most {MAX_SUBSCRIPTIONS}.", field=field)
    subs: list[Subscription] = []
    for i, item in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise invalid(f"{where} must be an object.", field=where)
        resource_id = item.get("resource_id") or ""
        if not isinstance(resource_id, str) or len(resource_id) > MAX_RESOURCE_ID:
            raise invalid(
                f"{where}.resource_id must be a string of at most {MAX_RESOURCE_ID} characters.",
                field=f"{where}.resource_id",
            )
        raw_events = item.get("events")
        if raw_events is None:
            raw_events = []
        if not isinstance(raw_events, list) or len(raw_events) > MAX_EVENTS:
            raise invalid(
                f"{where}.events must be a list of at most {MAX_EVENTS}.", field=f"{where}.events"
            )
        events: list[SubscriptionEvent] = []
        for j, event in enumerate(raw_events):
            at = f"{where}.events[{j}]"
            if not isinstance(event, dict):
                raise invalid(f"{at} must be an object.", field=at)
            source, action = event.get("source"), event.get("action")
            if not isinstance(source, str) or not (
                source == WILDCARD or SOURCE_PATTERN.fullmatch(source)
            ):
                raise invalid(
                    f"{at}.source must look like 'hashicorp.packer.version'.", field=f"{at}.source"
                )
            if (
                not isinstance(action, str)
                or not action
                or len(action) > MAX_ACTION
                or not action.isprintable()
            ):
                raise invalid(
                    f"{at}.action must be an action name (e.g. 'create') or '*'.",
                    field=f"{at}.action",
                )
            events.append(SubscriptionEvent(source=source, action=action))
        subs.append(Subscription(events=tuple(events), resource_id=resource_id))
    return tuple(subs)

"""Jinja filters: how times, statuses and labels read on a page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jinja2

from packyard.domain.enums import Role, VersionStatus
from packyard.domain.models import Version
from packyard.domain.rules import status_of

STATUS_LABEL = {
    "VERSION_ACTIVE": ("Active", "ok"),
    "VERSION_REVOKED": ("Revoked", "danger"),
    "VERSION_REVOCATION_SCHEDULED": ("Revocation scheduled", "warn"),
    "VERSION_FAILED": ("Failed", "danger"),
    "VERSION_CANCELLED": ("Cancelled", "muted"),
    "VERSION_RUNNING": ("Running", "info"),
    "VERSION_INCOMPLETE": ("Incomplete", "warn"),
    "VERSION_UNSET": ("Unset", "muted"),
    "BUILD_DONE": ("Done", "ok"),
    "BUILD_FAILED": ("Failed", "danger"),
    "BUILD_CANCELLED": ("Cancelled", "muted"),
    "BUILD_RUNNING": ("Running", "info"),
    "BUILD_UNSET": ("Unset", "muted"),
    "UP_TO_DATE": ("Up to date", "ok"),
    "OUT_OF_DATE": ("Out of date", "warn"),
    "UNDETERMINED": ("Undetermined", "muted"),
}


def when(value: datetime | None) -> str:
    """UTC, to the minute: the same for every reader of a page."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat(timespec="seconds")


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """ "3 hours ago", "in 2 days"."""
    if value is None:
        return "—"
    now = now or datetime.now(UTC)
    seconds = (now - value).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            text = f"{n} {unit}{'s' if n != 1 else ''}"
            return f"in {text}" if future else f"{text} ago"
    return "in a moment" if future else "just now"


def status_label(value: Any) -> str:
    key = str(getattr(value, "value", value))
    return STATUS_LABEL.get(key, (key.replace("_", " ").title(), "muted"))[0]


def status_tone(value: Any) -> str:
    key = str(getattr(value, "value", value))
    return STATUS_LABEL.get(key, ("", "muted"))[1]


def version_status(version: Version | None) -> str:
    """A version's status as every reader derives it now (``VERSION_ACTIVE``...)."""
    if version is None:
        return VersionStatus.UNSET.value
    return status_of(version, datetime.now(UTC)).value


def role_label(role: Role | None) -> str:
    """A project role as people read it; ``None``: they hold grants on some buckets only."""
    return role.value if role is not None else "bucket access"


def install(env: jinja2.Environment) -> None:
    env.globals["status_of"] = version_status
    env.filters.update(
        when=when,
        iso=iso,
        ago=ago,
        status_label=status_label,
        status_tone=status_tone,
        version_status=version_status,
        role_label=role_label,
    )

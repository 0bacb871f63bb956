"""Reading the audit log: the filters a reader may apply, independent of storage and wire.

Times are RFC 3339 (``2026-12-05T12:00:00Z``) or a duration back from now (``30m``, ``12h``,
``7d``, ``2w``); ``since`` is inclusive and ``until`` exclusive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from packyard.domain.events import AuditAction, AuditStatus
from packyard.errors import invalid

_DURATION = re.compile(r"([0-9]{1,6})([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_FILTER_CHARS = 320  # the longest actor name (an email address)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Entries matching every given filter. ``actor`` is an actor's id or name; ``action``
    an audit action (``create``/``update``/``delete``), ``description`` one of HCP's
    descriptions (``Revoked version``), matched without regard to case."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str = ""
    bucket: str = ""
    action: AuditAction | None = None
    description: str = ""
    status: AuditStatus | None = None

    def key(self) -> str:
        """The filters as text: a page token is valid only for the listing it came from."""
        return "|".join(
            [
                self.since.isoformat() if self.since else "",
                self.until.isoformat() if self.until else "",
                self.actor,
                self.bucket,
                self.action.value if self.action else "",
                self.description.lower(),
                self.status.value if self.status else "",
            ]
        )


def parse_time(value: str, now: datetime, *, field: str) -> datetime:
    """An RFC 3339 time or a duration before ``now``, in UTC."""
    text = value.strip()
    if found := _DURATION.fullmatch(text):
        return now - timedelta(seconds=int(found[1]) * _SECONDS[found[2]])
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or "T" not in text.upper():
        raise invalid(
            f"{field} must be an RFC 3339 time such as 2026-12-05T12:00:00Z or a duration "
            f"such as 30m, 12h, 7d or 2w, not {value[:64]!r}.",
            field=field,
        )
    return parsed.astimezone(UTC)


def audit_query(
    now: datetime,
    *,
    since: str | None = None,
    until: str | None = None,
    actor: str | None = None,
    bucket: str | None = None,
    action: str | None = None,
    status: str | None = None,
) -> AuditQuery:
    """The query the parameters describe (``None`` or empty: no filter); bad input is 400/3."""
    for field, text in (("actor", actor), ("bucket", bucket), ("action", action)):
        if text and len(text) > MAX_FILTER_CHARS:
            raise invalid(f"{field} is longer than {MAX_FILTER_CHARS} characters.", field=field)
    start = parse_time(since, now, field="since") if since else None
    end = parse_time(until, now, field="until") if until else None
    if start is not None and end is not None and end <= start:
        raise invalid("until must be later than since.", field="until")
    kind: AuditAction | None = None
    description = ""
    if action and action.strip():
        text = action.strip()
        try:
            kind = AuditAction(text.lower())
        except ValueError:
            description = " ".join(text.split())
    state: AuditStatus | None = None
    if status and status.strip():
        try:
            state = AuditStatus(status.strip().upper())
        except ValueError:
            raise invalid(
                f"status must be OK or FAILED, not {status[:32]!r}.", field="status"
            ) from None
    return AuditQuery(
        since=start,
        until=end,
        actor=(actor or "").strip(),
        bucket=(bucket or "").strip(),
        action=kind,
        description=description,
        status=state,
    )

"""Putting registry content into states other features produce (e.g. revocation).

These write through the store's own repositories, the way the revocation
service records a revocation, so channel and consumer tests do not depend on
that service being finished.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from packyard.domain.enums import RevocationType
from packyard.domain.rules import utcnow
from packyard.store.engine import Store
from packyard.store.versions import VersionRepo


def set_revocation(
    store: Store,
    version_id: str,
    *,
    at: datetime | None = None,
    message: str = "compromised base image",
    author: str = "security-team",
) -> datetime:
    """Record a MANUAL revocation taking effect at ``at`` (default: a second ago)."""
    when = at or (utcnow() - timedelta(seconds=1))
    with store.write() as conn:
        VersionRepo(conn).update(
            version_id,
            revoke_at=when,
            revocation_message=message,
            revocation_author=author,
            revocation_type=RevocationType.MANUAL.value,
        )
    return when

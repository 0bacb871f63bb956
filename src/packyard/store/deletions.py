"""The record of deleted versions and builds (read by ``packyard check``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from packyard.ids import new_id
from packyard.store.schema import deletions

VERSION = "version"
BUILD = "build"


def record(
    conn: Connection,
    *,
    bucket_id: str,
    kind: str,
    version_id: str,
    number: int | None,
    at: datetime,
) -> None:
    """Remember that a version (``kind="version"``) or one of its builds was deleted."""
    conn.execute(
        deletions.insert().values(
            id=new_id(),
            bucket_id=bucket_id,
            kind=kind,
            version_id=version_id,
            number=number,
            deleted_at=at,
        )
    )

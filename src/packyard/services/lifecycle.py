"""Version completion, the managed `latest` channel, and channel rollback.

Completion is the side effect of a build's DONE; rollback moves channels off
versions that are revoked or deleted (:func:`roll_back_channels`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select

from packyard.domain.enums import BuildStatus
from packyard.domain.models import MANAGED_AUTHOR, MANAGED_CHANNEL, Bucket, Version
from packyard.domain.rules import is_revoked
from packyard.store.buckets import BucketRepo
from packyard.store.channels import ChannelRepo
from packyard.store.revocation import ChannelMove, RollbackRepo
from packyard.store.versions import VersionRepo


def all_done(statuses: Iterable[BuildStatus]) -> bool:
    """Whether builds with these statuses make their version whole (at least one, all DONE)."""
    seen = False
    for status in statuses:
        if status is not BuildStatus.DONE:
            return False
        seen = True
    return seen


def complete(
    conn: Connection, bucket: Bucket, version: Version, now: datetime, *, number: int | None = None
) -> None:
    """Name the version vN, then point `latest` at it unless it is already revoked.

    Runs with the bucket row locked, so numbering is gapless and unique. ``number``
    is the bucket's next number when the caller read it under that lock. Sets the
    version's ``updated_at`` too.
    """
    if number is None:
        number = VersionRepo(conn).next_number(bucket.id)
    VersionRepo(conn).update(version.id, number=number, updated_at=now)
    version.number = number
    numbered(conn, bucket, version, now)


def numbered(conn: Connection, bucket: Bucket, version: Version, now: datetime) -> None:
    """The rest of :func:`complete` once the version's row has its number: `latest`
    moves to it unless it is already revoked."""
    if not is_revoked(version.revoke_at, now):
        set_latest(conn, bucket, version.id, now)
    else:
        BucketRepo(conn).update(bucket.id, updated_at=now)


def set_latest(conn: Connection, bucket: Bucket, version_id: str | None, now: datetime) -> None:
    """Point the managed channel and the bucket's mirror of it at ``version_id``."""
    ChannelRepo(conn).move_by_name(bucket.id, MANAGED_CHANNEL, version_id, MANAGED_AUTHOR, now)
    BucketRepo(conn).update(bucket.id, latest_version_id=version_id, updated_at=now)
    bucket.latest_version_id = version_id


def roll_back_channels(
    conn: Connection,
    revoked: Select[Any],
    *,
    now: datetime,
    author: str,
) -> list[ChannelMove]:
    """Move every channel serving one of ``revoked`` (a one-column id selectable) back.

    A user channel goes to its most recently assigned version still valid at
    ``now`` (complete, not revoked, not in ``revoked``), else it is unassigned;
    `latest` goes to the newest such version of its bucket. Each move appends a
    history entry (``author`` for user channels, "HCP Packer" for `latest`).
    Set-based: a fixed number of statements for any number of channels.
    """
    moves = plan_rollback(conn, revoked, now=now, author=author)
    RollbackRepo(conn).move(moves, now)
    return moves


def plan_rollback(
    conn: Connection,
    revoked: Select[Any],
    *,
    now: datetime,
    author: str,
    lock: bool = True,
) -> list[ChannelMove]:
    """The moves :func:`roll_back_channels` makes, made by nobody: with ``lock=False``
    (a preview) the channels are read, not locked."""
    rollback = RollbackRepo(conn)
    serving = rollback.serving(revoked, lock=lock)
    if not serving:
        return []
    user = [c.id for c in serving if not c.managed]
    managed_buckets = sorted({c.bucket_id for c in serving if c.managed})
    history = rollback.last_valid_assignments(user, now=now, excluded=revoked) if user else {}
    newest = (
        rollback.newest_valid(managed_buckets, now=now, excluded=revoked) if managed_buckets else {}
    )
    return [
        ChannelMove(
            channel_id=c.id,
            bucket_id=c.bucket_id,
            managed=c.managed,
            version_id=newest.get(c.bucket_id) if c.managed else history.get(c.id),
            author=MANAGED_AUTHOR if c.managed else author,
            previous_version_id=c.version_id,
        )
        for c in serving
    ]

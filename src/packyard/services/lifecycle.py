"""Version completion and the managed `latest` channel: the side effects of a build's DONE."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection

from packyard.domain.enums import BuildStatus
from packyard.domain.models import MANAGED_AUTHOR, MANAGED_CHANNEL, Bucket, Channel, Version
from packyard.domain.rules import is_revoked
from packyard.store.buckets import BucketRepo
from packyard.store.channels import ChannelRepo
from packyard.store.versions import BuildRepo, VersionRepo


def complete_if_done(conn: Connection, bucket: Bucket, version: Version, now: datetime) -> bool:
    """Complete the version when every one of its builds is DONE.

    Runs inside the transaction of the build update that made the last build
    DONE, with the bucket row locked, so numbering is gapless and unique.
    """
    if version.complete:
        return False
    statuses = BuildRepo(conn).statuses(version.id)
    if not statuses or any(s is not BuildStatus.DONE for s in statuses):
        return False
    complete(conn, bucket, version, now)
    return True


def complete(conn: Connection, bucket: Bucket, version: Version, now: datetime) -> None:
    """Name the version vN, then point `latest` at it unless it is already revoked."""
    repo = VersionRepo(conn)
    number = repo.next_number(bucket.id)
    repo.update(version.id, number=number, updated_at=now)
    version.number = number
    if not is_revoked(version.revoke_at, now):
        set_latest(conn, bucket, version.id, now)
    else:
        BucketRepo(conn).update(bucket.id, updated_at=now)


def set_latest(conn: Connection, bucket: Bucket, version_id: str | None, now: datetime) -> None:
    """Point the managed channel and the bucket's mirror of it at ``version_id``."""
    channels = ChannelRepo(conn)
    latest = channels.get(bucket.id, MANAGED_CHANNEL)
    if latest is not None and latest.version_id != version_id:
        channels.assign(latest.id, version_id, MANAGED_AUTHOR, now)
    BucketRepo(conn).update(bucket.id, latest_version_id=version_id, updated_at=now)
    bucket.latest_version_id = version_id


def roll_back(
    conn: Connection,
    channel: Channel,
    *,
    excluded: Iterable[str],
    now: datetime,
    author: str,
) -> str | None:
    """Move a channel to its most recent assignment still valid at ``now``, else unassign it.

    Versions in ``excluded`` (being deleted or revoked) never count as valid.
    Returns the version the channel now serves.
    """
    skip = set(excluded)
    repo = ChannelRepo(conn)
    history = [v for v in repo.assigned_version_ids(channel.id) if v not in skip]
    candidates = VersionRepo(conn).get_many(history)
    target: str | None = None
    for version_id in history:
        version = candidates.get(version_id)
        if version and version.complete and not is_revoked(version.revoke_at, now):
            target = version_id
            break
    if target != channel.version_id:
        repo.assign(channel.id, target, MANAGED_AUTHOR if channel.managed else author, now)
    if channel.managed:
        BucketRepo(conn).update(channel.bucket_id, latest_version_id=target, updated_at=now)
    channel.version_id = target
    return target

"""Loading complete read models (versions with builds, buckets with summaries).

Every loader runs a fixed number of queries whatever the number of objects,
builds or artifacts, so list endpoints have no N+1. Every loader applies the
visibility rule of restricted channels (:mod:`packyard.domain.visibility`) for
the caller it loads for.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, case, or_, select

from packyard.domain.enums import AncestryStatus
from packyard.domain.models import Bucket, Caller, Channel, Version
from packyard.domain.rules import aggregate_status
from packyard.domain.visibility import sees_restricted_channels
from packyard.store.schema import channels, version_edges
from packyard.store.versions import VersionRepo


def load_versions(conn: Connection, items: Sequence[Version], caller: Caller) -> None:
    VersionRepo(conn).hydrate(items, include_restricted=sees_restricted_channels(caller.role))


def load_channels(conn: Connection, items: Sequence[Channel], caller: Caller) -> None:
    """Embed each channel's assigned version, fully loaded."""
    wanted = {c.version_id for c in items if c.version_id}
    found = VersionRepo(conn).get_many(wanted)
    load_versions(conn, list(found.values()), caller)
    for c in items:
        c.version = found.get(c.version_id) if c.version_id else None


def load_buckets(conn: Connection, items: Sequence[Bucket], caller: Caller) -> None:
    """Embed latest versions and roll up ancestry status for each bucket.

    A bucket whose managed `latest` channel the caller may not see shows no
    latest version, nor the parents status that comes from it.
    """
    if not items:
        return
    hidden = hidden_latest(conn, caller, [b.id for b in items])
    latest = VersionRepo(conn).get_many(
        b.latest_version_id for b in items if b.latest_version_id and b.id not in hidden
    )
    load_versions(conn, list(latest.values()), caller)
    children = _children_status(
        conn, [b.id for b in items], include_restricted=sees_restricted_channels(caller.role)
    )
    for b in items:
        b.latest_version = latest.get(b.latest_version_id) if b.latest_version_id else None
        b.parents_status = b.latest_version.parents_status if b.latest_version else None
        b.children_status = children.get(b.id)


# Buckets (of ``ids``) whose managed `latest` channel is restricted.
_RESTRICTED_LATEST = select(channels.c.bucket_id).where(
    channels.c.bucket_id.in_(bindparam("ids", expanding=True)),
    channels.c.managed.is_(True),
    channels.c.restricted.is_(True),
)


def hidden_latest(conn: Connection, caller: Caller, bucket_ids: Iterable[str]) -> set[str]:
    """The buckets among ``bucket_ids`` whose `latest` channel ``caller`` may not see.

    Their ``latest_version_id`` mirrors that channel's assignment, so it must not
    reach the caller in any form. No query for a caller who sees every channel.
    """
    ids = list(bucket_ids)
    if not ids or sees_restricted_channels(caller.role):
        return set()
    return {r.bucket_id for r in conn.execute(_RESTRICTED_LATEST, {"ids": ids})}


# Per edge, the status of domain.rules.edge_status, computed by the database so a
# bucket with thousands of child versions costs a handful of rows, not one per edge.
_EDGE_STATUS = case(
    (
        or_(
            version_edges.c.parent_channel_id.is_(None),
            channels.c.id.is_(None),
            channels.c.version_id.is_(None),
        ),
        AncestryStatus.UNDETERMINED.value,
    ),
    (channels.c.version_id == version_edges.c.parent_version_id, AncestryStatus.UP_TO_DATE.value),
    else_=AncestryStatus.OUT_OF_DATE.value,
).label("status")


def _children_statuses(*, include_restricted: bool) -> Select[Any]:
    # Without include_restricted, an edge recorded through a restricted channel
    # counts as recorded through none (UNDETERMINED), as the ancestry listing shows it.
    joined = channels.c.id == version_edges.c.parent_channel_id
    if not include_restricted:
        joined = and_(joined, channels.c.restricted.is_(False))
    return (
        select(version_edges.c.parent_bucket_id, _EDGE_STATUS)
        .outerjoin(channels, joined)
        .where(version_edges.c.parent_bucket_id.in_(bindparam("ids", expanding=True)))
        .group_by(version_edges.c.parent_bucket_id, _EDGE_STATUS)
    )


_CHILDREN_STATUSES = {seen: _children_statuses(include_restricted=seen) for seen in (True, False)}


def _children_status(
    conn: Connection, bucket_ids: list[str], *, include_restricted: bool
) -> dict[str, AncestryStatus | None]:
    """The rolled-up status of each bucket's child edges (distinct statuses per bucket)."""
    statuses: dict[str, list[AncestryStatus]] = defaultdict(list)
    query = _CHILDREN_STATUSES[include_restricted]
    for r in conn.execute(query, {"ids": bucket_ids}):
        statuses[r.parent_bucket_id].append(AncestryStatus(r.status))
    return {k: aggregate_status(v) for k, v in statuses.items()}

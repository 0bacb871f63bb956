"""Loading complete read models (versions with builds, buckets with summaries).

Every loader runs a fixed number of queries whatever the number of objects,
builds or artifacts, so list endpoints have no N+1.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from packyard.domain.enums import AncestryStatus
from packyard.domain.models import Bucket, Channel, Version
from packyard.domain.rules import aggregate_status, edge_status
from packyard.store.schema import channels, version_edges
from packyard.store.versions import VersionRepo


def load_versions(conn: Connection, items: Sequence[Version]) -> None:
    VersionRepo(conn).hydrate(items)


def load_channels(conn: Connection, items: Sequence[Channel]) -> None:
    """Embed each channel's assigned version, fully loaded."""
    wanted = {c.version_id for c in items if c.version_id}
    found = VersionRepo(conn).get_many(wanted)
    load_versions(conn, list(found.values()))
    for c in items:
        c.version = found.get(c.version_id) if c.version_id else None


def load_buckets(conn: Connection, items: Sequence[Bucket]) -> None:
    """Embed latest versions and roll up ancestry status for each bucket."""
    if not items:
        return
    latest = VersionRepo(conn).get_many(b.latest_version_id for b in items if b.latest_version_id)
    load_versions(conn, list(latest.values()))
    children = _children_status(conn, [b.id for b in items])
    for b in items:
        b.latest_version = latest.get(b.latest_version_id) if b.latest_version_id else None
        b.parents_status = b.latest_version.parents_status if b.latest_version else None
        b.children_status = children.get(b.id)


def _children_status(conn: Connection, bucket_ids: list[str]) -> dict[str, AncestryStatus | None]:
    rows = conn.execute(
        select(
            version_edges.c.parent_bucket_id,
            version_edges.c.parent_version_id,
            version_edges.c.parent_channel_id,
            channels.c.id.label("channel_id"),
            channels.c.version_id.label("channel_version_id"),
        )
        .outerjoin(channels, channels.c.id == version_edges.c.parent_channel_id)
        .where(version_edges.c.parent_bucket_id.in_(bucket_ids))
    )
    statuses: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        statuses[r.parent_bucket_id].append(
            edge_status(
                r.parent_channel_id,
                r.channel_version_id,
                r.parent_version_id,
                channel_exists=r.channel_id is not None,
            )
        )
    return {k: aggregate_status(v) for k, v in statuses.items()}

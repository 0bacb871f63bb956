"""Loading complete read models (versions with builds, buckets with summaries).

Every loader runs a fixed number of queries whatever the number of objects,
builds or artifacts, so list endpoints have no N+1.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import Connection, bindparam, case, or_, select

from packyard.domain.enums import AncestryStatus
from packyard.domain.models import Bucket, Channel, Version
from packyard.domain.rules import aggregate_status
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
_CHILDREN_STATUSES = (
    select(version_edges.c.parent_bucket_id, _EDGE_STATUS)
    .outerjoin(channels, channels.c.id == version_edges.c.parent_channel_id)
    .where(version_edges.c.parent_bucket_id.in_(bindparam("ids", expanding=True)))
    .group_by(version_edges.c.parent_bucket_id, _EDGE_STATUS)
)


def _children_status(conn: Connection, bucket_ids: list[str]) -> dict[str, AncestryStatus | None]:
    """The rolled-up status of each bucket's child edges (distinct statuses per bucket)."""
    statuses: dict[str, list[AncestryStatus]] = defaultdict(list)
    for r in conn.execute(_CHILDREN_STATUSES, {"ids": bucket_ids}):
        statuses[r.parent_bucket_id].append(AncestryStatus(r.status))
    return {k: aggregate_status(v) for k, v in statuses.items()}

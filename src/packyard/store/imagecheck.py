"""Batch reads for image checks of plans: every image id, every bucket, in one query each."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ARRAY, Connection, Select, String, bindparam, func, select

from packyard.domain.access import RestrictedScope
from packyard.store.schema import artifacts, buckets, builds, channels, versions
from packyard.store.visibility import restricted_condition


def _members(conn: Connection, values: Sequence[str]) -> Select[Any]:
    """A one-column subquery of ``values``, bound as ONE parameter whatever their number
    (an ``IN (...)`` list would grow the statement and meet SQLite's variable limit)."""
    if conn.dialect.name == "sqlite":
        each = func.json_each(json.dumps(list(values))).table_valued("value")
        return select(each.c.value)
    unnested = (
        func.unnest(bindparam("members", list(values), type_=ARRAY(String)))
        .table_valued("value")
        .render_derived()
    )
    return select(unnested.c.value)


class ImageCheckRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def artifacts_by_id(self, project_id: str, image_ids: Sequence[str]) -> list[Any]:
        """Rows (image id, region, build, version, bucket) of the project's artifacts with
        these external identifiers, through the (project_id, external_identifier) index."""
        query = (
            select(
                artifacts.c.external_identifier,
                artifacts.c.region,
                builds.c.id.label("build_id"),
                builds.c.platform,
                builds.c.component_type,
                versions.c.id.label("version_id"),
                versions.c.fingerprint,
                versions.c.number,
                versions.c.revoke_at,
                versions.c.revocation_message,
                buckets.c.name.label("bucket_name"),
            )
            .join(builds, builds.c.id == artifacts.c.build_id)
            .join(versions, versions.c.id == builds.c.version_id)
            .join(buckets, buckets.c.id == versions.c.bucket_id)
            .where(
                artifacts.c.project_id == project_id,
                artifacts.c.external_identifier.in_(_members(self.conn, image_ids)),
                buckets.c.project_id == project_id,
            )
            .order_by(artifacts.c.created_at, artifacts.c.id)
        )
        return list(self.conn.execute(query))

    def served_by_channels(
        self, project_id: str, bucket_names: Sequence[str], *, include_restricted: RestrictedScope
    ) -> list[Any]:
        """Rows (bucket, channel, version, build, artifact) of every channel of these buckets
        that serves a version, artifacts in build order (a version without artifacts gives
        one row with NULL artifact columns)."""
        query = (
            select(
                buckets.c.name.label("bucket_name"),
                channels.c.name.label("channel_name"),
                versions.c.fingerprint,
                versions.c.number,
                versions.c.revoke_at,
                builds.c.platform,
                builds.c.component_type,
                artifacts.c.region,
                artifacts.c.external_identifier,
            )
            .select_from(channels)
            .join(buckets, buckets.c.id == channels.c.bucket_id)
            .join(versions, versions.c.id == channels.c.version_id)
            .outerjoin(builds, builds.c.version_id == versions.c.id)
            .outerjoin(artifacts, artifacts.c.build_id == builds.c.id)
            .where(
                buckets.c.project_id == project_id,
                buckets.c.name.in_(_members(self.conn, bucket_names)),
            )
            .order_by(
                buckets.c.name,
                channels.c.name,
                builds.c.created_at,
                builds.c.id,
                artifacts.c.created_at,
                artifacts.c.id,
            )
        )
        query = query.where(
            restricted_condition(channels.c.restricted, channels.c.bucket_id, include_restricted)
        )
        return list(self.conn.execute(query))


__all__ = ["ImageCheckRepo"]

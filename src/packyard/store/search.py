"""Reverse lookup of artifacts by external identifier, through the artifacts index."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, bindparam, select

from packyard.domain.paging import Page, PageRequest, SortKey
from packyard.store.pagination import Listing, SortColumn
from packyard.store.schema import artifacts, buckets, builds, versions
from packyard.store.visibility import visible_condition


@dataclass(frozen=True, slots=True)
class BuildMatch:
    """A build holding a matching artifact, with the bucket it lives in."""

    build_id: str
    version_id: str
    bucket_id: str
    bucket_name: str
    bucket_labels: dict[str, str]


class SearchRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def builds_with_artifact(
        self,
        project_id: str,
        external_identifier: str,
        *,
        platform: str | None,
        region: str | None,
        page: PageRequest,
        visible: frozenset[str] | None = None,
    ) -> Page[BuildMatch]:
        """Builds of the project with an artifact ``external_identifier``, newest version first;
        only those of buckets in ``visible`` (``None``: every bucket)."""
        params = {
            "project_id": project_id,
            "external_identifier": external_identifier,
            "region": region,
            "platform": platform,
        }
        filters = "\x00".join((external_identifier, platform or "", region or ""))
        digest = hashlib.sha256(filters.encode()).hexdigest()[:32]
        return _MATCHES[(bool(region), bool(platform))].page(
            self.conn,
            page,
            scope=f"search:{project_id}:{digest}",
            params=params,
            # A caller with bucket grants: a statement of its own.
            where=None if visible is None else visible_condition(buckets.c.id, visible),
        )


def _matches(by_region: bool, by_platform: bool) -> Select[Any]:
    """Builds holding a matching artifact, with their bucket; parameters ``project_id``,
    ``external_identifier``, and ``region`` and ``platform`` when filtered by them.

    The artifact side is an ``IN`` over the (project_id, external_identifier) index; a
    build holding the identifier in several regions is listed once.
    """
    matching = select(artifacts.c.build_id).where(
        artifacts.c.project_id == bindparam("project_id"),
        artifacts.c.external_identifier == bindparam("external_identifier"),
    )
    if by_region:
        matching = matching.where(artifacts.c.region == bindparam("region"))
    query = (
        select(
            builds.c.id.label("build_id"),
            builds.c.version_id,
            buckets.c.id.label("bucket_id"),
            buckets.c.name.label("bucket_name"),
            buckets.c.labels.label("bucket_labels"),
        )
        .join(versions, versions.c.id == builds.c.version_id)
        .join(buckets, buckets.c.id == versions.c.bucket_id)
        .where(builds.c.id.in_(matching), buckets.c.project_id == bindparam("project_id"))
    )
    if by_platform:
        query = query.where(builds.c.platform == bindparam("platform"))
    return query


def _match_from_row(row: Any) -> BuildMatch:
    return BuildMatch(
        build_id=row.build_id,
        version_id=row.version_id,
        bucket_id=row.bucket_id,
        bucket_name=row.bucket_name,
        bucket_labels=dict(row.bucket_labels or {}),
    )


# Built once: the expressions cost more Python than the search's own SQL.
_MATCHES = {
    (by_region, by_platform): Listing(
        _matches(by_region, by_platform),
        sort_columns={"created_at": SortColumn(versions.c.created_at, is_time=True)},
        default_order=(SortKey("created_at", descending=True),),
        id_column=builds.c.id,
        convert=_match_from_row,
    )
    for by_region in (False, True)
    for by_platform in (False, True)
}


__all__ = ["BuildMatch", "SearchRepo"]

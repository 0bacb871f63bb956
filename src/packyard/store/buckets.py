"""Bucket storage."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update

from packyard.domain.models import Bucket
from packyard.domain.paging import Page, PageRequest, SortKey
from packyard.store.lean import LeanSelect
from packyard.store.pagination import Listing, SortColumn
from packyard.store.schema import buckets
from packyard.store.visibility import visible_condition

BUCKET_SORT = {
    "name": SortColumn(buckets.c.name),
    "created_at": SortColumn(buckets.c.created_at, is_time=True),
    "updated_at": SortColumn(buckets.c.updated_at, is_time=True),
}


_PROJECT_BUCKETS = select(buckets).where(buckets.c.project_id == bindparam("project_id"))
_BY_NAME_SELECT = select(buckets).where(
    buckets.c.project_id == bindparam("project_id"), buckets.c.name == bindparam("name")
)
_BY_NAME = LeanSelect(_BY_NAME_SELECT)
_BY_NAME_LOCKED = _BY_NAME_SELECT.with_for_update()

_UPDATE = update(buckets).where(buckets.c.id == bindparam("row_id"))  # SET what is given
_ADD_VERSIONS = (
    update(buckets)
    .where(buckets.c.id == bindparam("bucket_id"))
    .values(version_count=buckets.c.version_count + bindparam("delta"), updated_at=bindparam("at"))
)

# The bucket's columns as ``b_<name>``, for statements that join the bucket to the
# row a request is about (its version, channel...) and read both at once.
LABELED_COLUMNS = tuple(c.label(f"b_{c.name}") for c in buckets.c)


class BucketRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get(self, project_id: str, name: str, *, lock: bool = False) -> Bucket | None:
        params = {"project_id": project_id, "name": name}
        if lock:
            row = self.conn.execute(_BY_NAME_LOCKED, params).first()
        else:
            row = _BY_NAME.first(self.conn, params)
        return bucket_from_row(row) if row else None

    def insert(self, bucket: Bucket) -> None:
        self.conn.execute(
            buckets.insert().values(
                id=bucket.id,
                project_id=bucket.project_id,
                name=bucket.name,
                description=bucket.description,
                labels=bucket.labels,
                version_count=bucket.version_count,
                latest_version_id=bucket.latest_version_id,
                created_at=bucket.created_at,
                updated_at=bucket.updated_at,
            )
        )

    def update(self, bucket_id: str, **values: Any) -> None:
        self.conn.execute(_UPDATE, {"row_id": bucket_id, **values})

    def add_version_count(self, bucket_id: str, delta: int, *, updated_at: datetime) -> None:
        """Count ``delta`` more versions and set ``updated_at``, in one statement."""
        self.conn.execute(_ADD_VERSIONS, {"bucket_id": bucket_id, "delta": delta, "at": updated_at})

    def delete(self, bucket_id: str) -> None:
        self.conn.execute(delete(buckets).where(buckets.c.id == bucket_id))

    def list_page(
        self, project_id: str, page: PageRequest, *, visible: frozenset[str] | None = None
    ) -> Page[Bucket]:
        """A page of the project's buckets; only those in ``visible`` (``None``: all)."""
        return _PAGES.page(
            self.conn,
            page,
            scope=f"buckets:{project_id}",
            params={"project_id": project_id},
            # A caller with bucket grants: a statement of its own.
            where=None if visible is None else visible_condition(buckets.c.id, visible),
        )


def bucket_from_labeled(row: Any) -> Bucket:
    """The bucket of a row selected with :data:`LABELED_COLUMNS`."""
    return bucket_from_row(row, prefix="b_")


def bucket_from_row(row: Any, *, prefix: str = "") -> Bucket:
    """A bucket from the ``buckets`` columns of ``row``, named ``<prefix><column>``."""
    return Bucket(
        id=getattr(row, prefix + "id"),
        project_id=getattr(row, prefix + "project_id"),
        name=getattr(row, prefix + "name"),
        description=getattr(row, prefix + "description"),
        labels=dict(getattr(row, prefix + "labels") or {}),
        version_count=getattr(row, prefix + "version_count"),
        latest_version_id=getattr(row, prefix + "latest_version_id"),
        created_at=getattr(row, prefix + "created_at"),
        updated_at=getattr(row, prefix + "updated_at"),
    )


_PAGES = Listing(
    _PROJECT_BUCKETS,
    sort_columns=BUCKET_SORT,
    default_order=(SortKey("name"),),
    id_column=buckets.c.id,
    convert=bucket_from_row,
)

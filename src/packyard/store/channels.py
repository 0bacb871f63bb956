"""Channel and assignment-history storage."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select, update

from packyard.domain.models import Channel, ChannelAssignment
from packyard.domain.paging import Page, PageRequest, SortKey
from packyard.ids import new_id
from packyard.store.pagination import SortColumn, paginate
from packyard.store.schema import buckets, channel_assignments, channels

HISTORY_SORT = {
    "assigned_at": SortColumn(channel_assignments.c.seq),
}


_SELECT = select(channels, buckets.c.name.label("bucket_name")).join(
    buckets, buckets.c.id == channels.c.bucket_id
)
_BY_NAME = _SELECT.where(
    channels.c.bucket_id == bindparam("bucket_id"), channels.c.name == bindparam("name")
)
_BY_NAME_LOCKED = _BY_NAME.with_for_update(of=channels)


class ChannelRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _select(self) -> Any:
        return _SELECT

    def get(self, bucket_id: str, name: str, *, lock: bool = False) -> Channel | None:
        q = _BY_NAME_LOCKED if lock else _BY_NAME
        row = self.conn.execute(q, {"bucket_id": bucket_id, "name": name}).first()
        return channel_from_row(row) if row else None

    def get_by_id(self, channel_id: str) -> Channel | None:
        row = self.conn.execute(self._select().where(channels.c.id == channel_id)).first()
        return channel_from_row(row) if row else None

    def for_bucket(self, bucket_id: str, *, include_restricted: bool) -> list[Channel]:
        q = self._select().where(channels.c.bucket_id == bucket_id)
        if not include_restricted:
            q = q.where(channels.c.restricted.is_(False))
        rows = self.conn.execute(q.order_by(channels.c.created_at, channels.c.id))
        return [channel_from_row(r) for r in rows]

    def pointing_at(self, version_ids: Iterable[str]) -> list[Channel]:
        ids = list(version_ids)
        if not ids:
            return []
        rows = self.conn.execute(
            self._select()
            .where(channels.c.version_id.in_(ids))
            .order_by(channels.c.name, channels.c.id)
        )
        return [channel_from_row(r) for r in rows]

    def insert(self, channel: Channel) -> None:
        self.conn.execute(
            channels.insert().values(
                id=channel.id,
                bucket_id=channel.bucket_id,
                name=channel.name,
                managed=channel.managed,
                restricted=channel.restricted,
                version_id=channel.version_id,
                author_id=channel.author_id,
                created_at=channel.created_at,
                updated_at=channel.updated_at,
            )
        )

    def update(self, channel_id: str, **values: Any) -> None:
        self.conn.execute(update(channels).where(channels.c.id == channel_id).values(**values))

    def delete(self, channel_id: str) -> None:
        self.conn.execute(delete(channels).where(channels.c.id == channel_id))

    def assign(
        self, channel_id: str, version_id: str | None, author: str, at: datetime
    ) -> ChannelAssignment:
        """Point the channel at ``version_id`` (or nothing) and append a history entry."""
        self.update(channel_id, version_id=version_id, author_id=author, updated_at=at)
        seq = self.conn.execute(
            select(func.coalesce(func.max(channel_assignments.c.seq), 0)).where(
                channel_assignments.c.channel_id == channel_id
            )
        ).scalar_one()
        entry = ChannelAssignment(
            id=new_id(),
            channel_id=channel_id,
            version_id=version_id,
            author_id=author,
            assigned_at=at,
        )
        self.conn.execute(
            channel_assignments.insert().values(
                id=entry.id,
                channel_id=channel_id,
                seq=int(seq) + 1,
                version_id=version_id,
                author_id=author,
                assigned_at=at,
            )
        )
        return entry

    def history(self, channel_id: str, page: PageRequest) -> Page[ChannelAssignment]:
        result: Page[ChannelAssignment] = paginate(
            self.conn,
            select(channel_assignments).where(channel_assignments.c.channel_id == channel_id),
            page,
            sort_columns=HISTORY_SORT,
            default_order=(SortKey("assigned_at", descending=True),),
            id_column=channel_assignments.c.id,
            convert=assignment_from_row,
            scope=f"history:{channel_id}",
        )
        total = self.conn.execute(
            select(func.count())
            .select_from(channel_assignments)
            .where(channel_assignments.c.channel_id == channel_id)
        ).scalar_one()
        return Page(
            items=result.items,
            next_token=result.next_token,
            previous_token=result.previous_token,
            total=int(total),
        )


def channel_from_row(row: Any) -> Channel:
    return Channel(
        id=row.id,
        bucket_id=row.bucket_id,
        bucket_name=row.bucket_name,
        name=row.name,
        managed=row.managed,
        restricted=row.restricted,
        version_id=row.version_id,
        author_id=row.author_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def assignment_from_row(row: Any) -> ChannelAssignment:
    return ChannelAssignment(
        id=row.id,
        channel_id=row.channel_id,
        version_id=row.version_id,
        author_id=row.author_id,
        assigned_at=row.assigned_at,
    )

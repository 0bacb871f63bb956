"""Channel and assignment-history storage."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, delete, func, or_, select, update

from packyard.domain.access import RestrictedScope
from packyard.domain.models import Bucket, Channel, ChannelAssignment, Version
from packyard.domain.paging import Page, PageRequest, SortKey
from packyard.ids import new_id
from packyard.store.buckets import LABELED_COLUMNS, bucket_from_labeled
from packyard.store.lean import LeanSelect
from packyard.store.pagination import SortColumn, paginate
from packyard.store.schema import buckets, channel_assignments, channels, versions
from packyard.store.versions import loaded_version_from_row, version_row, with_loaded_version
from packyard.store.visibility import PerScope, restricted_condition

HISTORY_SORT = {
    "assigned_at": SortColumn(channel_assignments.c.seq),
}


_SELECT = select(channels, buckets.c.name.label("bucket_name")).join(
    buckets, buckets.c.id == channels.c.bucket_id
)
_BY_NAME_SELECT = _SELECT.where(
    channels.c.bucket_id == bindparam("bucket_id"), channels.c.name == bindparam("name")
)
_BY_NAME = LeanSelect(_BY_NAME_SELECT)
_BY_NAME_LOCKED = _BY_NAME_SELECT.with_for_update(of=channels)

_UPDATE = update(channels).where(channels.c.id == bindparam("row_id"))  # SET what is given

# Lock a bucket row, then its channel row (and a version row of the bucket), as
# bucket_or_404, channel_or_404 and a version lookup do one after the other.
_LABELED = tuple(c.label(f"c_{c.name}") for c in channels.c)


def _channel_in_bucket(*, outer: bool) -> Select[Any]:
    """The bucket named ``name`` of a project and its channel ``channel``: both (a
    writer's lock), or the bucket and, if it exists, the channel (``outer``, a reader)."""
    in_bucket = and_(channels.c.bucket_id == buckets.c.id, channels.c.name == bindparam("channel"))
    return (
        select(*LABELED_COLUMNS, *_LABELED)
        .select_from(buckets)
        .join(channels, in_bucket, isouter=outer)
        .where(buckets.c.project_id == bindparam("project_id"), buckets.c.name == bindparam("name"))
    )


_CHANNEL_IN_BUCKET = _channel_in_bucket(outer=False)
_LOCK_IN_BUCKET = _CHANNEL_IN_BUCKET.with_for_update(of=[buckets, channels])
_FIND_IN_BUCKET = LeanSelect(_channel_in_bucket(outer=True))
# What ChannelRepo.find_loaded reads: _FIND_IN_BUCKET and the channel's version, loaded.
_FIND_LOADED = PerScope(
    lambda scope, visible: with_loaded_version(
        _channel_in_bucket(outer=True), versions.c.id == channels.c.version_id, scope, visible
    )
)
_LOCK_WITH_VERSION = (
    _CHANNEL_IN_BUCKET.add_columns(versions)
    .join(
        versions,
        and_(
            versions.c.bucket_id == buckets.c.id,
            versions.c.fingerprint == bindparam("fingerprint"),
        ),
    )
    .with_for_update(of=[buckets, channels, versions])
)


def _next_seq(channel_id: Any) -> Any:
    """The sequence number of a channel's next history entry, computed by the statement."""
    return (
        select(func.coalesce(func.max(channel_assignments.c.seq), 0) + 1)
        .where(channel_assignments.c.channel_id == channel_id)
        .scalar_subquery()
    )


# Move a channel named within its bucket, unless it already serves the version, and
# record the move; the channel's id and next sequence number come from the database.
_MOVE_BY_NAME = (
    update(channels)
    .where(
        channels.c.bucket_id == bindparam("bid"),
        channels.c.name == bindparam("cname"),
        channels.c.version_id.is_distinct_from(bindparam("vid")),
    )
    .values(version_id=bindparam("vid"), author_id=bindparam("author"), updated_at=bindparam("at"))
)
_APPEND_HISTORY_BY_NAME = channel_assignments.insert().from_select(
    ["id", "channel_id", "seq", "version_id", "author_id", "assigned_at"],
    select(
        bindparam("aid", type_=channel_assignments.c.id.type),
        channels.c.id,
        _next_seq(channels.c.id),
        bindparam("vid", type_=channel_assignments.c.version_id.type),
        bindparam("author", type_=channel_assignments.c.author_id.type),
        bindparam("at", type_=channel_assignments.c.assigned_at.type),
    ).where(channels.c.bucket_id == bindparam("bid"), channels.c.name == bindparam("cname")),
)
_APPEND_HISTORY = channel_assignments.insert().values(
    id=bindparam("aid"),
    channel_id=bindparam("cid"),
    seq=_next_seq(bindparam("cid")),
    version_id=bindparam("vid"),
    author_id=bindparam("author"),
    assigned_at=bindparam("at"),
)


class ChannelRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _select(self) -> Any:
        return _SELECT

    def by_ids(self, ids: Iterable[str]) -> dict[str, Channel]:
        wanted = list(ids)
        if not wanted:
            return {}
        rows = self.conn.execute(_SELECT.where(channels.c.id.in_(wanted)))
        return {r.id: channel_from_row(r) for r in rows}

    def get(self, bucket_id: str, name: str, *, lock: bool = False) -> Channel | None:
        params = {"bucket_id": bucket_id, "name": name}
        if lock:
            row = self.conn.execute(_BY_NAME_LOCKED, params).first()
        else:
            row = _BY_NAME.first(self.conn, params)
        return channel_from_row(row) if row else None

    def find_in_bucket(
        self, project_id: str, bucket_name: str, name: str
    ) -> tuple[Bucket, Channel | None] | None:
        """The bucket named ``bucket_name`` and its channel ``name``, in one query.

        ``None`` when the bucket does not exist; the channel is ``None`` when it does not.
        """
        row = _FIND_IN_BUCKET.first(
            self.conn, {"project_id": project_id, "name": bucket_name, "channel": name}
        )
        if row is None:
            return None
        bucket = bucket_from_labeled(row)
        if row.c_id is None:
            return bucket, None
        return bucket, channel_from_row(row, prefix="c_", bucket_name=bucket.name)

    def find_loaded(
        self,
        project_id: str,
        bucket_name: str,
        name: str,
        *,
        include_restricted: RestrictedScope,
        visible: frozenset[str] | None = None,
    ) -> tuple[Bucket, Channel | None] | None:
        """:meth:`find_in_bucket` with the channel's version (``Channel.version``) loaded as
        :meth:`VersionRepo.get_loaded` loads it, in one query."""
        params = {"project_id": project_id, "name": bucket_name, "channel": name}
        found = _FIND_LOADED.rows(self.conn, params, include_restricted, visible)
        if not found:
            return None
        row = found[0]
        bucket = bucket_from_labeled(row)
        if row.c_id is None:
            return bucket, None
        channel = channel_from_row(row, prefix="c_", bucket_name=bucket.name)
        channel.version = loaded_version_from_row(row) if row.id else None
        return bucket, channel

    def lock_in_bucket(
        self, project_id: str, bucket_name: str, name: str, *, fingerprint: str | None = None
    ) -> tuple[Bucket, Channel, Version | None] | None:
        """Lock the bucket row, its channel ``name`` and, with ``fingerprint``, that version.

        One statement; ``None`` when any of them is missing at its start (the caller
        then looks them up one by one). The version comes as its row alone (see
        :meth:`VersionRepo.lock_in_bucket`).
        """
        params = {"project_id": project_id, "name": bucket_name, "channel": name}
        if fingerprint is None:
            row = self.conn.execute(_LOCK_IN_BUCKET, params).first()
        else:
            params["fingerprint"] = fingerprint
            row = self.conn.execute(_LOCK_WITH_VERSION, params).first()
        if row is None:
            return None
        bucket = bucket_from_labeled(row)
        channel = channel_from_row(row, prefix="c_", bucket_name=bucket.name)
        version = version_row(row, bucket.name) if fingerprint is not None else None
        return bucket, channel, version

    def get_by_id(self, channel_id: str) -> Channel | None:
        row = self.conn.execute(self._select().where(channels.c.id == channel_id)).first()
        return channel_from_row(row) if row else None

    def for_bucket(self, bucket_id: str, *, include_restricted: RestrictedScope) -> list[Channel]:
        q = self._select().where(
            channels.c.bucket_id == bucket_id,
            restricted_condition(channels.c.restricted, channels.c.bucket_id, include_restricted),
        )
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
        self.conn.execute(_UPDATE, {"row_id": channel_id, **values})

    def delete(self, channel_id: str) -> None:
        self.conn.execute(delete(channels).where(channels.c.id == channel_id))

    def assign(
        self, channel_id: str, version_id: str | None, author: str, at: datetime
    ) -> ChannelAssignment:
        """Point the channel at ``version_id`` (or nothing) and append a history entry."""
        self.update(channel_id, version_id=version_id, author_id=author, updated_at=at)
        return self.append_history(channel_id, version_id, author, at)

    def append_history(
        self, channel_id: str, version_id: str | None, author: str, at: datetime
    ) -> ChannelAssignment:
        """Record an assignment the channel row already shows (the channel is locked)."""
        entry = ChannelAssignment(
            id=new_id(),
            channel_id=channel_id,
            version_id=version_id,
            author_id=author,
            assigned_at=at,
        )
        self.conn.execute(
            _APPEND_HISTORY,
            {"aid": entry.id, "cid": channel_id, "vid": version_id, "author": author, "at": at},
        )
        return entry

    def move_by_name(
        self, bucket_id: str, name: str, version_id: str | None, author: str, at: datetime
    ) -> bool:
        """Point the bucket's channel ``name`` at ``version_id`` with a history entry.

        Nothing happens when the channel does not exist or already serves
        ``version_id``; returns whether it moved. Two statements, no read.
        """
        params = {"bid": bucket_id, "cname": name, "vid": version_id, "author": author, "at": at}
        if not self.conn.execute(_MOVE_BY_NAME, params).rowcount:
            return False
        self.conn.execute(_APPEND_HISTORY_BY_NAME, {**params, "aid": new_id()})
        return True

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

    # --- console read models ------------------------------------------------
    def last_assignments(self, channel_ids: Iterable[str]) -> dict[str, ChannelAssignment]:
        """Each channel's newest history entry (one query)."""
        ids = list(channel_ids)
        if not ids:
            return {}
        rows = self.conn.execute(_LAST_ASSIGNMENTS, {"ids": ids})
        return {r.channel_id: assignment_from_row(r) for r in rows}

    def timeline(self, channel_id: str, page: PageRequest) -> Page[TimelineEntry]:
        """The history newest first, each entry with the version the one before it
        assigned (what the channel moved from), and the number of entries."""
        result: Page[TimelineEntry] = paginate(
            self.conn,
            _TIMELINE.where(channel_assignments.c.channel_id == channel_id),
            page,
            sort_columns=HISTORY_SORT,
            default_order=(SortKey("assigned_at", descending=True),),
            id_column=channel_assignments.c.id,
            convert=_timeline_entry,
            scope=f"timeline:{channel_id}",
        )
        total = self.conn.execute(_HISTORY_COUNT, {"cid": channel_id}).scalar_one()
        return Page(
            items=result.items,
            next_token=result.next_token,
            previous_token=result.previous_token,
            total=int(total),
        )

    def assignable(
        self,
        bucket_id: str,
        bucket_name: str,
        *,
        now: datetime,
        limit: int,
        include: str | None = None,
    ) -> list[Version]:
        """The newest ``limit`` versions of the bucket a channel may serve at ``now``
        (complete, not revoked), newest first, plus the one ``include`` names if it may.

        The version rows alone (no builds): enough to name them and tell their status.
        """
        params = {"bid": bucket_id, "now": now}
        rows = list(self.conn.execute(_ASSIGNABLE.limit(limit), params))
        if include and all(r.fingerprint != include for r in rows):
            rows += self.conn.execute(_ASSIGNABLE_ONE, {**params, "fp": include}).all()
        return [version_row(r, bucket_name) for r in rows]


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    assignment: ChannelAssignment
    seq: int
    previous_version_id: str | None  # None: unassigned before, or the first entry (seq 1)


_previous = channel_assignments.alias("previous")
_TIMELINE = select(
    channel_assignments,
    select(_previous.c.version_id)
    .where(
        _previous.c.channel_id == channel_assignments.c.channel_id,
        _previous.c.seq == channel_assignments.c.seq - 1,
    )
    .scalar_subquery()
    .label("previous_version_id"),
)
_HISTORY_COUNT = (
    select(func.count())
    .select_from(channel_assignments)
    .where(channel_assignments.c.channel_id == bindparam("cid"))
)
_LAST_ASSIGNMENTS = select(channel_assignments).where(
    channel_assignments.c.channel_id.in_(bindparam("ids", expanding=True)),
    channel_assignments.c.seq
    == select(func.max(_previous.c.seq))
    .where(_previous.c.channel_id == channel_assignments.c.channel_id)
    .scalar_subquery(),
)
_VALID_NOW = (
    versions.c.bucket_id == bindparam("bid"),
    versions.c.number.is_not(None),
    or_(versions.c.revoke_at.is_(None), versions.c.revoke_at > bindparam("now")),
)
_ASSIGNABLE = select(versions).where(*_VALID_NOW).order_by(versions.c.number.desc())
_ASSIGNABLE_ONE = select(versions).where(*_VALID_NOW, versions.c.fingerprint == bindparam("fp"))


def _timeline_entry(row: Any) -> TimelineEntry:
    return TimelineEntry(assignment_from_row(row), int(row.seq), row.previous_version_id)


def channel_from_row(row: Any, *, prefix: str = "", bucket_name: str | None = None) -> Channel:
    """A channel from the ``channels`` columns of ``row``, named ``<prefix><column>``; its
    bucket's name from ``bucket_name`` or the row's ``bucket_name`` column."""
    return Channel(
        id=getattr(row, prefix + "id"),
        bucket_id=getattr(row, prefix + "bucket_id"),
        bucket_name=bucket_name if bucket_name is not None else row.bucket_name,
        name=getattr(row, prefix + "name"),
        managed=getattr(row, prefix + "managed"),
        restricted=getattr(row, prefix + "restricted"),
        version_id=getattr(row, prefix + "version_id"),
        author_id=getattr(row, prefix + "author_id"),
        created_at=getattr(row, prefix + "created_at"),
        updated_at=getattr(row, prefix + "updated_at"),
    )


def assignment_from_row(row: Any) -> ChannelAssignment:
    return ChannelAssignment(
        id=row.id,
        channel_id=row.channel_id,
        version_id=row.version_id,
        author_id=row.author_id,
        assigned_at=row.assigned_at,
    )

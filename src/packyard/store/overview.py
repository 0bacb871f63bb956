"""The console's registry reads: buckets filtered in SQL, the channels of a page of buckets,
a bucket's child buckets and its recent versions. Each is one statement whatever the data
size."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    bindparam,
    exists,
    func,
    literal,
    literal_column,
    select,
    true,
)
from sqlalchemy.types import Integer, String

from packyard.domain.access import RestrictedScope
from packyard.domain.ancestry import AncestryRelation
from packyard.domain.models import Version
from packyard.domain.overview import BucketQuery, ChannelChip, VersionChoice
from packyard.domain.paging import Page, PageRequest, SortKey
from packyard.store.ancestry import relation_from_row, relation_select
from packyard.store.buckets import BUCKET_SORT, bucket_from_row
from packyard.store.pagination import paginate
from packyard.store.schema import buckets, channels, version_edges, versions
from packyard.store.versions import PARENT_EDGES, set_parents_status
from packyard.store.visibility import (
    PerScope,
    as_flag,
    is_precompiled,
    restricted_condition,
    visible_condition,
)


def _has_label(conn: Connection, key: str, value: str | None) -> ColumnElement[bool]:
    """Buckets whose labels hold ``key`` (with ``value`` unless it is ``None``).

    Any key works, quotes and dots included: SQLite walks the labels with ``json_each``
    (a JSON path could not name every key), PostgreSQL takes the key as an argument.
    """
    if conn.dialect.name == "sqlite":
        each = func.json_each(buckets.c.labels).table_valued("key", "value")
        match = each.c.key == key
        if value is not None:
            match = and_(match, each.c.value == value)
        return exists(select(literal(1)).select_from(each).where(match))
    found = func.json_extract_path_text(buckets.c.labels, literal(key))
    return found.is_not(None) if value is None else found == value


def search_buckets(
    conn: Connection,
    project_id: str,
    query: BucketQuery,
    page: PageRequest,
    *,
    visible: frozenset[str] | None = None,
) -> Page[Any]:
    """A page of the project's buckets matching ``query``, in its order; only those in
    ``visible`` (``None``: every bucket)."""
    statement = select(buckets).where(
        buckets.c.project_id == project_id, visible_condition(buckets.c.id, visible)
    )
    if query.text:
        statement = statement.where(
            func.lower(buckets.c.name).contains(query.text.lower(), autoescape=True)
        )
    if query.label_key:
        statement = statement.where(_has_label(conn, query.label_key, query.label_value))
    # A page token belongs to the listing it came from: its filters are part of its scope.
    filters = "\x00".join(
        (query.text, query.label_key, "\x01" if query.label_value is None else query.label_value)
    )
    digest = hashlib.sha256(filters.encode()).hexdigest()[:32]
    return paginate(
        conn,
        statement,
        PageRequest(
            size=page.size,
            next_token=page.next_token,
            previous_token=page.previous_token,
            order_by=page.order_by or query.order_by,
        ),
        sort_columns=BUCKET_SORT,
        default_order=(SortKey("name"),),
        id_column=buckets.c.id,
        convert=bucket_from_row,
        scope=f"console-buckets:{project_id}:{digest}",
    )


_CHIPS = (
    select(channels.c.bucket_id, channels.c.name, channels.c.restricted, channels.c.version_id)
    .where(
        channels.c.bucket_id.in_(bindparam("ids", expanding=True)),
        channels.c.managed.is_(False),
    )
    .order_by(channels.c.bucket_id, channels.c.name)
)
_CHIPS_UNRESTRICTED = _CHIPS.where(channels.c.restricted.is_(False))


def channel_chips(
    conn: Connection, bucket_ids: list[str], *, include_restricted: RestrictedScope
) -> dict[str, list[ChannelChip]]:
    """The user channels of each bucket (not `latest`) by name, with the id of the version
    each serves; restricted ones only of the buckets ``include_restricted`` names."""
    found: dict[str, list[ChannelChip]] = defaultdict(list)
    if not bucket_ids:
        return found
    if is_precompiled(include_restricted):
        query = _CHIPS if as_flag(include_restricted) else _CHIPS_UNRESTRICTED
    else:
        query = _CHIPS.where(
            restricted_condition(channels.c.restricted, channels.c.bucket_id, include_restricted)
        )
    for r in conn.execute(query, {"ids": bucket_ids}):
        found[r.bucket_id].append(ChannelChip(r.name, r.restricted, r.version_id))
    return found


def attach_parents_status(
    conn: Connection,
    items: list[Version],
    *,
    include_restricted: RestrictedScope,
    visible: frozenset[str] | None = None,
) -> None:
    """Set each version's ``parents_status`` from its parent edges (one statement): what
    :meth:`VersionRepo.hydrate` computes, without loading builds and artifacts, for lists
    that show a version's name and status only."""
    if not items:
        return
    by_id = {v.id: v for v in items}
    for r in PARENT_EDGES.rows(conn, {"ids": list(by_id)}, include_restricted, visible):
        set_parents_status(by_id[r.id], r.edges)


_KIND_CHILD = 1


def child_relations(
    conn: Connection,
    bucket_id: str,
    *,
    include_restricted: RestrictedScope,
    limit: int,
    visible: frozenset[str] | None = None,
) -> tuple[list[AncestryRelation], bool]:
    """Per child bucket (by name, at most ``limit``; only those in ``visible``), the edges
    from this bucket into the newest version of that bucket built from it (the one recorded
    last), with their status; and whether more child buckets exist.

    An edge recorded through a restricted channel outside ``include_restricted`` shows no
    channel, as every ancestry read does (:mod:`packyard.domain.visibility`).
    """
    # A version rarely has more than a couple of parents in one bucket.
    params = {"bucket_id": bucket_id, "rows": limit * 4 + 1}
    rows = _CHILD_RELATIONS.rows(conn, params, include_restricted, visible)
    relations: list[AncestryRelation] = []
    seen: list[str] = []
    for row in rows:
        if row.c_bucket not in seen:
            if len(seen) == limit:
                return relations, True
            seen.append(row.c_bucket)
        relations.append(relation_from_row(row))
    return relations, len(rows) > limit * 4


def _child_relations(scope: RestrictedScope, visible: frozenset[str] | None) -> Select[Any]:
    """:func:`child_relations`' statement: the edges from bucket ``:bucket_id`` into the
    newest version of each child bucket, ordered by child bucket name, at most ``:rows``.

    A few index seeks per child bucket, whatever the number of child versions: the child
    buckets are found one after the other, each the smallest id above the previous one (a
    recursive walk over ``ix_version_edges_parent_child``, which neither planner does by
    itself), then each one's last recorded edge, then that version's edges (its primary
    key). Grouping every edge of the bucket by child version instead took 2 ms of SQLite
    for a bucket with 900 of them at size L (0.13 ms now), growing with each child built.
    """
    e, k = version_edges, version_edges.alias("k")
    parent = bindparam("bucket_id", type_=String)

    def first_child(above: Any = None) -> Any:
        after = true() if above is None else k.c.child_bucket_id > above
        return (
            select(func.min(k.c.child_bucket_id))
            .where(k.c.parent_bucket_id == parent, after)
            .scalar_subquery()
        )

    kids = select(first_child().label("bucket_id")).cte("kids", recursive=True)
    kids = kids.union_all(
        select(first_child(kids.c.bucket_id)).where(kids.c.bucket_id.is_not(None))
    )
    # The newest version of a child bucket is the one whose edge from this bucket was
    # recorded last (the higher id on a tie).
    last_recorded = (
        select(k.c.child_version_id)
        .where(k.c.parent_bucket_id == parent, k.c.child_bucket_id == kids.c.bucket_id)
        .order_by(k.c.created_at.desc(), k.c.child_version_id.desc())
        .limit(1)
        .scalar_subquery()
    )
    newest = (
        select(last_recorded.label("id"))
        .where(kids.c.bucket_id.is_not(None), visible_condition(kids.c.bucket_id, visible))
        .cte("newest")
        .prefix_with("MATERIALIZED")
    )
    ranked = (
        select(e.c.parent_version_id, e.c.child_version_id, e.c.parent_channel_id)
        .join(newest, e.c.child_version_id == newest.c.id)
        # Not comparable through an index (SQLite's documented way to rule one out): given
        # one on the parent bucket, SQLite read every edge the bucket ever recorded and kept
        # those into the newest versions.
        .where(e.c.parent_bucket_id.concat("") == parent)
        .subquery("ranked")
    )
    query, pv, cb = relation_select(
        ranked, literal_column(str(_KIND_CHILD), Integer), include_restricted=scope
    )
    return query.order_by(cb.c.name, pv.c.number.desc(), ranked.c.parent_version_id).limit(
        bindparam("rows", type_=Integer)
    )


_CHILD_RELATIONS = PerScope(_child_relations)


def recent_versions(conn: Connection, bucket_id: str, limit: int) -> list[VersionChoice]:
    """The bucket's newest complete versions, newest first."""
    rows = conn.execute(
        select(versions.c.fingerprint, versions.c.number, versions.c.revoke_at)
        .where(versions.c.bucket_id == bucket_id, versions.c.number.is_not(None))
        .order_by(versions.c.number.desc())
        .limit(limit)
    )
    return [VersionChoice(f"v{r.number}", r.fingerprint, r.revoke_at) for r in rows]


__all__ = [
    "attach_parents_status",
    "channel_chips",
    "child_relations",
    "recent_versions",
    "search_buckets",
]

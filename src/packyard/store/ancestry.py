"""Ancestry edges read as a bucket's relations: one page in one query, plus a count."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    String,
    and_,
    func,
    literal_column,
    select,
    union_all,
)

from packyard.domain.ancestry import AncestryRelation, VersionRef
from packyard.domain.enums import AncestryType
from packyard.domain.paging import Page, PageRequest, SortKey
from packyard.domain.rules import edge_status
from packyard.store.pagination import SortColumn, paginate
from packyard.store.schema import buckets, channels, version_edges, versions

# Parents sort before children; within a side the newest edge comes first.
_PARENT_KIND, _CHILD_KIND = 0, 1


class AncestryRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def relations_page(
        self,
        bucket_id: str,
        *,
        parents_of: str | None,
        include_children: bool,
        children_channel_id: str | None,
        include_restricted: bool,
        page: PageRequest,
    ) -> Page[AncestryRelation]:
        """Edges into ``parents_of`` (its parents) and out of the bucket's versions.

        ``children_channel_id`` keeps only children built from a version taken
        from that channel of this bucket. Without ``include_restricted`` an edge
        recorded through a restricted channel shows no channel (see
        :mod:`packyard.domain.visibility`).
        """
        parts: list[Select[Any]] = []
        if parents_of is not None:
            parts.append(_side(_PARENT_KIND).where(version_edges.c.child_version_id == parents_of))
        if include_children:
            children = _side(_CHILD_KIND).where(version_edges.c.parent_bucket_id == bucket_id)
            if children_channel_id is not None:
                children = children.where(version_edges.c.parent_channel_id == children_channel_id)
            parts.append(children)
        if not parts:
            return Page(items=[], total=0)
        rel = union_all(*parts).subquery("rel") if len(parts) > 1 else parts[0].subquery("rel")

        pv, pb = versions.alias("pv"), buckets.alias("pb")
        cv, cb = versions.alias("cv"), buckets.alias("cb")
        ch, chv = channels.alias("ch"), versions.alias("chv")
        query = (
            select(
                rel.c.kind,
                rel.c.parent_version_id,
                rel.c.child_version_id,
                rel.c.parent_channel_id,
                pv.c.fingerprint.label("p_fingerprint"),
                pv.c.number.label("p_number"),
                pb.c.name.label("p_bucket"),
                cv.c.fingerprint.label("c_fingerprint"),
                cv.c.number.label("c_number"),
                cb.c.name.label("c_bucket"),
                ch.c.id.label("ch_id"),
                ch.c.name.label("ch_name"),
                ch.c.version_id.label("ch_version_id"),
                chv.c.fingerprint.label("chv_fingerprint"),
                chv.c.number.label("chv_number"),
            )
            .select_from(rel)
            .join(pv, pv.c.id == rel.c.parent_version_id)
            .join(pb, pb.c.id == pv.c.bucket_id)
            .join(cv, cv.c.id == rel.c.child_version_id)
            .join(cb, cb.c.id == cv.c.bucket_id)
            .outerjoin(
                ch,
                ch.c.id == rel.c.parent_channel_id
                if include_restricted
                else and_(ch.c.id == rel.c.parent_channel_id, ch.c.restricted.is_(False)),
            )
            .outerjoin(chv, chv.c.id == ch.c.version_id)
        )
        result: Page[AncestryRelation] = paginate(
            self.conn,
            query,
            page,
            sort_columns={
                "kind": SortColumn(rel.c.kind),
                "created_at": SortColumn(rel.c.created_at, is_time=True),
            },
            default_order=(SortKey("kind"), SortKey("created_at", descending=True)),
            id_column=rel.c.rid,
            convert=_relation_from_row,
            scope=f"ancestry:{bucket_id}:{parents_of or '-'}:{int(include_children)}:"
            f"{children_channel_id or '-'}",
        )
        total = self.conn.execute(select(func.count()).select_from(rel)).scalar_one()
        return Page(
            items=result.items,
            next_token=result.next_token,
            previous_token=result.previous_token,
            total=int(total),
        )


def _side(kind: int) -> Select[Any]:
    e = version_edges.c
    # A row id unique across both sides: the same edge can be a parent and a child
    # relation of one bucket when a version was built from another of its versions.
    rid = literal_column(f"'{kind}:'", String) + e.child_version_id + ":" + e.parent_version_id
    return select(
        literal_column(str(kind), Integer).label("kind"),
        e.parent_version_id,
        e.child_version_id,
        e.parent_channel_id,
        e.created_at,
        rid.label("rid"),
    )


def _relation_from_row(row: Any) -> AncestryRelation:
    channel_version = None
    if row.ch_version_id is not None and row.chv_fingerprint is not None:
        channel_version = VersionRef(
            id=row.ch_version_id,
            bucket_name=row.p_bucket,
            fingerprint=row.chv_fingerprint,
            number=row.chv_number,
        )
    return AncestryRelation(
        kind=AncestryType.PARENTS if row.kind == _PARENT_KIND else AncestryType.CHILDREN,
        status=edge_status(
            row.parent_channel_id,
            row.ch_version_id,
            row.parent_version_id,
            channel_exists=row.ch_id is not None,
        ),
        parent=VersionRef(
            id=row.parent_version_id,
            bucket_name=row.p_bucket,
            fingerprint=row.p_fingerprint,
            number=row.p_number,
        ),
        child=VersionRef(
            id=row.child_version_id,
            bucket_name=row.c_bucket,
            fingerprint=row.c_fingerprint,
            number=row.c_number,
        ),
        channel_name=row.ch_name or "",
        channel_version=channel_version,
    )


__all__ = ["AncestryRepo"]

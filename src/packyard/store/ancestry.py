"""Ancestry edges read as a bucket's relations: one page in one query, plus a count."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Connection,
    Integer,
    Select,
    String,
    Subquery,
    and_,
    bindparam,
    func,
    literal_column,
    select,
    true,
    union,
    union_all,
)
from sqlalchemy.sql.selectable import NamedFromClause

from packyard.domain.access import RestrictedScope
from packyard.domain.ancestry import AncestryRelation, VersionRef
from packyard.domain.enums import AncestryStatus, AncestryType, BuildStatus, RevocationType
from packyard.domain.lineage import (
    MAX_CHILDREN,
    MAX_LINEAGE_NODES,
    Lineage,
    LineageEdge,
    LineageVersion,
    Relation,
    Relations,
)
from packyard.domain.paging import Page, PageRequest, SortKey
from packyard.domain.rules import edge_status
from packyard.store.pagination import SortColumn, paginate
from packyard.store.schema import buckets, builds, channels, version_edges, versions
from packyard.store.visibility import (
    as_flag,
    is_precompiled,
    restricted_condition,
    visible_condition,
)

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
        include_restricted: RestrictedScope,
        page: PageRequest,
        visible: frozenset[str] | None = None,
    ) -> Page[AncestryRelation]:
        """Edges into ``parents_of`` (its parents) and out of the bucket's versions.

        ``children_channel_id`` keeps only children built from a version taken
        from that channel of this bucket. An edge recorded through a restricted
        channel outside ``include_restricted`` shows no channel (see
        :mod:`packyard.domain.visibility`); an edge whose other end lies in a bucket
        outside ``visible`` is left out (of the page and of the total).
        """
        e = version_edges.c
        parts: list[Select[Any]] = []
        if parents_of is not None:
            parts.append(
                _side(_PARENT_KIND).where(
                    e.child_version_id == parents_of,
                    visible_condition(e.parent_bucket_id, visible),
                )
            )
        if include_children:
            children = _side(_CHILD_KIND).where(
                e.parent_bucket_id == bucket_id, visible_condition(e.child_bucket_id, visible)
            )
            if children_channel_id is not None:
                children = children.where(version_edges.c.parent_channel_id == children_channel_id)
            parts.append(children)
        if not parts:
            return Page(items=[], total=0)
        rel = union_all(*parts).subquery("rel") if len(parts) > 1 else parts[0].subquery("rel")

        query, _, _ = relation_select(rel, rel.c.kind, include_restricted=include_restricted)
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
            convert=relation_from_row,
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


def relation_select(
    source: Subquery, kind: ColumnElement[Any], *, include_restricted: RestrictedScope
) -> tuple[Select[Any], NamedFromClause, NamedFromClause]:
    """The columns :func:`relation_from_row` reads, for the edges in ``source`` (columns
    ``parent_version_id``, ``child_version_id``, ``parent_channel_id``), with the parent
    version and the child's bucket aliases for ordering. An edge recorded through a
    restricted channel outside ``include_restricted`` shows no channel."""
    pv, pb = versions.alias("pv"), buckets.alias("pb")
    cv, cb = versions.alias("cv"), buckets.alias("cb")
    ch, chv = channels.alias("ch"), versions.alias("chv")
    through = and_(
        ch.c.id == source.c.parent_channel_id,
        restricted_condition(ch.c.restricted, ch.c.bucket_id, include_restricted),
    )
    query = (
        select(
            kind.label("kind"),
            source.c.parent_version_id,
            source.c.child_version_id,
            source.c.parent_channel_id,
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
        .select_from(source)
        .join(pv, pv.c.id == source.c.parent_version_id)
        .join(pb, pb.c.id == pv.c.bucket_id)
        .join(cv, cv.c.id == source.c.child_version_id)
        .join(cb, cb.c.id == cv.c.bucket_id)
        .outerjoin(ch, through)
        .outerjoin(chv, chv.c.id == ch.c.version_id)
    )
    return query, pv, cb


def relation_from_row(row: Any) -> AncestryRelation:
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


# --- lineage: one version's relations, and every hop around a bucket ---------------
#
# Each read below is a fixed number of statements whatever the size or depth of the
# lineage: relations in two (plus a count when a version has more children than are
# listed), a bucket's whole lineage in three (one recursive query that finds its
# versions, one that loads them, one for the edges between them), and one more for the
# build statuses of incomplete versions, whose status depends on them.

_LV_COLUMNS = (
    versions.c.id,
    versions.c.fingerprint,
    versions.c.number,
    versions.c.created_at,
    versions.c.revoke_at,
    versions.c.revocation_message,
    versions.c.revocation_author,
    versions.c.revocation_type,
    buckets.c.name.label("bucket_name"),
)


def _channel_join(include_restricted: RestrictedScope) -> Any:
    """The parent channel of an edge, unless the caller may not see it (then, for them,
    the edge was recorded through no channel: see :mod:`packyard.domain.visibility`)."""
    return and_(
        channels.c.id == version_edges.c.parent_channel_id,
        restricted_condition(channels.c.restricted, channels.c.bucket_id, include_restricted),
    )


def _relations(
    side: str, *, include_restricted: RestrictedScope, visible: frozenset[str] | None = None
) -> Select[Any]:
    """Parents of the versions ``ids``, or the newest children of ``version_id``; those in
    buckets outside ``visible`` left out."""
    e = version_edges.c
    other = e.parent_version_id if side == "parents" else e.child_version_id
    other_bucket = e.parent_bucket_id if side == "parents" else e.child_bucket_id
    query = (
        select(
            *_LV_COLUMNS,
            e.child_version_id.label("of_child"),
            e.parent_version_id,
            e.parent_channel_id,
            channels.c.id.label("ch_id"),
            channels.c.name.label("ch_name"),
            channels.c.version_id.label("ch_version_id"),
        )
        .select_from(version_edges)
        .join(versions, versions.c.id == other)
        .join(buckets, buckets.c.id == versions.c.bucket_id)
        .outerjoin(channels, _channel_join(include_restricted))
        .where(visible_condition(other_bucket, visible))
    )
    if side == "parents":
        return query.where(e.child_version_id.in_(bindparam("ids", expanding=True))).order_by(
            buckets.c.name, versions.c.number, versions.c.id
        )
    return (
        query.where(e.parent_version_id == bindparam("version_id"))
        .order_by(e.created_at.desc(), versions.c.id)
        .limit(MAX_CHILDREN + 1)
    )


_RELATIONS = {
    (side, seen): _relations(side, include_restricted=seen)
    for side in ("parents", "children")
    for seen in (True, False)
}


def _relations_query(
    side: str, include_restricted: RestrictedScope, visible: frozenset[str] | None
) -> Select[Any]:
    if is_precompiled(include_restricted, visible):
        return _RELATIONS[side, as_flag(include_restricted)]
    return _relations(side, include_restricted=include_restricted, visible=visible)


_CHILDREN_COUNT = select(func.count()).where(
    version_edges.c.parent_version_id == bindparam("version_id")
)


def _children_count(visible: frozenset[str] | None) -> Select[Any]:
    if visible is None:
        return _CHILDREN_COUNT
    return _CHILDREN_COUNT.where(visible_condition(version_edges.c.child_bucket_id, visible))


_BUILD_STATUSES = (
    select(builds.c.version_id, builds.c.status)
    .where(builds.c.version_id.in_(bindparam("ids", expanding=True)))
    .distinct()
)


def _step(walk: Any, near: Any, far: Any, lateral: bool, far_bucket: Any = None) -> Select[Any]:
    """One hop of a recursive walk: from each version of ``walk`` (matched on the edge
    column ``near``) to the version at the edge's ``far`` end (only into the buckets of
    the ``visible`` parameter when ``far_bucket``, that end's bucket column, is given).

    PostgreSQL plans a recursive join with a guessed work-table size, large enough that it
    hashes all of ``version_edges`` at every hop (a second per page at 100,000 edges); a
    ``LATERAL`` subquery makes each hop an index lookup per version instead. SQLite has no
    ``LATERAL`` and looks each one up anyway.
    """
    one = literal_column("1", Integer)
    joined = near == walk.c.vid
    if far_bucket is not None:
        joined = and_(joined, far_bucket.in_(bindparam("visible", expanding=True)))
    if not lateral:
        return select(far, one).where(joined)
    # OFFSET 0 keeps PostgreSQL from flattening the subquery back into a join.
    hop = select(far.label("vid")).where(joined).offset(0).lateral("hop")
    return select(hop.c.vid, one).select_from(walk).join(hop, true())


@cache
def _lineage_walk(max_nodes: int, lateral: bool, filtered: bool = False) -> CompoundSelect[Any]:
    """Candidates for a bucket's lineage, nearest first: ``(vid, hop, side)`` rows.

    ``own``: the bucket's versions that have a parent or a child, newest first (ids are
    ULIDs, so their order is creation order), at most ``max_nodes + 1``. From them, two
    recursive walks over ``version_edges``: up through parents and down through children,
    across buckets. ``UNION`` keeps each (version, hop) once, so diamonds and versions met
    twice do not multiply rows; each walk is read with a ``LIMIT``, and both SQLite and
    PostgreSQL stop a recursive query once its reader has what it asked for, so a lineage
    of a hundred thousand versions costs about as much as one of a few hundred. Rows come
    out breadth first (seeds with ``hop`` 0, then one hop further at a time).
    """
    e = version_edges
    zero = literal_column("0", Integer)
    bucket_id: Any = bindparam("bucket_id")
    visible: Any = bindparam("visible", expanding=True)
    # Each side keeps its newest first (a bounded top-N sort), then the union of both.
    newest_children = (
        select(e.c.child_version_id.label("vid"))
        .where(e.c.child_bucket_id == bucket_id)
        .where(e.c.parent_bucket_id.in_(visible) if filtered else true())
        .order_by(e.c.child_version_id.desc())
        .limit(max_nodes + 1)
        .subquery("newest_children")
    )
    newest_parents = (
        select(e.c.parent_version_id.label("vid"))
        .where(e.c.parent_bucket_id == bucket_id)
        .where(e.c.child_bucket_id.in_(visible) if filtered else true())
        .order_by(e.c.parent_version_id.desc())
        .limit(max_nodes + 1)
        .subquery("newest_parents")
    )
    related = union(select(newest_children.c.vid), select(newest_parents.c.vid)).subquery("related")
    own = select(related.c.vid).order_by(related.c.vid.desc()).limit(max_nodes + 1).cte("own")
    up = select(own.c.vid, zero.label("hop")).cte("lineage_up", recursive=True)
    up = up.union(
        _step(
            up,
            e.c.child_version_id,
            e.c.parent_version_id,
            lateral,
            e.c.parent_bucket_id if filtered else None,
        )
    )
    down = select(own.c.vid, zero.label("hop")).cte("lineage_down", recursive=True)
    down = down.union(
        _step(
            down,
            e.c.parent_version_id,
            e.c.child_version_id,
            lateral,
            e.c.child_bucket_id if filtered else None,
        )
    )
    reach = 2 * max_nodes + 2  # the seeds, then as many again beyond them
    ups = select(up.c.vid, up.c.hop).limit(reach).subquery("ups")
    downs = select(down.c.vid, down.c.hop).limit(reach).subquery("downs")
    return union_all(
        select(ups.c.vid, ups.c.hop, literal_column("'u'", String).label("side")),
        select(downs.c.vid, downs.c.hop, literal_column("'d'", String).label("side")),
    )


_LINEAGE_VERSIONS = (
    select(*_LV_COLUMNS)
    .select_from(versions)
    .join(buckets, buckets.c.id == versions.c.bucket_id)
    .where(versions.c.id.in_(bindparam("ids", expanding=True)))
)


def nearest(rows: Iterable[Any], max_nodes: int) -> tuple[list[str], bool]:
    """The versions to show, from :func:`_lineage_walk`'s rows, and whether any was left out.

    The bucket's own versions first, newest first; then ancestors and descendants in
    turns, nearest first. When they are too many, the bucket's own take at most half of
    the places (the newest), so the rest of the graph still shows where they came from
    and what was built from them.
    """
    own: list[str] = []
    walked: dict[str, list[str]] = {"u": [], "d": []}
    fetched = {"u": 0, "d": 0}
    for r in rows:
        fetched[r.side] += 1
        (own if r.hop == 0 else walked[r.side]).append(r.vid)
    own = list(dict.fromkeys(own))
    seen = set(own)
    others: list[str] = []
    ups, downs = walked["u"], walked["d"]
    for i in range(max(len(ups), len(downs))):
        for side in (ups, downs):
            if i < len(side) and side[i] not in seen:
                seen.add(side[i])
                others.append(side[i])
    keep_own = min(len(own), max(max_nodes - len(others), max_nodes // 2))
    chosen = own[:keep_own] + others[: max_nodes - keep_own]
    reach = 2 * max_nodes + 2
    cut = len(own) + len(others) > max_nodes or reach in fetched.values()
    return chosen, cut


def _lineage_edges(*, include_restricted: RestrictedScope) -> Select[Any]:
    e = version_edges.c
    return (
        select(
            e.child_version_id,
            e.parent_version_id,
            e.parent_channel_id,
            channels.c.id.label("ch_id"),
            channels.c.name.label("ch_name"),
            channels.c.version_id.label("ch_version_id"),
        )
        .select_from(version_edges)
        .outerjoin(channels, _channel_join(include_restricted))
        .where(
            e.child_version_id.in_(bindparam("ids", expanding=True)),
            e.parent_version_id.in_(bindparam("ids", expanding=True)),
        )
        .order_by(e.created_at, e.child_version_id, e.parent_version_id)
    )


_LINEAGE_EDGES = {seen: _lineage_edges(include_restricted=seen) for seen in (True, False)}


class LineageRepo:
    """Relations of one version and the lineage of a bucket (see the section above)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def relations(
        self,
        version_id: str,
        *,
        include_restricted: RestrictedScope,
        visible: frozenset[str] | None = None,
    ) -> Relations:
        """The version's parents, and its newest children (any bucket in ``visible``) with
        their total."""
        params = {"version_id": version_id}
        parents = list(
            self.conn.execute(
                _relations_query("parents", include_restricted, visible), {"ids": [version_id]}
            )
        )
        children = list(
            self.conn.execute(_relations_query("children", include_restricted, visible), params)
        )
        total = len(children)
        if total > MAX_CHILDREN:
            children = children[:MAX_CHILDREN]
            total = int(self.conn.execute(_children_count(visible), params).scalar_one())
        statuses = self.build_statuses(_lineage_version(r) for r in (*parents, *children))
        return Relations(
            parents=[_relation(r, statuses) for r in parents],
            children=[_relation(r, statuses) for r in children],
            children_total=total,
        )

    def parents(
        self,
        version_ids: Iterable[str],
        *,
        include_restricted: RestrictedScope,
        visible: frozenset[str] | None = None,
    ) -> dict[str, list[Relation]]:
        """The parents (in buckets of ``visible``) of each of several versions (two queries
        at most)."""
        ids = sorted(set(version_ids))
        if not ids:
            return {}
        query = _relations_query("parents", include_restricted, visible)
        rows = list(self.conn.execute(query, {"ids": ids}))
        statuses = self.build_statuses(_lineage_version(r) for r in rows)
        out: dict[str, list[Relation]] = {i: [] for i in ids}
        for r in rows:
            out[r.of_child].append(_relation(r, statuses))
        return out

    def lineage(
        self,
        bucket_id: str,
        bucket_name: str,
        *,
        include_restricted: RestrictedScope,
        max_nodes: int = MAX_LINEAGE_NODES,
        visible: frozenset[str] | None = None,
    ) -> Lineage:
        """The bucket's lineage (see :func:`_lineage_walk`). With ``visible``, the walk
        neither reaches nor crosses a version in a bucket outside it: for the caller, those
        versions and their edges do not exist."""
        postgres = self.conn.dialect.name == "postgresql"
        params: dict[str, Any] = {"bucket_id": bucket_id}
        if visible is not None:
            params["visible"] = sorted(visible)
        walked = self.conn.execute(_lineage_walk(max_nodes, postgres, visible is not None), params)
        ids, cut = nearest(walked, max_nodes)
        result = Lineage(bucket_id=bucket_id, bucket_name=bucket_name, truncated=cut)
        if not ids:
            return result
        rows = {r.id: r for r in self.conn.execute(_LINEAGE_VERSIONS, {"ids": ids})}
        found = [_lineage_version(rows[i]) for i in ids if i in rows]
        statuses = self.build_statuses(found)
        result.nodes = {v.id: _with_statuses(v, statuses) for v in found}
        edges = (
            _LINEAGE_EDGES[as_flag(include_restricted)]
            if is_precompiled(include_restricted)
            else _lineage_edges(include_restricted=include_restricted)
        )
        for r in self.conn.execute(edges, {"ids": list(result.nodes)}):
            result.edges.append(
                LineageEdge(
                    parent_id=r.parent_version_id,
                    child_id=r.child_version_id,
                    channel_name=r.ch_name or "",
                    status=_edge_status(r),
                )
            )
        return result

    def build_statuses(self, found: Iterable[LineageVersion]) -> dict[str, tuple[BuildStatus, ...]]:
        """The distinct build statuses of the incomplete, unrevoked versions among
        ``found`` (nothing else needs them to tell its status); no query if none."""
        wanted = {v.id for v in found if v.number is None and v.revoke_at is None}
        if not wanted:
            return {}
        out: dict[str, list[BuildStatus]] = defaultdict(list)
        for r in self.conn.execute(_BUILD_STATUSES, {"ids": sorted(wanted)}):
            out[r.version_id].append(BuildStatus(r.status))
        return {k: tuple(v) for k, v in out.items()}


def _lineage_version(row: Any) -> LineageVersion:
    return LineageVersion(
        id=row.id,
        bucket_name=row.bucket_name,
        fingerprint=row.fingerprint,
        number=row.number,
        created_at=row.created_at,
        revoke_at=row.revoke_at,
        revocation_message=row.revocation_message,
        revocation_author=row.revocation_author,
        revocation_type=RevocationType(row.revocation_type) if row.revocation_type else None,
    )


def _with_statuses(
    version: LineageVersion, statuses: dict[str, tuple[BuildStatus, ...]]
) -> LineageVersion:
    found = statuses.get(version.id)
    return replace(version, build_statuses=found) if found else version


def _edge_status(row: Any) -> AncestryStatus:
    return edge_status(
        row.parent_channel_id,
        row.ch_version_id,
        row.parent_version_id,
        channel_exists=row.ch_id is not None,
    )


def _relation(row: Any, statuses: dict[str, tuple[BuildStatus, ...]]) -> Relation:
    return Relation(
        version=_with_statuses(_lineage_version(row), statuses),
        channel_name=row.ch_name or "",
        status=_edge_status(row),
    )


__all__ = ["AncestryRepo", "LineageRepo"]

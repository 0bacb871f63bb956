"""Loading complete read models (versions with builds, buckets with summaries).

Every loader runs a fixed number of queries whatever the number of objects,
builds or artifacts, so list endpoints have no N+1. Every loader applies the
visibility rules (:mod:`packyard.domain.visibility`: restricted channels, per
bucket; :mod:`packyard.domain.access`: the buckets a caller sees) for the
caller it loads for.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    bindparam,
    exists,
    false,
    func,
    null,
    or_,
    select,
    union_all,
)

from packyard.domain.access import RestrictedScope, visible_buckets
from packyard.domain.enums import AncestryStatus
from packyard.domain.models import Bucket, Caller, Channel, Version
from packyard.domain.rules import aggregate_status, channel_edge_statuses
from packyard.domain.visibility import restricted_scope, sees_restricted_channels
from packyard.services.lookup import found_channel, found_version
from packyard.store.channels import ChannelRepo
from packyard.store.schema import buckets, channels, version_edges
from packyard.store.types import in_list
from packyard.store.versions import VersionRepo
from packyard.store.visibility import (
    PerScope,
    restricted_condition,
    visible_condition,
)


def find_loaded_channel(conn: Connection, caller: Caller, bucket_name: str, name: str) -> Channel:
    """:func:`find_channel` then :func:`load_channels`, in one statement."""
    visible = visible_buckets(caller)
    found = ChannelRepo(conn).find_loaded(
        caller.project_id,
        bucket_name,
        name,
        include_restricted=restricted_scope(caller),
        visible=visible,
    )
    channel = found_channel(caller, bucket_name, name, found)
    if channel.version is not None:
        hide_unseen_origins([channel.version], visible)
    return channel


def find_loaded_version(
    conn: Connection, caller: Caller, bucket_name: str, fingerprint: str
) -> Version:
    """:func:`find_version` then :func:`load_versions`, in one statement."""
    visible = visible_buckets(caller)
    found = VersionRepo(conn).find_loaded_in_bucket(
        caller.project_id,
        bucket_name,
        fingerprint,
        include_restricted=restricted_scope(caller),
        visible=visible,
    )
    _, version = found_version(caller, bucket_name, fingerprint, found)
    hide_unseen_origins([version], visible)
    return version


def load_versions(conn: Connection, items: Sequence[Version], caller: Caller) -> None:
    """Attach builds and ancestry status to each version, as the caller may see them."""
    visible = visible_buckets(caller)
    VersionRepo(conn).hydrate(items, include_restricted=restricted_scope(caller), visible=visible)
    hide_unseen_origins(items, visible)
    hide_unseen_descendants(conn, items, visible)


def loaded_versions(conn: Connection, ids: Iterable[str], caller: Caller) -> dict[str, Version]:
    """The versions ``ids`` by id, read and loaded as :func:`load_versions` does, in one
    statement."""
    visible = visible_buckets(caller)
    found = VersionRepo(conn).get_loaded(
        ids, include_restricted=restricted_scope(caller), visible=visible
    )
    hide_unseen_origins(found.values(), visible)
    return found


def hide_unseen_descendants(
    conn: Connection, items: Iterable[Version], visible: frozenset[str] | None
) -> None:
    """``has_descendants`` counts only descendants in buckets the caller sees (one query,
    only for a caller who does not see every bucket)."""
    if visible is None:
        return
    parents = {v.id: v for v in items if v.has_descendants}
    if not parents:
        return
    seen = set(
        conn.execute(
            select(version_edges.c.parent_version_id)
            .where(
                version_edges.c.parent_version_id.in_(list(parents)),
                visible_condition(version_edges.c.child_bucket_id, visible),
            )
            .distinct()
        ).scalars()
    )
    for version_id, v in parents.items():
        v.has_descendants = version_id in seen


def hide_unseen_origins(items: Iterable[Version], visible: frozenset[str] | None) -> None:
    """Forget which version an inherited revocation came from when that version lies in a
    bucket the caller does not see: the revocation applies, its origin is not named."""
    if visible is None:
        return
    for v in items:
        origin = v.revocation_inherited_from
        if origin is not None and origin.bucket_id not in visible:
            v.revocation_inherited_from = None


def load_channels(conn: Connection, items: Sequence[Channel], caller: Caller) -> None:
    """Embed each channel's assigned version, fully loaded."""
    found = loaded_versions(conn, (c.version_id for c in items if c.version_id), caller)
    for c in items:
        c.version = found.get(c.version_id) if c.version_id else None


def load_buckets(conn: Connection, items: Sequence[Bucket], caller: Caller) -> None:
    """Embed latest versions and roll up ancestry status for each bucket.

    A bucket whose managed `latest` channel the caller may not see shows no
    latest version, nor the parents status that comes from it.
    """
    if not items:
        return
    hidden = hidden_latest(conn, caller, [b.id for b in items])
    shown = (b.latest_version_id for b in items if b.latest_version_id and b.id not in hidden)
    latest = loaded_versions(conn, shown, caller)
    children = _children_status(
        conn,
        [b.id for b in items],
        include_restricted=restricted_scope(caller),
        visible=visible_buckets(caller),
    )
    for b in items:
        b.latest_version = latest.get(b.latest_version_id) if b.latest_version_id else None
        b.parents_status = b.latest_version.parents_status if b.latest_version else None
        b.children_status = children.get(b.id)


# Buckets (of ``ids``) whose managed `latest` channel is restricted.
_RESTRICTED_LATEST = select(channels.c.bucket_id).where(
    channels.c.bucket_id.in_(bindparam("ids", expanding=True)),
    channels.c.managed.is_(True),
    channels.c.restricted.is_(True),
)


def hidden_latest(conn: Connection, caller: Caller, bucket_ids: Iterable[str]) -> set[str]:
    """The buckets among ``bucket_ids`` whose `latest` channel ``caller`` may not see
    (restricted, in a bucket whose restricted channels it does not see).

    Their ``latest_version_id`` mirrors that channel's assignment, so it must not
    reach the caller in any form. No query for a caller who sees every channel.
    """
    ids = [i for i in bucket_ids if not sees_restricted_channels(caller, i)]
    if not ids:
        return set()
    return {r.bucket_id for r in conn.execute(_RESTRICTED_LATEST, {"ids": ids})}


def _children_statuses(scope: RestrictedScope, visible: frozenset[str] | None) -> Select[Any]:
    """Per bucket of ``ids``, one row per channel its child edges were recorded through
    (and one for edges recorded through none): whether the caller sees the channel, the
    version it serves, and whether any edge recorded that version or another one.

    The statuses of a bucket's children follow from those rows alone
    (:func:`packyard.domain.rules.channel_edge_statuses`), so the cost is a few index
    seeks per channel, whatever the number of child versions: the channels are found
    one after the other, each the smallest channel id above the previous one (a
    recursive walk over ``ix_version_edges_parent_channel``, which neither planner does
    by itself), and the edges are only probed for existence. An edge recorded through a
    restricted channel the caller may not see counts as recorded through none
    (UNDETERMINED), as the ancestry listing shows it; an edge into a bucket it does not
    see does not count.
    """
    e = version_edges.alias("e")
    shown = visible_condition(e.c.child_bucket_id, visible)

    def first_channel(bucket_id: Any, above: Any = None) -> Any:
        channel = e.c.parent_channel_id
        after = channel.is_not(None) if above is None else channel > above
        return (
            select(func.min(channel))
            .where(e.c.parent_bucket_id == bucket_id, after, shown)
            .scalar_subquery()
        )

    used = (
        select(buckets.c.id.label("bucket_id"), first_channel(buckets.c.id).label("channel_id"))
        .where(in_list(buckets.c.id, "ids"))
        .cte("used", recursive=True)
    )
    used = used.union_all(
        select(used.c.bucket_id, first_channel(used.c.bucket_id, used.c.channel_id)).where(
            used.c.channel_id.is_not(None)
        )
    )

    def recorded(*condition: ColumnElement[bool]) -> ColumnElement[bool]:
        return exists().where(
            e.c.parent_bucket_id == used.c.bucket_id,
            e.c.parent_channel_id == used.c.channel_id,
            shown,
            *condition,
        )

    serving = channels.c.version_id
    through_channels = (
        select(
            used.c.bucket_id,
            channels.c.id.is_not(None).label("seen"),
            serving.label("serving"),
            recorded(e.c.parent_version_id == serving).label("current"),
            # Two range seeks: "<>" would read every edge of the serving version first.
            or_(
                recorded(e.c.parent_version_id < serving),
                recorded(e.c.parent_version_id > serving),
            ).label("other"),
        )
        .select_from(
            used.outerjoin(
                channels,
                and_(
                    channels.c.id == used.c.channel_id,
                    restricted_condition(channels.c.restricted, channels.c.bucket_id, scope),
                ),
            )
        )
        .where(used.c.channel_id.is_not(None))
    )
    through_none = select(buckets.c.id, false(), null(), false(), false()).where(
        in_list(buckets.c.id, "ids"),
        exists().where(
            e.c.parent_bucket_id == buckets.c.id, e.c.parent_channel_id.is_(None), shown
        ),
    )
    rows = union_all(through_channels, through_none).subquery("statuses")
    return select(*rows.c)


_CHILDREN_STATUSES = PerScope(_children_statuses)


def _children_status(
    conn: Connection,
    bucket_ids: list[str],
    *,
    include_restricted: RestrictedScope,
    visible: frozenset[str] | None,
) -> dict[str, AncestryStatus | None]:
    """The rolled-up status of each bucket's child edges."""
    statuses: dict[str, list[AncestryStatus]] = defaultdict(list)
    params = {"ids": bucket_ids}
    for r in _CHILDREN_STATUSES.rows(conn, params, include_restricted, visible):
        statuses[r.bucket_id].extend(
            channel_edge_statuses(
                r.serving, channel_seen=r.seen, any_current=r.current, any_other=r.other
            )
        )
    return {k: aggregate_status(v) for k, v in statuses.items()}

"""Ancestry: which parent version each image was built from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, literal, select
from sqlalchemy.exc import IntegrityError

from packyard.domain.access import can_view_bucket, visible_buckets
from packyard.domain.ancestry import AncestryRelation, parse_ancestry_type
from packyard.domain.enums import AncestryType, RevocationType
from packyard.domain.lineage import MAX_LINEAGE_NODES, Lineage
from packyard.domain.models import Build, Caller, Version
from packyard.domain.paging import Page, PageRequest
from packyard.domain.visibility import restricted_scope, sees_restricted_channels
from packyard.errors import ApiError, Code, invalid, not_found
from packyard.services.lookup import bucket_or_404, channel_or_404
from packyard.services.views import hidden_latest
from packyard.store import generations
from packyard.store.ancestry import AncestryRepo, LineageRepo
from packyard.store.engine import Store
from packyard.store.schema import buckets, builds, channels, version_edges, versions
from packyard.store.versions import VersionRepo


class AncestryService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def list_page(
        self,
        caller: Caller,
        bucket_name: str,
        *,
        ancestry_type: str | None,
        version_fingerprint: str | None,
        channel_name: str | None,
        page: PageRequest,
    ) -> Page[AncestryRelation]:
        """ListBucketAncestry: parents of one version and/or children of the bucket.

        Parents are those of ``version_fingerprint`` (default: the version on
        `latest`); children can be limited to those built from a version taken
        from ``channel_name``.
        """
        kind = parse_ancestry_type(ancestry_type)
        want_parents = kind in (AncestryType.UNSET, AncestryType.PARENTS)
        want_children = kind in (AncestryType.UNSET, AncestryType.CHILDREN)
        with self.store.read() as conn:
            bucket = bucket_or_404(conn, caller, bucket_name)
            parents_of: str | None = None
            if want_parents:
                if version_fingerprint:
                    version = VersionRepo(conn).get(bucket.id, version_fingerprint)
                    if version is None:
                        raise not_found(
                            f"Error: The version with identifier {version_fingerprint} does not "
                            "exist."
                        )
                    parents_of = version.id
                elif bucket.id not in hidden_latest(conn, caller, [bucket.id]):
                    # The version on `latest`: not for a caller who may not see `latest`.
                    parents_of = bucket.latest_version_id
            channel_id: str | None = None
            if want_children and channel_name:
                channel_id = channel_or_404(conn, caller, bucket, channel_name).id
            return AncestryRepo(conn).relations_page(
                bucket.id,
                parents_of=parents_of,
                include_children=want_children,
                children_channel_id=channel_id,
                include_restricted=restricted_scope(caller),
                page=page,
                visible=visible_buckets(caller),
            )

    def lineage(
        self, caller: Caller, bucket_name: str, *, max_nodes: int = MAX_LINEAGE_NODES
    ) -> Lineage:
        """The bucket's whole lineage: its versions that have parents or children, all
        their ancestors and all their descendants, across buckets, with the edges between
        them. At most ``max_nodes`` versions, the nearest to the bucket (``truncated``
        says when more exist); five statements at most, however deep or wide it is. A
        caller with bucket grants only walks through the buckets it sees."""
        with self.store.read() as conn:
            bucket = bucket_or_404(conn, caller, bucket_name)
            return LineageRepo(conn).lineage(
                bucket.id,
                bucket.name,
                include_restricted=restricted_scope(caller),
                max_nodes=max_nodes,
                visible=visible_buckets(caller),
            )


def _override_error(field: str) -> ApiError:
    # Live HCP answers this with HTTP 400 and code 6.
    return ApiError(
        Code.ALREADY_EXISTS,
        f"You cannot override a build's {field} if it has already been set.",
        http_status=400,
    )


def record_parent(
    conn: Connection,
    caller: Caller,
    child: Version,
    build: Build,
    *,
    parent_version_id: str | None,
    parent_channel_id: str | None,
    now: datetime,
    values: dict[str, Any],
) -> None:
    """Validate and record a build's parent ids (set once) as a child → parent edge.

    Adds the build columns to ``values``. A child recorded from a parent that is
    already revoked (or scheduled to be) inherits that revocation now.
    """
    if parent_version_id is None and parent_channel_id is None:
        return
    if (
        build.parent_version_id
        and parent_version_id
        and parent_version_id != build.parent_version_id
    ):
        raise _override_error("parent_version_id")
    if (
        build.parent_channel_id
        and parent_channel_id
        and parent_channel_id != build.parent_channel_id
    ):
        raise _override_error("parent_channel_id")
    version_id = parent_version_id or build.parent_version_id
    channel_id = parent_channel_id or build.parent_channel_id
    if version_id is None:
        raise invalid("parent_channel_id requires parent_version_id.", field="parent_channel_id")
    if version_id == child.id:
        raise invalid("A version cannot be its own parent.", field="parent_version_id")

    parent = conn.execute(
        select(versions.c.id, versions.c.bucket_id, buckets.c.name.label("bucket_name"))
        .join(buckets, buckets.c.id == versions.c.bucket_id)
        .where(versions.c.id == version_id, buckets.c.project_id == caller.project_id)
    ).first()
    if parent is None or not can_view_bucket(caller, parent.bucket_id):
        raise invalid(
            f"Parent version {version_id[:64]} does not exist in this project.",
            field="parent_version_id",
        )
    if channel_id is not None:
        found = conn.execute(
            select(channels.c.id, channels.c.restricted).where(
                channels.c.id == channel_id, channels.c.bucket_id == parent.bucket_id
            )
        ).first()
        hidden = found is not None and found.restricted
        if found is None or (hidden and not sees_restricted_channels(caller, parent.bucket_id)):
            raise invalid(
                f"Parent channel {channel_id[:64]} is not a channel of the parent version's "
                "bucket.",
                field="parent_channel_id",
            )
    if _is_descendant(conn, ancestor_id=child.id, candidate_id=version_id):
        raise invalid(
            "The parent version descends from this version; ancestry cannot form a cycle.",
            field="parent_version_id",
        )

    values["parent_version_id"] = version_id
    values["parent_channel_id"] = channel_id
    existing = conn.execute(
        select(version_edges.c.parent_channel_id).where(
            version_edges.c.child_version_id == child.id,
            version_edges.c.parent_version_id == version_id,
        )
    ).first()
    if existing is None:
        generations.touch(conn, parent.bucket_name)  # its has_descendants and children change
        try:
            with conn.begin_nested():
                conn.execute(
                    version_edges.insert().values(
                        child_version_id=child.id,
                        parent_version_id=version_id,
                        parent_channel_id=channel_id,
                        child_bucket_id=child.bucket_id,
                        parent_bucket_id=parent.bucket_id,
                        created_at=now,
                    )
                )
        except IntegrityError:
            pass
    elif existing.parent_channel_id is None and channel_id is not None:
        generations.touch(conn, parent.bucket_name)
        conn.execute(
            version_edges.update()
            .where(
                version_edges.c.child_version_id == child.id,
                version_edges.c.parent_version_id == version_id,
            )
            .values(parent_channel_id=channel_id)
        )
    inherit_from_parent(conn, child, version_id)


def forget_build_parent(conn: Connection, build: Build) -> None:
    """After ``build`` is deleted: drop its edge unless another build still names that parent."""
    if build.parent_version_id is None:
        return
    still_named = conn.execute(
        select(builds.c.id)
        .where(
            builds.c.version_id == build.version_id,
            builds.c.parent_version_id == build.parent_version_id,
        )
        .limit(1)
    ).first()
    if still_named is None:
        conn.execute(
            version_edges.delete().where(
                version_edges.c.child_version_id == build.version_id,
                version_edges.c.parent_version_id == build.parent_version_id,
            )
        )


def inherit_from_parent(conn: Connection, child: Version, parent_id: str) -> None:
    """Record-time inheritance: copy a parent's (scheduled) revocation onto a child."""
    parent = VersionRepo(conn).get_by_id(parent_id)
    if parent is None or parent.revoke_at is None:
        return
    if child.revocation_type is RevocationType.MANUAL:
        return  # an explicit revocation wins over an inherited one
    if child.revoke_at is not None and child.revoke_at <= parent.revoke_at:
        return  # among inherited revocations the earliest wins
    origin = (
        parent.revocation_inherited_from.version_id
        if parent.revocation_type is RevocationType.INHERITED and parent.revocation_inherited_from
        else parent.id
    )
    VersionRepo(conn).update(
        child.id,
        revoke_at=parent.revoke_at,
        revocation_message=parent.revocation_message,
        revocation_author=parent.revocation_author,
        revocation_type=RevocationType.INHERITED.value,
        revocation_inherited_from=origin,
    )
    child.revoke_at = parent.revoke_at


def _is_descendant(conn: Connection, *, ancestor_id: str, candidate_id: str) -> bool:
    """Whether ``candidate_id`` is ``ancestor_id`` or one of its transitive descendants."""
    tree = select(literal(ancestor_id).label("vid")).cte("descendants", recursive=True)
    tree = tree.union(
        select(version_edges.c.child_version_id).where(
            version_edges.c.parent_version_id == tree.c.vid
        )
    )
    found = conn.execute(select(tree.c.vid).where(tree.c.vid == candidate_id).limit(1)).first()
    return found is not None

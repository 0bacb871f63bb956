"""Version, build and artifact storage, and the constant-query version loader."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from operator import attrgetter
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Insert,
    Select,
    Update,
    and_,
    bindparam,
    delete,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    update,
)

from packyard.domain.access import RestrictedScope
from packyard.domain.enums import BuildStatus, RevocationType, TemplateType, VersionStatus
from packyard.domain.models import Artifact, Bucket, Build, RevokedAncestor, Version
from packyard.domain.paging import Page, PageRequest, SortKey
from packyard.domain.rules import aggregate_status, edge_status
from packyard.store.buckets import LABELED_COLUMNS, bucket_from_labeled
from packyard.store.lean import LeanSelect
from packyard.store.pagination import Listing, SortColumn, paginate
from packyard.store.schema import (
    artifacts,
    buckets,
    builds,
    channels,
    version_edges,
    versions,
)
from packyard.store.types import in_list, json_rows, json_value, utc_from_json
from packyard.store.visibility import PerScope, restricted_condition, visible_condition

_anc = versions.alias("anc")
_anc_bucket = buckets.alias("anc_bucket")
# Aliased so that a statement that also reads a channel (ChannelRepo.find_loaded) does not
# shadow it in the subquery.
_parent_channel = channels.alias("parent_channel")


def _has_descendants(visible: frozenset[str] | None) -> ColumnElement[bool]:
    """Whether a version has children, counting only those in buckets ``visible``."""
    condition = version_edges.c.parent_version_id == versions.c.id
    if visible is not None:
        condition = and_(condition, visible_condition(version_edges.c.child_bucket_id, visible))
    return exists().where(condition).correlate(versions).label("has_descendants")


def _version_columns(visible: frozenset[str] | None = None) -> tuple[Any, ...]:
    """What version_from_row reads: the row, its bucket's name and the read-model extras
    (``has_descendants`` as ``visible`` lets the caller see it)."""
    return (
        versions,
        buckets.c.name.label("bucket_name"),
        _anc.c.fingerprint.label("anc_fingerprint"),
        _anc.c.number.label("anc_number"),
        _anc_bucket.c.name.label("anc_bucket_name"),
        _has_descendants(visible),
        _anc.c.bucket_id.label("anc_bucket_id"),
    )


_VERSION_COLUMNS = _version_columns()


def _with_origin(query: Select[Any]) -> Select[Any]:
    """``query``, which reads ``versions``, joined to where an inherited revocation comes
    from (the ``anc_*`` columns of :func:`_version_columns`)."""
    return query.outerjoin(_anc, _anc.c.id == versions.c.revocation_inherited_from).outerjoin(
        _anc_bucket, _anc_bucket.c.id == _anc.c.bucket_id
    )


def _version_select(visible: frozenset[str] | None = None) -> Select[Any]:
    return _with_origin(
        select(*_version_columns(visible)).join(buckets, buckets.c.id == versions.c.bucket_id)
    )


def _listing_select() -> Select[Any]:
    """:func:`_version_select` for a bucket's listing: the same columns, the bucket's name
    read by a subquery rather than a join, so that ``versions`` leads the query plan and a
    page is read in the order of ``ix_versions_bucket_created`` (SQLite otherwise starts
    from the small ``buckets`` table and sorts every version of the bucket)."""
    name = (
        select(buckets.c.name)
        .where(buckets.c.id == versions.c.bucket_id)
        .correlate(versions)
        .scalar_subquery()
        .label("bucket_name")
    )
    return _with_origin(select(versions, name, *_VERSION_COLUMNS[2:]).select_from(versions))


_BUCKET_BY_NAME = and_(
    buckets.c.project_id == bindparam("project_id"), buckets.c.name == bindparam("name")
)
_FINGERPRINT = versions.c.fingerprint == bindparam("fingerprint")
_FINGERPRINT_IN_BUCKET = and_(versions.c.bucket_id == buckets.c.id, _FINGERPRINT)


def _with_version(
    query: Select[Any], on: ColumnElement[bool], visible: frozenset[str] | None = None
) -> Select[Any]:
    """``query``, which reads a bucket (``buckets``), with the version of that bucket that
    ``on`` matches, if any: its columns and read-model extras (:func:`version_from_row`)."""
    return _with_origin(
        query.add_columns(*_version_columns(visible)).outerjoin(
            versions, and_(versions.c.bucket_id == buckets.c.id, on)
        )
    )


# A bucket and one of its versions in one query. Readers take the bucket and, if the
# version exists, the version (with its read-model extras, or loaded); writers lock both
# rows (the bucket first, as bucket_or_404 then version_or_10 do) and take the version
# row alone.
_BUCKET_NAMED = select(*LABELED_COLUMNS).select_from(buckets).where(_BUCKET_BY_NAME)
_IN_BUCKET = LeanSelect(_with_version(_BUCKET_NAMED, _FINGERPRINT))
_IN_BUCKET_LOCKED = (
    select(*LABELED_COLUMNS, versions)
    .select_from(buckets)
    .join(versions, _FINGERPRINT_IN_BUCKET)
    .where(_BUCKET_BY_NAME)
    .with_for_update(of=[buckets, versions])
)


# The read path's statements are built once: constructing SQLAlchemy expressions on
# every request costs more than running the SQL.
_BY_FINGERPRINT = LeanSelect(
    _version_select().where(
        versions.c.bucket_id == bindparam("bucket_id"),
        versions.c.fingerprint == bindparam("fingerprint"),
    )
)
_BY_IDS = LeanSelect(_version_select().where(in_list(versions.c.id, "ids")))


def _parent_edges(scope: RestrictedScope, visible: frozenset[str] | None) -> ColumnElement[Any]:
    """A version's parent edges as one JSON column: ``[parent version, parent channel, the
    channel if the caller sees it, its current version]`` per edge.

    A parent channel the caller may not see (``scope``, see
    :mod:`packyard.domain.visibility`) is not joined: for that caller, the edge was
    recorded through no channel. An edge from a bucket outside ``visible`` is left out.
    """
    joined = and_(
        _parent_channel.c.id == version_edges.c.parent_channel_id,
        restricted_condition(_parent_channel.c.restricted, _parent_channel.c.bucket_id, scope),
    )
    return (
        select(
            json_rows(
                version_edges.c.parent_version_id,
                version_edges.c.parent_channel_id,
                _parent_channel.c.id,
                _parent_channel.c.version_id,
            )
        )
        .select_from(version_edges)
        .outerjoin(_parent_channel, joined)
        .where(
            version_edges.c.child_version_id == versions.c.id,
            visible_condition(version_edges.c.parent_bucket_id, visible),
        )
        .correlate(versions)
        .scalar_subquery()
        .label("edges")
    )


# Rows read as they are used: on PostgreSQL through a server-side cursor, a batch at a time,
# rather than the whole result in libpq's memory first (SQLite steps its cursor anyway).
_STREAMED: dict[str, Any] = {"stream_results": True, "max_row_buffer": 500}

# A version's builds as one JSON column, each with its artifacts (one row per version
# whatever its builds and artifacts), in Build's field order after its version id.
_BUILDS = (
    select(
        json_rows(
            builds.c.id,
            builds.c.component_type,
            builds.c.packer_run_uuid,
            builds.c.platform,
            builds.c.status,
            builds.c.source_external_identifier,
            json_value(builds.c.labels),
            json_value(builds.c.metadata),
            builds.c.parent_version_id,
            builds.c.parent_channel_id,
            builds.c.created_at,
            builds.c.updated_at,
            json_value(
                select(
                    json_rows(
                        artifacts.c.id,
                        artifacts.c.external_identifier,
                        artifacts.c.region,
                        artifacts.c.created_at,
                    )
                )
                .where(artifacts.c.build_id == builds.c.id)
                .scalar_subquery()
            ),
        )
    )
    .where(builds.c.version_id == versions.c.id)
    .correlate(versions)
    .scalar_subquery()
    .label("builds")
)


# The parent edges of versions (their ancestry status without their builds).
PARENT_EDGES = PerScope(
    lambda scope, visible: select(versions.c.id, _parent_edges(scope, visible)).where(
        in_list(versions.c.id, "ids")
    )
)
# What VersionRepo.hydrate reads: the versions' builds and parent edges.
_HYDRATION = PerScope(
    lambda scope, visible: select(versions.c.id, _BUILDS, _parent_edges(scope, visible)).where(
        in_list(versions.c.id, "ids")
    )
)
# What VersionRepo.get_loaded reads: the versions with their read-model extras, builds and
# parent edges.
_LOADED = PerScope(
    lambda scope, visible: (
        _version_select(visible)
        .add_columns(_BUILDS, _parent_edges(scope, visible))
        .where(in_list(versions.c.id, "ids"))
    )
)


def with_loaded_version(
    query: Select[Any],
    on: ColumnElement[bool],
    scope: RestrictedScope,
    visible: frozenset[str] | None,
) -> Select[Any]:
    """:func:`_with_version` with the version's builds and parent edges as the caller sees
    them (:func:`loaded_version_from_row`): a version read as ``get_loaded`` reads it."""
    return _with_version(query, on, visible).add_columns(_BUILDS, _parent_edges(scope, visible))


# What VersionRepo.find_loaded_in_bucket reads.
_LOADED_IN_BUCKET = PerScope(
    lambda scope, visible: with_loaded_version(_BUCKET_NAMED, _FINGERPRINT, scope, visible)
)

_BY_FINGERPRINTS = _version_select().where(
    versions.c.bucket_id == bindparam("bucket_id"),
    versions.c.fingerprint.in_(bindparam("fps", expanding=True)),
)


def _newest_complete(*, below: bool) -> Select[Any]:
    """The newest complete versions of a bucket (numbered below ``below``), newest first.

    The ids come from a query of ``versions`` alone, which walks the (bucket, number)
    unique index backwards and stops at the limit; joined to the read model's other
    tables in the same query, SQLite may sort every version of the bucket first.
    """
    newest = (
        select(versions.c.id)
        .where(versions.c.bucket_id == bindparam("bucket_id"), versions.c.number.is_not(None))
        .order_by(versions.c.number.desc())
        .limit(bindparam("limit"))
    )
    if below:
        newest = newest.where(versions.c.number < bindparam("below"))
    return (
        _version_select()
        .where(versions.c.id.in_(newest.scalar_subquery()))
        .order_by(versions.c.number.desc())
    )


_NEWEST_COMPLETE = _newest_complete(below=False)
_NEWEST_COMPLETE_BELOW = _newest_complete(below=True)


def status_condition(status: VersionStatus, now: datetime) -> ColumnElement[bool]:
    """SQL for "the version's status at ``now`` is ``status``".

    The same decision as :func:`packyard.domain.rules.derive_version_status`, which
    derives it from the version's builds and ``revoke_at`` at read time.
    """
    v = versions.c

    def has(build_status: BuildStatus) -> ColumnElement[bool]:
        return exists().where(builds.c.version_id == v.id, builds.c.status == build_status.value)

    incomplete = and_(v.revoke_at.is_(None), v.number.is_(None))
    running, failed = has(BuildStatus.RUNNING), has(BuildStatus.FAILED)
    cancelled = has(BuildStatus.CANCELLED)
    any_build = exists().where(builds.c.version_id == v.id)
    match status:
        case VersionStatus.REVOKED:
            return v.revoke_at <= now
        case VersionStatus.REVOCATION_SCHEDULED:
            return v.revoke_at > now
        case VersionStatus.ACTIVE:
            return and_(v.revoke_at.is_(None), v.number.is_not(None))
        case VersionStatus.RUNNING:
            return and_(incomplete, or_(not_(any_build), running))
        case VersionStatus.FAILED:
            return and_(incomplete, not_(running), failed)
        case VersionStatus.CANCELLED:
            return and_(incomplete, not_(running), not_(failed), cancelled)
        case VersionStatus.INCOMPLETE:
            return and_(incomplete, any_build, not_(running), not_(failed), not_(cancelled))
        case _:
            return false()


_NEXT_NUMBER = select(func.coalesce(func.max(versions.c.number), 0) + 1).where(
    versions.c.bucket_id == bindparam("bucket_id")
)
_ARTIFACT_COLUMNS = (
    artifacts.c.id.label("artifact_id"),
    artifacts.c.external_identifier,
    artifacts.c.region,
    artifacts.c.created_at.label("artifact_created_at"),
)
_ARTIFACT_ORDER = (artifacts.c.created_at, artifacts.c.id)
# The same order, of Artifact objects, and the order of a version's Build objects.
_CREATION_ORDER = attrgetter("created_at", "id")
# A version's builds with their artifacts, one row per version (see _BUILDS).
_BUILDS_OF_VERSIONS = LeanSelect(
    select(versions.c.id, _BUILDS).where(in_list(versions.c.id, "ids"))
)
# What VersionRepo.get_with_builds reads: the versions with their read-model extras and builds.
_WITH_BUILDS = LeanSelect(
    _version_select().add_columns(_BUILDS).where(in_list(versions.c.id, "ids"))
)
# What a build update reads once it holds the bucket lock: every build of the version
# (their statuses decide completion), the artifacts of the updated build only, and
# the number completion would give the version.
_BUILDS_FOR_UPDATE = (
    select(builds, *_ARTIFACT_COLUMNS, _NEXT_NUMBER.scalar_subquery().label("next_number"))
    .outerjoin(
        artifacts,
        and_(artifacts.c.build_id == builds.c.id, builds.c.id == bindparam("build_id")),
    )
    .where(builds.c.version_id == bindparam("version_id"))
    .order_by(builds.c.created_at, builds.c.id, *_ARTIFACT_ORDER)
)
_ONE_BUILD = (
    select(builds, *_ARTIFACT_COLUMNS)
    .outerjoin(artifacts, artifacts.c.build_id == builds.c.id)
    .where(builds.c.version_id == bindparam("version_id"), builds.c.id == bindparam("build_id"))
    .order_by(*_ARTIFACT_ORDER)
)
_ARTIFACTS_OF = (
    select(artifacts.c.build_id, *_ARTIFACT_COLUMNS)
    .where(artifacts.c.build_id.in_(bindparam("ids", expanding=True)))
    .order_by(*_ARTIFACT_ORDER)
)
_STATUSES = select(builds.c.status).where(builds.c.version_id == bindparam("version_id"))

# Writes, built once too: an update sets the columns named by its parameters.
_INSERT_VERSION = versions.insert()
_UPDATE_VERSION = update(versions).where(versions.c.id == bindparam("row_id"))
_INSERT_BUILD = builds.insert()
_UPDATE_BUILD = update(builds).where(builds.c.id == bindparam("row_id"))
_INSERT_ARTIFACT = artifacts.insert()


@cache
def _build_write(
    insert: bool, names: tuple[str, ...], version_names: tuple[str, ...]
) -> Insert | Update:
    """A build's insert or update of the columns ``names`` (parameters ``build_<name>``,
    the updated row ``build_row_id``) carrying its version's update of ``version_names``
    (parameters ``version_<name>``, the row ``version_row_id``) in a data-modifying
    ``WITH`` (PostgreSQL): one round trip and one statement's driver work less per build
    write. Every parameter is prefixed: SQLAlchemy sets a column of either table whose
    name is a parameter's."""
    along = (
        update(versions)
        .where(versions.c.id == bindparam("version_row_id"))
        .values({versions.c[name]: bindparam(f"version_{name}") for name in version_names})
        .cte("version_along")
    )
    values: dict[Any, Any] = {builds.c[name]: bindparam(f"build_{name}") for name in names}
    if insert:
        return builds.insert().values(values).add_cte(along)
    return (
        update(builds).where(builds.c.id == bindparam("build_row_id")).values(values).add_cte(along)
    )


@dataclass(slots=True)
class BuildsUnderLock:
    """A version's builds as read by a writer holding the bucket lock."""

    builds: list[Build]  # every build; artifacts only for the build being updated
    next_number: int  # what completing the version now would number it


VERSION_SORT = {
    "created_at": SortColumn(versions.c.created_at, is_time=True),
    "updated_at": SortColumn(versions.c.updated_at, is_time=True),
    "fingerprint": SortColumn(versions.c.fingerprint),
    "name": SortColumn(func.coalesce(versions.c.number, 0)),
}

BUILD_SORT = {
    "created_at": SortColumn(builds.c.created_at, is_time=True),
    "updated_at": SortColumn(builds.c.updated_at, is_time=True),
    "component_type": SortColumn(builds.c.component_type),
    "platform": SortColumn(builds.c.platform),
}


class VersionRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- single rows -------------------------------------------------------
    def get(self, bucket_id: str, fingerprint: str, *, lock: bool = False) -> Version | None:
        if lock:
            self.conn.execute(
                select(versions.c.id)
                .where(versions.c.bucket_id == bucket_id, versions.c.fingerprint == fingerprint)
                .with_for_update()
            )
        row = _BY_FINGERPRINT.first(self.conn, {"bucket_id": bucket_id, "fingerprint": fingerprint})
        return version_from_row(row) if row else None

    def find_in_bucket(
        self, project_id: str, bucket_name: str, fingerprint: str
    ) -> tuple[Bucket, Version | None] | None:
        """The bucket named ``bucket_name`` and its version ``fingerprint``, in one query.

        ``None`` when the bucket does not exist; the version is ``None`` when it does
        not. The version is loaded like :meth:`get` loads it.
        """
        row = _IN_BUCKET.first(
            self.conn, {"project_id": project_id, "name": bucket_name, "fingerprint": fingerprint}
        )
        if row is None:
            return None
        return bucket_from_labeled(row), version_from_row(row) if row.id is not None else None

    def find_loaded_in_bucket(
        self,
        project_id: str,
        bucket_name: str,
        fingerprint: str,
        *,
        include_restricted: RestrictedScope,
        visible: frozenset[str] | None = None,
    ) -> tuple[Bucket, Version | None] | None:
        """:meth:`find_in_bucket` with the version loaded as :meth:`get_loaded` loads it,
        in one query."""
        params = {"project_id": project_id, "name": bucket_name, "fingerprint": fingerprint}
        found = _LOADED_IN_BUCKET.rows(self.conn, params, include_restricted, visible)
        if not found:
            return None
        row = found[0]
        return bucket_from_labeled(row), loaded_version_from_row(row) if row.id else None

    def lock_in_bucket(
        self, project_id: str, bucket_name: str, fingerprint: str
    ) -> tuple[Bucket, Version] | None:
        """Lock the bucket row, then the version row, and read both: one statement.

        ``None`` when either is missing at the statement's start (the caller tells
        which, and looks again after waiting for the bucket's lock). The version
        comes as its row alone: without the revocation origin and
        ``has_descendants`` of the read model, which writers do not use.
        """
        row = self.conn.execute(
            _IN_BUCKET_LOCKED,
            {"project_id": project_id, "name": bucket_name, "fingerprint": fingerprint},
        ).first()
        if row is None:
            return None
        bucket = bucket_from_labeled(row)
        return bucket, version_row(row, bucket.name)

    def get_by_id(self, version_id: str, *, lock: bool = False) -> Version | None:
        if lock:
            self.conn.execute(
                select(versions.c.id).where(versions.c.id == version_id).with_for_update()
            )
        row = _BY_IDS.first(self.conn, {"ids": [version_id]})
        return version_from_row(row) if row else None

    # --- 2021-04-30 API lookups (an iteration by its incremental version) ---
    def fingerprint_by_number(self, bucket_id: str, number: int) -> str | None:
        found = self.conn.execute(
            select(versions.c.fingerprint).where(
                versions.c.bucket_id == bucket_id, versions.c.number == number
            )
        ).scalar_one_or_none()
        return None if found is None else str(found)

    def get_many(self, version_ids: Iterable[str]) -> dict[str, Version]:
        ids = set(version_ids)
        if not ids:
            return {}
        return {r.id: version_from_row(r) for r in _BY_IDS.rows(self.conn, {"ids": list(ids)})}

    def stream_inherited_copies(self, origin_ids: Select[Any]) -> Iterator[tuple[Version, str]]:
        """The versions holding an inherited copy of the revocation of one of ``origin_ids``
        (a one-column selectable), with their builds (and their artifacts) and the origin
        each copies, by origin, then bucket name and number. One statement, whose rows
        become versions one at a time, as they are used: a revocation that reaches 10,000
        descendants records an event for each without holding them all (28 MB of versions
        at once, whose memory stayed with the process)."""
        result = self.conn.execute(
            _inherited_copies(origin_ids).add_columns(_BUILDS), execution_options=_STREAMED
        )
        for r in result:
            yield _with_builds(r), str(r.revocation_inherited_from)

    def inherited_copy_marks(self, origin_ids: Select[Any]) -> dict[str, CopyMark]:
        """The versions holding an inherited copy of the revocation of one of ``origin_ids``
        (a one-column selectable), by id, with the origin each copies and its ``revoke_at``,
        without loading them (one statement)."""
        rows = self.conn.execute(
            select(versions.c.id, versions.c.revocation_inherited_from, versions.c.revoke_at).where(
                *_holds_copy_of(origin_ids)
            )
        )
        return {r.id: CopyMark(str(r.revocation_inherited_from), r.revoke_at) for r in rows}

    def stream_with_builds(self, version_ids: Iterable[str]) -> Iterator[Version]:
        """Versions by id with their builds (and their artifacts), by bucket name and
        number, in one statement whose rows become versions as they are used (see
        :meth:`stream_inherited_copies`)."""
        result = self.conn.execute(
            select(versions, buckets.c.name.label("bucket_name"), _BUILDS)
            .join(buckets, buckets.c.id == versions.c.bucket_id)
            .where(in_list(versions.c.id, "ids"))
            .order_by(*_COPY_ORDER),
            {"ids": list(version_ids)},
            execution_options=_STREAMED,
        )
        for r in result:
            yield _with_builds(r)

    def insert(self, version: Version) -> None:
        self.conn.execute(
            _INSERT_VERSION,
            {
                "id": version.id,
                "bucket_id": version.bucket_id,
                "fingerprint": version.fingerprint,
                "number": version.number,
                "template_type": version.template_type.value,
                "author_id": version.author_id,
                "created_at": version.created_at,
                "updated_at": version.updated_at,
                "revocation_message": "",
                "revocation_author": "",
                "revocation_applied": True,
            },
        )

    def update(self, version_id: str, **values: Any) -> None:
        self.conn.execute(_UPDATE_VERSION, {"row_id": version_id, **values})

    def delete(self, version_id: str) -> None:
        self.conn.execute(delete(versions).where(versions.c.id == version_id))

    def next_number(self, bucket_id: str) -> int:
        """The number completing a version of the bucket gives it (under the bucket lock)."""
        return int(self.conn.execute(_NEXT_NUMBER, {"bucket_id": bucket_id}).scalar_one())

    def list_page(
        self,
        bucket_id: str,
        page: PageRequest,
        *,
        status: VersionStatus | None = None,
        now: datetime | None = None,
    ) -> Page[Version]:
        """A page of the bucket's versions; with ``status``, only those whose status
        (derived at ``now``, as every reader derives it) is that one."""
        scope = f"versions:{bucket_id}"
        where = None
        if status is not None:
            assert now is not None
            where, scope = status_condition(status, now), f"{scope}:{status.value}"
        return _VERSION_PAGES.page(
            self.conn, page, scope=scope, params={"bucket_id": bucket_id}, where=where
        )

    def by_fingerprints(self, bucket_id: str, fingerprints: Iterable[str]) -> dict[str, Version]:
        """The bucket's versions among ``fingerprints`` (absent ones are left out)."""
        wanted = sorted(set(fingerprints))
        if not wanted:
            return {}
        rows = self.conn.execute(_BY_FINGERPRINTS, {"bucket_id": bucket_id, "fps": wanted})
        return {r.fingerprint: version_from_row(r) for r in rows}

    def newest_complete(
        self, bucket_id: str, *, limit: int, below: int | None = None
    ) -> list[Version]:
        """The bucket's complete versions by number, newest first (numbered below ``below``)."""
        query = _NEWEST_COMPLETE if below is None else _NEWEST_COMPLETE_BELOW
        rows = self.conn.execute(query, {"bucket_id": bucket_id, "below": below, "limit": limit})
        return [version_from_row(r) for r in rows]

    def hydrate(
        self,
        items: Sequence[Version],
        *,
        include_restricted: RestrictedScope,
        visible: frozenset[str] | None = None,
    ) -> None:
        """Attach builds (with artifacts) and ancestry status, in one query for any count.

        ``include_restricted``: whose restricted parent channels the status may depend on;
        ``visible``: the buckets whose parents count (see :mod:`packyard.store.visibility`).
        """
        if not items:
            return
        by_id = {v.id: v for v in items}
        params = {"ids": list(by_id)}
        for r in _HYDRATION.rows(self.conn, params, include_restricted, visible):
            _attach(by_id[r.id], r.builds, r.edges)

    def get_with_builds(self, version_ids: Iterable[str]) -> dict[str, Version]:
        """:meth:`get_many` with each version's builds (and their artifacts), in one query."""
        ids = set(version_ids)
        if not ids:
            return {}
        found = {}
        for r in _WITH_BUILDS.rows(self.conn, {"ids": list(ids)}):
            found[r.id] = version = version_from_row(r)
            version.builds = _builds_from_json(version.id, r.builds)
        return found

    def get_loaded(
        self,
        version_ids: Iterable[str],
        *,
        include_restricted: RestrictedScope,
        visible: frozenset[str] | None = None,
    ) -> dict[str, Version]:
        """:meth:`get_many` then :meth:`hydrate`, in one query."""
        ids = set(version_ids)
        if not ids:
            return {}
        rows = _LOADED.rows(self.conn, {"ids": list(ids)}, include_restricted, visible)
        return {r.id: loaded_version_from_row(r) for r in rows}


_COPY_ORDER = (buckets.c.name, versions.c.number, versions.c.id)


@dataclass(frozen=True, slots=True)
class CopyMark:
    """What a version holding an inherited revocation copies: from which origin, and its
    ``revoke_at`` (the origin's)."""

    origin_id: str
    revoke_at: datetime | None


def _holds_copy_of(origin_ids: Select[Any]) -> tuple[ColumnElement[bool], ...]:
    return (
        versions.c.revocation_inherited_from.in_(origin_ids),
        versions.c.revocation_type == RevocationType.INHERITED.value,
    )


def _inherited_copies(origin_ids: Select[Any]) -> Select[Any]:
    return (
        select(versions, buckets.c.name.label("bucket_name"))
        .join(buckets, buckets.c.id == versions.c.bucket_id)
        .where(*_holds_copy_of(origin_ids))
        .order_by(versions.c.revocation_inherited_from, *_COPY_ORDER)
    )


def _with_builds(row: Any) -> Version:
    """A version from a row of ``versions`` columns, ``bucket_name`` and ``_BUILDS``."""
    version = version_row(row, row.bucket_name)
    version.builds = _builds_from_json(version.id, row.builds)
    return version


def loaded_version_from_row(row: Any) -> Version:
    """A version read with :func:`with_loaded_version`'s columns, builds and status set."""
    version = version_from_row(row)
    _attach(version, row.builds, row.edges)
    return version


def _attach(version: Version, builds_json: list[Any], edges_json: list[Any]) -> None:
    """Set a version's builds and parents status from its aggregated columns (_BUILDS,
    _parent_edges)."""
    version.builds = _builds_from_json(version.id, builds_json)
    set_parents_status(version, edges_json)


def set_parents_status(version: Version, edges_json: list[Any]) -> None:
    """Set a version's parents status from its _parent_edges column (none without edges)."""
    if edges_json:
        version.parents_status = aggregate_status(
            [
                edge_status(channel_id, channel_version, parent, channel_exists=seen is not None)
                for parent, channel_id, seen, channel_version in edges_json
            ]
        )


def _builds_from_json(version_id: str, values: list[Any]) -> list[Build]:
    """A version's builds from its _BUILDS column, in the order of their creation."""
    out = []
    for (
        build_id,
        component_type,
        packer_run_uuid,
        platform,
        status,
        source_external_identifier,
        labels,
        metadata,
        parent_version_id,
        parent_channel_id,
        created_at,
        updated_at,
        artifacts_json,
    ) in values:
        build = Build(
            id=build_id,
            version_id=version_id,
            component_type=component_type,
            packer_run_uuid=packer_run_uuid,
            platform=platform,
            status=BuildStatus(status),
            source_external_identifier=source_external_identifier,
            labels=dict(labels or {}),
            metadata=metadata,
            parent_version_id=parent_version_id,
            parent_channel_id=parent_channel_id,
            created_at=utc_from_json(created_at),
            updated_at=utc_from_json(updated_at),
        )
        build.artifacts = sorted(
            # the aggregate's values in Artifact's field order
            (Artifact(i, e, g, utc_from_json(at)) for i, e, g, at in artifacts_json),
            key=_CREATION_ORDER,
        )
        out.append(build)
    out.sort(key=_CREATION_ORDER)  # SQLite 3.40 has no ORDER BY inside an aggregate
    return out


class BuildRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def for_versions(self, version_ids: Iterable[str]) -> dict[str, list[Build]]:
        """Builds of the given versions with their artifacts, in one query."""
        rows = _BUILDS_OF_VERSIONS.rows(self.conn, {"ids": list(version_ids)})
        return {r.id: _builds_from_json(r.id, r.builds) for r in rows if r.builds}

    def get(self, version_id: str, build_id: str) -> Build | None:
        """One build of the version, with its artifacts."""
        rows = self.conn.execute(_ONE_BUILD, {"version_id": version_id, "build_id": build_id})
        found = _builds_from_rows(rows)
        return found[0] if found else None

    # --- 2021-04-30 API lookups (a build by its id alone) ---
    def version_id_of(self, build_id: str) -> str | None:
        found = self.conn.execute(
            select(builds.c.version_id).where(builds.c.id == build_id)
        ).scalar_one_or_none()
        return None if found is None else str(found)

    def for_version(self, version_id: str) -> list[Build]:
        return self.for_versions([version_id]).get(version_id, [])

    def under_lock(self, bucket_id: str, version_id: str, build_id: str) -> BuildsUnderLock:
        """What updating ``build_id`` needs, read in one statement (bucket lock held)."""
        rows = self.conn.execute(
            _BUILDS_FOR_UPDATE,
            {"bucket_id": bucket_id, "version_id": version_id, "build_id": build_id},
        ).all()
        next_number = int(rows[0].next_number) if rows else 1
        return BuildsUnderLock(builds=_builds_from_rows(rows), next_number=next_number)

    def list_page(self, version_id: str, page: PageRequest) -> Page[Build]:
        result: Page[Build] = paginate(
            self.conn,
            select(builds).where(builds.c.version_id == version_id),
            page,
            sort_columns=BUILD_SORT,
            default_order=(SortKey("created_at"),),
            id_column=builds.c.id,
            convert=build_from_row,
            scope=f"builds:{version_id}",
        )
        if result.items:
            by_id = {b.id: b for b in result.items}
            for r in self.conn.execute(_ARTIFACTS_OF, {"ids": list(by_id)}):
                by_id[r.build_id].artifacts.append(_artifact_from_row(r))
        return result

    def component_exists(self, version_id: str, component_type: str) -> bool:
        return (
            self.conn.execute(
                select(builds.c.id).where(
                    builds.c.version_id == version_id, builds.c.component_type == component_type
                )
            ).first()
            is not None
        )

    def statuses(self, version_id: str) -> list[BuildStatus]:
        rows = self.conn.execute(_STATUSES, {"version_id": version_id})
        return [BuildStatus(r.status) for r in rows]

    def insert(self, build: Build, *, version: dict[str, Any] | None = None) -> None:
        """Insert ``build``; ``version``: columns of its version to update as well."""
        self._write_with_version(
            True,
            {
                "id": build.id,
                "version_id": build.version_id,
                "component_type": build.component_type,
                "packer_run_uuid": build.packer_run_uuid,
                "platform": build.platform,
                "status": build.status.value,
                "source_external_identifier": build.source_external_identifier,
                "labels": build.labels,
                "metadata": build.metadata,
                "parent_version_id": build.parent_version_id,
                "parent_channel_id": build.parent_channel_id,
                "created_at": build.created_at,
                "updated_at": build.updated_at,
            },
            build.id,
            build.version_id,
            version,
        )

    def update(
        self, build: Build, values: dict[str, Any], *, version: dict[str, Any] | None = None
    ) -> None:
        """Set ``values`` on ``build``'s row; ``version``: columns of its version as well."""
        self._write_with_version(False, values, build.id, build.version_id, version)

    def _write_with_version(
        self,
        insert: bool,
        values: dict[str, Any],
        row_id: str,
        version_id: str,
        version: dict[str, Any] | None,
    ) -> None:
        """Insert the build (``values``) or update its row ``row_id``, and update its
        version: one statement on PostgreSQL, two on SQLite (no data-modifying ``WITH``)."""
        if version and self.conn.dialect.name == "postgresql":
            params = {f"build_{name}": value for name, value in values.items()}
            params.update({f"version_{name}": value for name, value in version.items()})
            params.update(build_row_id=row_id, version_row_id=version_id)
            self.conn.execute(_build_write(insert, tuple(values), tuple(version)), params)
            return
        if insert:
            self.conn.execute(_INSERT_BUILD, values)
        else:
            self.conn.execute(_UPDATE_BUILD, {"row_id": row_id, **values})
        if version:
            self.conn.execute(_UPDATE_VERSION, {"row_id": version_id, **version})

    def add_artifacts(self, build_id: str, project_id: str, items: Sequence[Artifact]) -> None:
        if not items:
            return
        self.conn.execute(
            _INSERT_ARTIFACT,
            [
                {
                    "id": a.id,
                    "build_id": build_id,
                    "project_id": project_id,
                    "external_identifier": a.external_identifier,
                    "region": a.region,
                    "created_at": a.created_at,
                }
                for a in items
            ],
        )

    def delete(self, build_id: str) -> None:
        self.conn.execute(delete(builds).where(builds.c.id == build_id))


def version_from_row(row: Any) -> Version:
    """A version selected with its read-model extras (``_VERSION_COLUMNS``)."""
    inherited = None
    if row.revocation_inherited_from and row.anc_bucket_name is not None:
        inherited = RevokedAncestor(
            version_id=row.revocation_inherited_from,
            bucket_name=row.anc_bucket_name,
            version_name=f"v{row.anc_number or 0}",
            version_fingerprint=row.anc_fingerprint,
            bucket_id=row.anc_bucket_id,
        )
    return version_row(
        row, row.bucket_name, inherited=inherited, has_descendants=bool(row.has_descendants)
    )


_VERSION_PAGES = Listing(
    _listing_select().where(versions.c.bucket_id == bindparam("bucket_id")),
    sort_columns=VERSION_SORT,
    default_order=(SortKey("created_at", descending=True),),
    id_column=versions.c.id,
    convert=version_from_row,
)


def version_row(
    row: Any,
    bucket_name: str,
    *,
    inherited: RevokedAncestor | None = None,
    has_descendants: bool = False,
) -> Version:
    """A version from the ``versions`` columns of ``row``; the extras as given."""
    return Version(
        id=row.id,
        bucket_id=row.bucket_id,
        bucket_name=bucket_name,
        fingerprint=row.fingerprint,
        number=row.number,
        template_type=TemplateType(row.template_type),
        author_id=row.author_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        revoke_at=row.revoke_at,
        revocation_message=row.revocation_message,
        revocation_author=row.revocation_author,
        revocation_type=RevocationType(row.revocation_type) if row.revocation_type else None,
        revocation_inherited_from=inherited,
        has_descendants=has_descendants,
    )


def build_from_row(row: Any) -> Build:
    return Build(
        id=row.id,
        version_id=row.version_id,
        component_type=row.component_type,
        packer_run_uuid=row.packer_run_uuid,
        platform=row.platform,
        status=BuildStatus(row.status),
        source_external_identifier=row.source_external_identifier,
        labels=dict(row.labels or {}),
        metadata=row.metadata,
        parent_version_id=row.parent_version_id,
        parent_channel_id=row.parent_channel_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _artifact_from_row(row: Any) -> Artifact:
    return Artifact(
        id=row.artifact_id,
        external_identifier=row.external_identifier,
        region=row.region,
        created_at=row.artifact_created_at,
    )


def _builds_from_rows(rows: Iterable[Any]) -> list[Build]:
    """Builds from rows of builds outer-joined to their artifacts, one build's rows together."""
    out: list[Build] = []
    current: Build | None = None
    for r in rows:
        if current is None or current.id != r.id:
            current = build_from_row(r)
            out.append(current)
        if r.artifact_id is not None:
            current.artifacts.append(_artifact_from_row(r))
    return out


__all__ = ["BuildRepo", "BuildsUnderLock", "VersionRepo"]

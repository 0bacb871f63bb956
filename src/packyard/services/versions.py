"""Versions: one per `packer build` run, keyed by fingerprint."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from packyard import metrics
from packyard.domain.access import visible_buckets
from packyard.domain.enums import BuildStatus, TemplateType, VersionStatus
from packyard.domain.events import AuditAction, EventAction
from packyard.domain.lineage import Relation, Relations
from packyard.domain.models import Bucket, Caller, Channel, Version
from packyard.domain.paging import Page, PageRequest
from packyard.domain.rules import utcnow, validate_fingerprint
from packyard.domain.visibility import can_see_channel, restricted_scope
from packyard.errors import ApiError, Code, already_exists, invalid, precondition
from packyard.ids import new_id
from packyard.services import recording
from packyard.services.journal import record
from packyard.services.lifecycle import complete, roll_back_channels
from packyard.services.lookup import (
    bucket_or_404,
    find_version,
    lock_version,
    require_write,
    version_by_id,
    version_not_found,
    version_or_10,
)
from packyard.services.views import find_loaded_version, hidden_latest, load_versions
from packyard.store import deletions, generations
from packyard.store.ancestry import LineageRepo
from packyard.store.buckets import BucketRepo
from packyard.store.channels import ChannelRepo
from packyard.store.engine import Store
from packyard.store.revocation import RevocationRepo, one_id
from packyard.store.versions import BuildRepo, VersionRepo

# Versions offered in the selects of a comparison (the newest complete ones).
COMPARE_OPTIONS = 50


@dataclass(slots=True)
class VersionListing:
    """A page of a bucket's versions and, by version id, the channels serving each one
    (those the caller may see)."""

    bucket: Bucket
    page: Page[Version]
    channels: dict[str, list[Channel]]


@dataclass(slots=True)
class VersionDetail:
    """Everything the version page shows but its SBOM links."""

    bucket: Bucket
    version: Version
    channels: list[Channel]  # serving it, those the caller may see
    relations: Relations


@dataclass(slots=True)
class VersionComparison:
    """Two versions of a bucket to compare, as asked or by default.

    ``a``/``b`` are ``None`` when the fingerprint asked for (``asked_a``/``asked_b``)
    is not a version of the bucket, or when there is nothing to default to.
    ``options`` are the versions to choose from, newest first.
    """

    bucket: Bucket
    asked_a: str
    asked_b: str
    a: Version | None
    b: Version | None
    options: list[Version]
    parents: dict[str, list[Relation]] = field(default_factory=dict)


class VersionService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def list_page(
        self,
        caller: Caller,
        bucket_name: str,
        page: PageRequest,
        *,
        status: VersionStatus | None = None,
    ) -> Page[Version]:
        with self.store.read() as conn:
            bucket = bucket_or_404(conn, caller, bucket_name)
            result = VersionRepo(conn).list_page(bucket.id, page, status=status, now=utcnow())
            load_versions(conn, result.items, caller)
        return result

    def listing(
        self,
        caller: Caller,
        bucket_name: str,
        page: PageRequest,
        *,
        status: VersionStatus | None = None,
    ) -> VersionListing:
        """The console's versions page: :meth:`list_page` with the bucket and the channels
        serving each version, in a fixed number of queries whatever the page holds."""
        with self.store.read() as conn:
            bucket = bucket_or_404(conn, caller, bucket_name)
            result = VersionRepo(conn).list_page(bucket.id, page, status=status, now=utcnow())
            load_versions(conn, result.items, caller)
            serving = _serving(conn, caller, [v.id for v in result.items])
        return VersionListing(bucket=bucket, page=result, channels=serving)

    def detail(self, caller: Caller, bucket_name: str, fingerprint: str) -> VersionDetail:
        """One version with its builds, the channels serving it, its parents and its
        children (any bucket): a fixed number of queries. A missing version is 404."""
        with self.store.read() as conn:
            bucket, version = find_version(
                conn, caller, bucket_name, fingerprint, missing=version_not_found
            )
            load_versions(conn, [version], caller)
            serving = _serving(conn, caller, [version.id])
            relations = LineageRepo(conn).relations(
                version.id,
                include_restricted=restricted_scope(caller),
                visible=visible_buckets(caller),
            )
        return VersionDetail(
            bucket=bucket,
            version=version,
            channels=serving.get(version.id, []),
            relations=relations,
        )

    def compare(
        self, caller: Caller, bucket_name: str, a: str | None, b: str | None
    ) -> VersionComparison:
        """Two versions of the bucket, loaded to be compared, with their parents.

        Without ``b``: the version on `latest` (when the caller may see `latest`), else
        the newest complete version. Without ``a``: the complete version numbered just
        below ``b``. A fingerprint that names no version of the bucket leaves that side
        empty (the page says so next to its select).
        """
        asked_a, asked_b = (a or "").strip(), (b or "").strip()
        with self.store.read() as conn:
            bucket = bucket_or_404(conn, caller, bucket_name)
            repo = VersionRepo(conn)
            named = repo.by_fingerprints(bucket.id, [f for f in (asked_a, asked_b) if f])
            options = repo.newest_complete(bucket.id, limit=COMPARE_OPTIONS)
            version_b = named.get(asked_b) if asked_b else None
            if not asked_b:
                version_b = _default_newest(conn, caller, bucket, options)
            version_a = named.get(asked_a) if asked_a else None
            if not asked_a and version_b is not None and version_b.number is not None:
                below = [o for o in options if o.number is not None and o.number < version_b.number]
                version_a = (
                    below[0]
                    if below
                    else next(
                        iter(repo.newest_complete(bucket.id, limit=1, below=version_b.number)), None
                    )
                )
            chosen = [v for v in (version_a, version_b) if v is not None]
            load_versions(conn, chosen, caller)
            parents = LineageRepo(conn).parents(
                [v.id for v in chosen],
                include_restricted=restricted_scope(caller),
                visible=visible_buckets(caller),
            )
        listed = {o.id for o in options}
        extra = [v for v in chosen if v.id not in listed]
        by_id = {v.id: v for v in (*options, *extra)}
        ordered = sorted(by_id.values(), key=lambda v: (v.number or 0, v.created_at), reverse=True)
        return VersionComparison(
            bucket=bucket,
            asked_a=asked_a,
            asked_b=asked_b,
            a=version_a,
            b=version_b,
            options=ordered,
            parents=parents,
        )

    def get(self, caller: Caller, bucket_name: str, fingerprint: str) -> Version:
        with self.store.read_statement() as conn:
            return find_loaded_version(conn, caller, bucket_name, fingerprint)

    def create(
        self,
        caller: Caller,
        bucket_name: str,
        fingerprint: str | None,
        template_type: TemplateType | None,
    ) -> Version:
        require_write(caller)
        fingerprint = validate_fingerprint(fingerprint)
        if template_type in (None, TemplateType.UNSET):
            raise invalid("template_type must be HCL2 or JSON.", field="template_type")
        assert template_type is not None
        now = utcnow()
        exists = already_exists(f"Version with fingerprint {fingerprint} already exists.")
        try:
            with self.store.write(caller.project_id) as conn:
                bucket = bucket_or_404(conn, caller, bucket_name, write=True)
                generations.confine(conn, bucket.name)
                version = Version(
                    id=new_id(),
                    bucket_id=bucket.id,
                    bucket_name=bucket.name,
                    fingerprint=fingerprint,
                    number=None,
                    template_type=template_type,
                    author_id=caller.name,
                    created_at=now,
                    updated_at=now,
                )
                # The unique (bucket, fingerprint) constraint refuses an existing
                # fingerprint: IntegrityError, below.
                VersionRepo(conn).insert(version)
                BucketRepo(conn).add_version_count(bucket.id, 1, updated_at=now)
                event = recording.version_event(EventAction.CREATE, version, now)
                record(
                    conn,
                    caller.project_id,
                    caller,
                    recording.version_change(
                        AuditAction.CREATE, "Created version", version, now, [event]
                    ),
                )
        except IntegrityError:
            raise exists from None
        metrics.event("versions_created")
        return version

    def force_complete(self, caller: Caller, bucket_name: str, fingerprint: str) -> Version:
        """UpdateVersion ``complete: true``: complete a version that has a DONE build.

        Builds that never ran (for instance outside ``-only``) stay as they are.
        Completing an already complete version changes nothing.
        """
        require_write(caller)
        now = utcnow()
        completed = False
        with self.store.write(caller.project_id) as conn:
            bucket, version = lock_version(conn, caller, bucket_name, fingerprint)
            generations.confine(conn, bucket.name, reveal=True)
            if not version.complete:
                statuses = BuildRepo(conn).statuses(version.id)
                if BuildStatus.DONE not in statuses:
                    raise precondition(
                        f"Version {fingerprint} cannot be completed: it has no build in BUILD_DONE."
                    )
                previous_latest = bucket.latest_version_id
                complete(conn, bucket, version, now)
                completed = True
                change = recording.completion(conn, bucket, version, previous_latest, now)
                record(conn, caller.project_id, caller, change)
            version = version_or_10(conn, bucket, fingerprint)
            load_versions(conn, [version], caller)
        if completed:
            metrics.event("versions_completed")
        return version

    def delete(
        self, caller: Caller, bucket_name: str, fingerprint: str, *, rollback_channels: bool
    ) -> None:
        """DeleteVersion, with its builds, artifacts and SBOMs.

        Refused (400/9) while a user channel serves the version, unless
        ``rollback_channels``: then those channels roll back like on revocation.
        `latest` always rolls back (to the newest remaining valid version).
        """
        require_write(caller)
        now = utcnow()
        with self.store.write(caller.project_id) as conn:
            bucket = bucket_or_404(conn, caller, bucket_name, write=True)
            version = VersionRepo(conn).get(bucket.id, fingerprint, lock=True)
            if version is None:
                raise version_not_found(fingerprint)
            pointing = ChannelRepo(conn).pointing_at([version.id])
            assigned = [c for c in pointing if not c.managed]
            if assigned and not rollback_channels:
                names = ", ".join(sorted(c.name for c in assigned))
                raise precondition(
                    f"Version is assigned by channels: {names}. Please, remove the channels "
                    "assignment before deleting the version."
                )
            recording.with_builds(conn, [version])
            gone = one_id(version.id)
            moves = roll_back_channels(conn, gone, now=now, author=caller.name)
            events = [recording.version_event(EventAction.DELETE, version, now)]
            events += recording.moves_events(conn, moves, [version])
            # Descendants keep a revocation they inherited from it, as their own.
            RevocationRepo(conn).detach_copies(gone)
            VersionRepo(conn).delete(version.id)
            deletions.record(
                conn,
                bucket_id=bucket.id,
                kind=deletions.VERSION,
                version_id=version.id,
                number=version.number,
                at=now,
            )
            BucketRepo(conn).add_version_count(bucket.id, -1, updated_at=now)
            record(
                conn,
                caller.project_id,
                caller,
                recording.version_change(
                    AuditAction.DELETE, "Deleted version", version, now, events
                ),
            )

    # --- 2021-04-30 API: iterations addressed by id or incremental version ---
    def locate(
        self,
        caller: Caller,
        bucket_name: str | None,
        *,
        version_id: str | None = None,
        number: int | None = None,
    ) -> tuple[str, str]:
        """``(bucket name, fingerprint)`` of the version with id ``version_id`` (in
        ``bucket_name`` when given) or numbered ``number`` in ``bucket_name``.

        A missing bucket is 404/5; a missing version 409/10, as for a fingerprint (Packer
        up to 1.10 creates the iteration on exactly that code).
        """
        with self.store.read() as conn:
            bucket = bucket_or_404(conn, caller, bucket_name) if bucket_name else None
            if version_id is not None:
                found = version_by_id(conn, caller, version_id)
                if found is None or (bucket is not None and found[0].id != bucket.id):
                    raise ApiError(Code.ABORTED, f"Iteration with id {version_id} not found")
                return found[0].name, found[1].fingerprint
            if bucket is None or number is None:
                raise invalid(
                    "One of iteration_id, fingerprint or incremental_version is required."
                )
            fingerprint = VersionRepo(conn).fingerprint_by_number(bucket.id, number)
            if fingerprint is None:
                raise ApiError(
                    Code.ABORTED, f"Iteration with incremental version {number} not found"
                )
            return bucket.name, fingerprint


def _serving(conn: Connection, caller: Caller, version_ids: list[str]) -> dict[str, list[Channel]]:
    """The channels the caller may see that serve each of ``version_ids`` (`latest` first)."""
    out: dict[str, list[Channel]] = {}
    for c in ChannelRepo(conn).pointing_at(version_ids):
        if c.version_id is not None and can_see_channel(caller, c):
            out.setdefault(c.version_id, []).append(c)
    for found in out.values():
        found.sort(key=lambda c: (not c.managed, c.name))
    return out


def _default_newest(
    conn: Connection, caller: Caller, bucket: Bucket, options: list[Version]
) -> Version | None:
    """The version on `latest` when the caller may see it, else the newest complete one."""
    latest_id = bucket.latest_version_id
    if latest_id and bucket.id not in hidden_latest(conn, caller, [bucket.id]):
        on_latest = next((o for o in options if o.id == latest_id), None)
        if on_latest is None:
            on_latest = VersionRepo(conn).get_many([latest_id]).get(latest_id)
        if on_latest is not None:
            return on_latest
    return options[0] if options else None

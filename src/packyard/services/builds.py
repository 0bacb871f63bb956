"""Builds: one per Packer source in a version; the last DONE completes the version."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from packyard import metrics
from packyard.domain.enums import BuildStatus
from packyard.domain.events import AuditAction
from packyard.domain.models import Artifact, Bucket, Build, Caller, Version
from packyard.domain.paging import Page, PageRequest
from packyard.domain.rules import utcnow, validate_json, validate_labels, validate_text
from packyard.errors import ApiError, Code, already_exists, invalid, precondition
from packyard.ids import new_id
from packyard.services import recording
from packyard.services.ancestry import forget_build_parent, record_parent
from packyard.services.journal import record
from packyard.services.lifecycle import all_done, numbered
from packyard.services.lookup import (
    build_missing,
    build_or_404,
    find_version,
    lock_version,
    require_write,
    version_by_id,
)
from packyard.store import deletions, generations
from packyard.store.engine import Store
from packyard.store.versions import BuildRepo, VersionRepo

MAX_ARTIFACTS_PER_BUILD = 1000
MAX_RUN_UUID = 128  # the column's width


@dataclass(frozen=True, slots=True)
class ArtifactInput:
    external_identifier: str | None
    region: str | None


@dataclass(slots=True)
class BuildChanges:
    """The fields of a CreateBuild or UpdateBuild body; ``None`` means not provided."""

    status: BuildStatus | None = None
    platform: str | None = None
    packer_run_uuid: str | None = None
    artifacts: list[ArtifactInput] | None = None
    labels: dict[str, str] | None = None
    source_external_identifier: str | None = None
    parent_version_id: str | None = None
    parent_channel_id: str | None = None
    metadata: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class BuildService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def list_page(
        self, caller: Caller, bucket_name: str, fingerprint: str, page: PageRequest
    ) -> Page[Build]:
        with self.store.read() as conn:
            _, version = find_version(conn, caller, bucket_name, fingerprint)
            return BuildRepo(conn).list_page(version.id, page)

    def get(self, caller: Caller, bucket_name: str, fingerprint: str, build_id: str) -> Build:
        with self.store.read() as conn:
            _, version = find_version(conn, caller, bucket_name, fingerprint)
            return build_or_404(conn, version, build_id)

    def create(
        self,
        caller: Caller,
        bucket_name: str,
        fingerprint: str,
        component_type: str | None,
        changes: BuildChanges,
    ) -> Build:
        require_write(caller)
        component = validate_text(component_type, field="component_type")
        if not component:
            raise invalid("component_type is required.", field="component_type")
        now = utcnow()
        exists = already_exists(
            f"A build for component {component} already exists in version {fingerprint}."
        )
        try:
            with self.store.write(caller.project_id) as conn:
                bucket, version = lock_version(conn, caller, bucket_name, fingerprint)
                generations.confine(conn, bucket.name)
                if version.complete:
                    raise _complete_error(version)
                build = Build(
                    id=new_id(),
                    version_id=version.id,
                    component_type=component,
                    packer_run_uuid="",
                    platform="",
                    status=BuildStatus.UNSET,
                    source_external_identifier="",
                    labels={},
                    metadata=None,
                    parent_version_id=None,
                    parent_channel_id=None,
                    created_at=now,
                    updated_at=now,
                )
                repo = BuildRepo(conn)
                try:
                    change = _merge(conn, caller, version, build, changes, now)
                except ApiError:
                    # A second build of the component is refused first, whatever its body.
                    if repo.component_exists(version.id, component):
                        raise exists from None
                    raise
                if change is None:
                    repo.insert(build)  # nothing recognised in the body: a bare build
                    _record(conn, caller, bucket, version, build, now, created=True)
                    return build
                # One INSERT of the merged build; the unique (version, component)
                # constraint refuses a duplicate (IntegrityError, below).
                created = change.applied_to(build)
                latest = bucket.latest_version_id
                done = _write(conn, caller, bucket, version, created, change, now, insert=True)
                if done:  # a number for the version, `latest` moved: neighbours show both
                    generations.reveal(conn, bucket.name)
                _record(conn, caller, bucket, version, created, now, created=True)
                if done:
                    _record_completion(conn, caller, bucket, version, latest, now)
        except IntegrityError:
            raise exists from None
        metrics.event("builds_created")
        if created.status is BuildStatus.DONE:
            metrics.event("builds_completed")
        return created

    def update(
        self,
        caller: Caller,
        bucket_name: str,
        fingerprint: str,
        build_id: str,
        changes: BuildChanges,
    ) -> Build:
        require_write(caller)
        now = utcnow()
        with self.store.write(caller.project_id) as conn:
            bucket, version = lock_version(conn, caller, bucket_name, fingerprint)
            generations.confine(conn, bucket.name)
            context = BuildRepo(conn).under_lock(bucket.id, version.id, build_id)
            build = next((b for b in context.builds if b.id == build_id), None)
            if build is None:
                raise build_missing(build_id)
            change = _merge(conn, caller, version, build, changes, now)
            if change is None:
                _record(conn, caller, bucket, version, build, now, created=False)
                return build  # nothing recognised: a no-op, like HCP
            updated = change.applied_to(build)
            others_done = all(
                b.status is BuildStatus.DONE for b in context.builds if b.id != build_id
            )
            completes = updated.status is BuildStatus.DONE and others_done
            latest = bucket.latest_version_id
            _write(
                conn,
                caller,
                bucket,
                version,
                updated,
                change,
                now,
                insert=False,
                completes=completes,
                next_number=context.next_number,
            )
            _record(conn, caller, bucket, version, updated, now, created=False)
            if completes:
                generations.reveal(conn, bucket.name)
                _record_completion(conn, caller, bucket, version, latest, now)
        if updated.status is BuildStatus.DONE and build.status is not BuildStatus.DONE:
            metrics.event("builds_completed")
        if completes:
            metrics.event("versions_completed")
        return updated

    # --- 2021-04-30 API: builds addressed by id alone ---
    def locate(self, caller: Caller, build_id: str) -> tuple[str, str]:
        """``(bucket name, fingerprint)`` of the version holding build ``build_id``, in a
        bucket the caller may see (else 404/5)."""
        with self.store.read() as conn:
            version_id = BuildRepo(conn).version_id_of(build_id)
            found = version_by_id(conn, caller, version_id) if version_id else None
        if found is None:
            raise build_missing(build_id)
        return found[0].name, found[1].fingerprint

    def delete(self, caller: Caller, bucket_name: str, fingerprint: str, build_id: str) -> None:
        """Delete one build; the version's name and completion are left as they are."""
        require_write(caller)
        with self.store.write(caller.project_id) as conn:
            bucket, version = lock_version(conn, caller, bucket_name, fingerprint)
            build = build_or_404(conn, version, build_id)
            BuildRepo(conn).delete(build.id)
            forget_build_parent(conn, build)
            now = utcnow()
            deletions.record(
                conn,
                bucket_id=bucket.id,
                kind=deletions.BUILD,
                version_id=version.id,
                number=version.number,
                at=now,
            )
            VersionRepo(conn).update(version.id, updated_at=now)
            change = recording.build_change(
                AuditAction.DELETE, "Deleted build", bucket, version, build, now
            )
            record(conn, caller.project_id, caller, change)


def _record(
    conn: Connection,
    caller: Caller,
    bucket: Bucket,
    version: Version,
    build: Build,
    now: datetime,
    *,
    created: bool,
) -> None:
    if created:
        change = recording.build_change(
            AuditAction.CREATE, "Created build", bucket, version, build, now
        )
    else:
        change = recording.build_change(
            AuditAction.UPDATE, "Updated build", bucket, version, build, now
        )
    record(conn, caller.project_id, caller, change)


def _record_completion(
    conn: Connection,
    caller: Caller,
    bucket: Bucket,
    version: Version,
    previous_latest: str | None,
    now: datetime,
) -> None:
    change = recording.completion(conn, bucket, version, previous_latest, now)
    record(conn, caller.project_id, caller, change)


def _complete_error(version: Version) -> ApiError:
    return precondition(
        f"The version associated to the fingerprint {version.fingerprint} is complete "
        f"({version.name}); its builds can no longer change."
    )


@dataclass(slots=True)
class _Change:
    """What a CreateBuild or UpdateBuild body changes in one build, validated."""

    fields: dict[str, Any]  # Build fields (and columns) to set; the status as BuildStatus
    artifacts: list[Artifact]  # to add

    def applied_to(self, build: Build) -> Build:
        """The build as it reads back once the change is written."""
        updated = replace(build, **self.fields)
        if self.artifacts:
            # The order of a reload: by creation time, then id.
            updated.artifacts = sorted(
                [*build.artifacts, *self.artifacts], key=lambda a: (a.created_at, a.id)
            )
        else:
            updated.artifacts = list(build.artifacts)
        return updated

    def columns(self) -> dict[str, Any]:
        values = dict(self.fields)
        if "status" in values:
            values["status"] = values["status"].value
        return values


def _merge(
    conn: Connection,
    caller: Caller,
    version: Version,
    build: Build,
    changes: BuildChanges,
    now: datetime,
) -> _Change | None:
    """Validate ``changes`` against ``build``; ``None`` when nothing is recognised.

    Records the parent ids given (an ancestry edge), like the write that follows.
    """
    fields: dict[str, Any] = {}
    if changes.platform:
        fields["platform"] = validate_text(changes.platform, field="platform")
    if changes.packer_run_uuid:
        fields["packer_run_uuid"] = validate_text(
            changes.packer_run_uuid, field="packer_run_uuid", limit=MAX_RUN_UUID
        )
    if changes.source_external_identifier:
        fields["source_external_identifier"] = validate_text(
            changes.source_external_identifier, field="source_external_identifier", limit=1024
        )
    if changes.labels is not None:
        fields["labels"] = validate_labels(changes.labels)
    if changes.metadata is not None:
        # Stored as given and rendered by every read of the version: only renderable JSON.
        fields["metadata"] = validate_json(changes.metadata, field="metadata")
    new_artifacts = _artifacts(changes.artifacts, now)
    status = changes.status

    if (
        not fields
        and not new_artifacts
        and status is None
        and not (changes.parent_version_id or changes.parent_channel_id)
    ):
        return None  # nothing recognised: a no-op, like HCP
    if version.complete:
        # A complete version is never reopened: not even its builds that never ran change.
        raise _complete_error(version)
    if build.status is BuildStatus.DONE:
        raise precondition(f"Build {build.id} is already BUILD_DONE and cannot change.")
    if new_artifacts and status is not BuildStatus.DONE:
        raise precondition("Artifacts can only be recorded together with status BUILD_DONE.")
    if status is BuildStatus.DONE and not (build.artifacts or new_artifacts):
        raise precondition(
            f"Build {build.component_type} cannot be BUILD_DONE without at least one artifact."
        )
    if len(build.artifacts) + len(new_artifacts) > MAX_ARTIFACTS_PER_BUILD:
        raise invalid(
            f"A build holds at most {MAX_ARTIFACTS_PER_BUILD} artifacts.", field="artifacts"
        )

    record_parent(
        conn,
        caller,
        version,
        build,
        parent_version_id=changes.parent_version_id or None,
        parent_channel_id=changes.parent_channel_id or None,
        now=now,
        values=fields,
    )
    if status is not None:
        fields["status"] = status
    fields["updated_at"] = now
    return _Change(fields=fields, artifacts=new_artifacts)


def _write(
    conn: Connection,
    caller: Caller,
    bucket: Bucket,
    version: Version,
    build: Build,
    change: _Change,
    now: datetime,
    *,
    insert: bool,
    completes: bool | None = None,
    next_number: int | None = None,
) -> bool:
    """Write ``build`` (insert it, or apply ``change`` to its row) with its new artifacts,
    touch the version and complete it if this made it whole.

    ``completes`` says whether it did, when the caller read the version's builds
    under the bucket lock; ``None`` reads the statuses of the others. Returns whether
    the version was completed.
    """
    repo = BuildRepo(conn)
    if completes is None:
        completes = build.status is BuildStatus.DONE and all_done(
            [*repo.statuses(version.id), BuildStatus.DONE]
        )
    touch: dict[str, Any] = {"updated_at": now}
    if completes:
        if next_number is None:
            next_number = VersionRepo(conn).next_number(bucket.id)
        touch["number"] = version.number = next_number
    if insert:
        repo.insert(build, version=touch)
    else:
        repo.update(build, change.columns(), version=touch)
    repo.add_artifacts(build.id, caller.project_id, change.artifacts)
    if completes:
        numbered(conn, bucket, version, now)
    return completes


def _artifacts(items: list[ArtifactInput] | None, now: datetime) -> list[Artifact]:
    if not items:
        return []
    out: list[Artifact] = []
    seen: set[tuple[str, str]] = set()
    for i, item in enumerate(items):
        ext = validate_text(
            item.external_identifier, field=f"artifacts[{i}].external_identifier", limit=1024
        )
        if not ext:
            raise invalid(
                f"artifacts[{i}].external_identifier is required.",
                field=f"artifacts[{i}].external_identifier",
            )
        region = validate_text(item.region, field=f"artifacts[{i}].region")
        if (ext, region) in seen:
            continue
        seen.add((ext, region))
        out.append(Artifact(id=new_id(), external_identifier=ext, region=region, created_at=now))
    return out


__all__ = ["ArtifactInput", "BuildChanges", "BuildService", "Code"]

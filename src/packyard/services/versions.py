"""Versions: one per `packer build` run, keyed by fingerprint."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from packyard.domain.enums import BuildStatus, TemplateType
from packyard.domain.models import Caller, Version
from packyard.domain.paging import Page, PageRequest
from packyard.domain.rules import utcnow, validate_fingerprint
from packyard.errors import ApiError, already_exists, invalid, not_found, precondition
from packyard.ids import new_id
from packyard.services.lifecycle import complete, roll_back_channels
from packyard.services.lookup import (
    bucket_or_404,
    find_version,
    lock_version,
    require_write,
    version_or_10,
)
from packyard.services.views import load_versions
from packyard.store import deletions
from packyard.store.buckets import BucketRepo
from packyard.store.channels import ChannelRepo
from packyard.store.engine import Store
from packyard.store.revocation import RevocationRepo, one_id
from packyard.store.versions import BuildRepo, VersionRepo


class VersionService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def list_page(self, caller: Caller, bucket_name: str, page: PageRequest) -> Page[Version]:
        with self.store.read() as conn:
            bucket = bucket_or_404(conn, caller, bucket_name)
            result = VersionRepo(conn).list_page(bucket.id, page)
            load_versions(conn, result.items, caller)
        return result

    def get(self, caller: Caller, bucket_name: str, fingerprint: str) -> Version:
        with self.store.read() as conn:
            _, version = find_version(conn, caller, bucket_name, fingerprint)
            load_versions(conn, [version], caller)
        return version

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
                bucket = bucket_or_404(conn, caller, bucket_name, lock=True)
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
        except IntegrityError:
            raise exists from None
        return version

    def force_complete(self, caller: Caller, bucket_name: str, fingerprint: str) -> Version:
        """UpdateVersion ``complete: true``: complete a version that has a DONE build.

        Builds that never ran (for instance outside ``-only``) stay as they are.
        Completing an already complete version changes nothing.
        """
        require_write(caller)
        now = utcnow()
        with self.store.write(caller.project_id) as conn:
            bucket, version = lock_version(conn, caller, bucket_name, fingerprint)
            if not version.complete:
                statuses = BuildRepo(conn).statuses(version.id)
                if BuildStatus.DONE not in statuses:
                    raise precondition(
                        f"Version {fingerprint} cannot be completed: it has no build in BUILD_DONE."
                    )
                complete(conn, bucket, version, now)
            version = version_or_10(conn, bucket, fingerprint)
            load_versions(conn, [version], caller)
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
            bucket = bucket_or_404(conn, caller, bucket_name, lock=True)
            version = VersionRepo(conn).get(bucket.id, fingerprint, lock=True)
            if version is None:
                raise not_found_version(fingerprint)
            pointing = ChannelRepo(conn).pointing_at([version.id])
            assigned = [c for c in pointing if not c.managed]
            if assigned and not rollback_channels:
                names = ", ".join(sorted(c.name for c in assigned))
                raise precondition(
                    f"Version is assigned by channels: {names}. Please, remove the channels "
                    "assignment before deleting the version."
                )
            gone = one_id(version.id)
            roll_back_channels(conn, gone, now=now, author=caller.name)
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


def not_found_version(fingerprint: str) -> ApiError:
    return not_found(f"Error: The version with identifier {fingerprint} does not exist.")

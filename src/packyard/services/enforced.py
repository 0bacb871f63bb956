"""Enforced provisioner blocks: a project's writers publish them and link one version of
each to buckets; every ``packer build`` into a linked bucket fetches and runs them.

Rules: contributors and admins of the project manage blocks (a bucket grant is not
enough: a block reaches every bucket it is linked to); any project role reads them;
whoever may see a bucket reads the blocks linked to it (that is Packer's one call, made
by whoever pushes). Content is checked as Packer parses it before it is stored
(:func:`packyard.domain.enforced.check_content`), and versions are immutable but for
their description. A linked version, or a block with a linked version, is not deleted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from packyard.domain.enforced import (
    EnforcedBlock,
    EnforcedBlockVersion,
    EnforcedLink,
    check_content,
)
from packyard.domain.enums import TemplateType
from packyard.domain.events import AuditAction, Change
from packyard.domain.models import Bucket, Caller
from packyard.domain.rules import (
    parse_field_mask,
    utcnow,
    validate_description,
    validate_labels,
    validate_name,
    validate_text,
)
from packyard.errors import ApiError, already_exists, invalid, not_found, permission_denied
from packyard.errors import precondition as failed_precondition
from packyard.ids import new_id
from packyard.services.journal import record
from packyard.services.lookup import bucket_missing, bucket_or_404, require_project_write
from packyard.services.views import load_buckets
from packyard.store.buckets import BucketRepo
from packyard.store.enforced import EnforcedRepo
from packyard.store.engine import Store

_BLOCK_MASK = {"name": "name", "labels": "labels"}
_VERSION_MASK = {
    "additional_description": "additional_description",
    "additionalDescription": "additional_description",
}
MAX_VERSION_LABEL = 128
MAX_LINKS = 1000


@dataclass(slots=True)
class BlockVersions:
    block: EnforcedBlock
    versions: list[EnforcedBlockVersion]


@dataclass(slots=True)
class LinkedBucket:
    link: EnforcedLink
    bucket: Bucket


def template_type(value: str | None) -> TemplateType:
    """``HCL2`` or ``JSON`` (any case); anything else is a 400/3 naming ``template_type``."""
    try:
        parsed = TemplateType((value or "").upper())
    except ValueError:
        parsed = TemplateType.UNSET
    if parsed is TemplateType.UNSET:
        raise invalid("template_type must be HCL2 or JSON.", field="template_type")
    return parsed


def _require_read(caller: Caller) -> None:
    if caller.role is None:
        raise permission_denied(
            f"Principal {caller.name!r} has no role on this project; reading enforced blocks "
            "needs a project role (a grant on a bucket only shows the blocks linked to it)."
        )


def _block_missing(ident: str) -> ApiError:
    return not_found(f"Error: The enforced block with identifier {ident} does not exist.")


def _version_missing(ident: str) -> ApiError:
    return not_found(f"Error: The enforced block version with identifier {ident} does not exist.")


def _block_record(b: EnforcedBlock) -> dict[str, Any]:
    return {"id": b.id, "name": b.name, "labels": b.labels}


def _version_record(v: EnforcedBlockVersion) -> dict[str, Any]:
    return {
        "id": v.id,
        "enforced_block_id": v.block_id,
        "version": v.version,
        "template_type": v.template_type.value,
        "additional_description": v.additional_description,
    }


class EnforcedService:
    def __init__(self, store: Store) -> None:
        self.store = store

    @contextmanager
    def _writing(self, caller: Caller, exists: ApiError) -> Iterator[Connection]:
        require_project_write(caller)
        try:
            with self.store.write(caller.project_id) as conn:
                yield conn
        except IntegrityError:
            raise exists from None

    def _block(
        self, conn: Connection, caller: Caller, ident: str, *, lock: bool = False
    ) -> EnforcedBlock:
        block = EnforcedRepo(conn).find_block(caller.project_id, ident, lock=lock)
        if block is None:
            raise _block_missing(ident)
        return block

    def _version(self, conn: Connection, block: EnforcedBlock, ident: str) -> EnforcedBlockVersion:
        version = EnforcedRepo(conn).find_version(block.id, ident)
        if version is None:
            raise _version_missing(ident)
        return version

    # --- blocks ---------------------------------------------------------------------------

    def list_all(self, caller: Caller, *, descending: bool = False) -> list[EnforcedBlock]:
        _require_read(caller)
        with self.store.read() as conn:
            return EnforcedRepo(conn).list_blocks(caller.project_id, descending=descending)

    def get(self, caller: Caller, ident: str) -> EnforcedBlock:
        _require_read(caller)
        with self.store.read() as conn:
            block = self._block(conn, caller, ident)
            block.latest_version = EnforcedRepo(conn).latest([block.id]).get(block.id)
        return block

    def create(
        self,
        caller: Caller,
        *,
        name: str | None,
        template_type_name: str | None,
        block_content: str | None,
        additional_description: str | None = None,
        labels: Mapping[str, str] | None = None,
        version: str | None = None,
    ) -> EnforcedBlock:
        require_project_write(caller)
        name = validate_name("enforced block", name, field="name")
        new_labels = validate_labels(labels)
        kind = template_type(template_type_name)
        label = _version_label(version) or "v1"
        description = validate_description(additional_description, field="additional_description")
        content = block_content or ""
        check_content(kind, content)
        now = utcnow()
        block = EnforcedBlock(new_id(), caller.project_id, name, new_labels, now, now)
        first = EnforcedBlockVersion(
            new_id(), block.id, label, kind, content, description, now, now
        )
        exists = already_exists(f"Enforced block {name} already exists.")
        with self._writing(caller, exists) as conn:
            repo = EnforcedRepo(conn)
            if repo.block_named(caller.project_id, name) is not None:
                raise exists
            repo.insert_block(block)
            repo.insert_version(first)
            block.latest_version = first
            change = Change(
                AuditAction.CREATE,
                "Created enforced block",
                {
                    "enforced_block": _block_record(block),
                    "enforced_block_version": _version_record(first),
                },
            )
            record(conn, caller.project_id, caller, change)
        return block

    def update(
        self,
        caller: Caller,
        ident: str,
        *,
        name: str | None,
        labels: Mapping[str, str] | None,
        update_mask: str | None,
    ) -> EnforcedBlock:
        require_project_write(caller)
        if update_mask is not None and update_mask.strip():
            paths = parse_field_mask(update_mask, _BLOCK_MASK)
        else:
            paths = {p for p, v in (("name", name), ("labels", labels)) if v is not None}
        new_name = validate_name("enforced block", name, field="name") if "name" in paths else None
        new_labels = validate_labels(labels) if "labels" in paths else None
        exists = already_exists(f"Enforced block {name} already exists.")
        with self._writing(caller, exists) as conn:
            repo = EnforcedRepo(conn)
            block = self._block(conn, caller, ident, lock=True)
            before = _block_record(block)
            values: dict[str, Any] = {}
            if new_name is not None and new_name != block.name:
                if repo.block_named(caller.project_id, new_name) is not None:
                    raise exists
                values["name"] = block.name = new_name
            if new_labels is not None:
                values["labels"] = block.labels = new_labels
            if values:
                values["updated_at"] = block.updated_at = utcnow()
                repo.update_block(block.id, **values)
                change = Change(
                    AuditAction.UPDATE,
                    "Updated enforced block",
                    {
                        "enforced_block": _block_record(block),
                        "before": before,
                        "after": _block_record(block),
                    },
                )
                record(conn, caller.project_id, caller, change)
            block.latest_version = repo.latest([block.id]).get(block.id)
        return block

    def delete(self, caller: Caller, ident: str) -> None:
        require_project_write(caller)
        with self.store.write(caller.project_id) as conn:
            repo = EnforcedRepo(conn)
            block = self._block(conn, caller, ident, lock=True)
            linked = repo.links_of_block(block.id)
            if linked:
                raise failed_precondition(
                    f"Enforced block {block.name} is linked to buckets "
                    f"{_names(linked)}; unlink them before deleting it."
                )
            repo.delete_block(block.id)
            change = Change(
                AuditAction.DELETE,
                "Deleted enforced block",
                {"enforced_block": _block_record(block)},
            )
            record(conn, caller.project_id, caller, change)

    # --- versions -------------------------------------------------------------------------

    def versions(self, caller: Caller, ident: str) -> BlockVersions:
        _require_read(caller)
        with self.store.read() as conn:
            block = self._block(conn, caller, ident)
            return BlockVersions(block, EnforcedRepo(conn).versions(block.id))

    def create_version(
        self,
        caller: Caller,
        ident: str,
        *,
        version: str | None,
        template_type_name: str | None,
        block_content: str | None,
        additional_description: str | None = None,
    ) -> EnforcedBlockVersion:
        require_project_write(caller)
        kind = template_type(template_type_name)
        label = _version_label(version)
        description = validate_description(additional_description, field="additional_description")
        content = block_content or ""
        check_content(kind, content)
        exists = already_exists(f"Version {label} of this enforced block already exists.")
        with self._writing(caller, exists) as conn:
            repo = EnforcedRepo(conn)
            block = self._block(conn, caller, ident, lock=True)
            existing = repo.versions(block.id)
            if not label:
                label = f"v{len(existing) + 1}"
            if any(v.version == label for v in existing):
                raise already_exists(
                    f"Version {label} of enforced block {block.name} already exists."
                )
            now = utcnow()
            created = EnforcedBlockVersion(
                new_id(), block.id, label, kind, content, description, now, now
            )
            repo.insert_version(created)
            repo.update_block(block.id, updated_at=now)
            change = Change(
                AuditAction.CREATE,
                "Created enforced block version",
                {
                    "enforced_block": _block_record(block),
                    "enforced_block_version": _version_record(created),
                },
            )
            record(conn, caller.project_id, caller, change)
        return created

    def update_version(
        self,
        caller: Caller,
        ident: str,
        version_ident: str,
        *,
        additional_description: str | None,
        update_mask: str | None,
    ) -> EnforcedBlockVersion:
        require_project_write(caller)
        if update_mask is not None and update_mask.strip():
            paths = parse_field_mask(update_mask, _VERSION_MASK)
        else:
            paths = {"additional_description"} if additional_description is not None else set()
        description = validate_description(additional_description, field="additional_description")
        with self.store.write(caller.project_id) as conn:
            repo = EnforcedRepo(conn)
            block = self._block(conn, caller, ident, lock=True)
            version = self._version(conn, block, version_ident)
            if "additional_description" in paths and description != version.additional_description:
                before = _version_record(version)
                version.additional_description = description
                version.updated_at = utcnow()
                repo.update_version(
                    version.id, additional_description=description, updated_at=version.updated_at
                )
                change = Change(
                    AuditAction.UPDATE,
                    "Updated enforced block version",
                    {
                        "enforced_block": _block_record(block),
                        "enforced_block_version": _version_record(version),
                        "before": before,
                        "after": _version_record(version),
                    },
                )
                record(conn, caller.project_id, caller, change)
        return version

    def delete_version(self, caller: Caller, ident: str, version_ident: str) -> None:
        require_project_write(caller)
        with self.store.write(caller.project_id) as conn:
            repo = EnforcedRepo(conn)
            block = self._block(conn, caller, ident, lock=True)
            version = self._version(conn, block, version_ident)
            linked = repo.links_of_version(version.id)
            if linked:
                raise failed_precondition(
                    f"Version {version.version} of enforced block {block.name} is linked to "
                    f"buckets {_names(linked)}; unlink them before deleting it."
                )
            repo.delete_version(version.id)
            change = Change(
                AuditAction.DELETE,
                "Deleted enforced block version",
                {
                    "enforced_block": _block_record(block),
                    "enforced_block_version": _version_record(version),
                },
            )
            record(conn, caller.project_id, caller, change)

    # --- links ----------------------------------------------------------------------------

    def linked(self, caller: Caller, ident: str, version_ident: str) -> list[LinkedBucket]:
        _require_read(caller)
        with self.store.read() as conn:
            block = self._block(conn, caller, ident)
            version = self._version(conn, block, version_ident)
            found = EnforcedRepo(conn).linked_buckets(version.id)
            load_buckets(conn, [b for _, b in found], caller)
        return [LinkedBucket(link, bucket) for link, bucket in found]

    def manage_links(
        self, caller: Caller, ident: str, version_ident: str, bucket_names: Sequence[str] | None
    ) -> list[EnforcedLink]:
        """Link exactly ``bucket_names`` to the version (``None`` is none); a bucket linked
        to another version of the block moves to this one."""
        require_project_write(caller)
        names = list(dict.fromkeys(bucket_names or []))
        if len(names) > MAX_LINKS:
            raise invalid(f"bucket_names has more than {MAX_LINKS} entries.", field="bucket_names")
        with self.store.write(caller.project_id) as conn:
            repo = EnforcedRepo(conn)
            block = self._block(conn, caller, ident, lock=True)
            version = self._version(conn, block, version_ident)
            bucket_repo = BucketRepo(conn)
            targets: list[Bucket] = []
            for name in names:
                bucket = bucket_repo.get(caller.project_id, name) if name else None
                if bucket is None:
                    raise bucket_missing(name)
                targets.append(bucket)
            before = [link.bucket_name for link in repo.links_of_version(version.id)]
            result = repo.replace_links(block.id, version.id, targets, utcnow())
            after = [link.bucket_name for link in result]
            if before != after:
                change = Change(
                    AuditAction.UPDATE,
                    "Linked enforced block to buckets",
                    {
                        "enforced_block": _block_record(block),
                        "enforced_block_version": _version_record(version),
                        "before": {"buckets": before},
                        "after": {"buckets": after},
                    },
                )
                record(conn, caller.project_id, caller, change)
        return result

    def for_bucket(
        self, caller: Caller, bucket_name: str
    ) -> list[tuple[EnforcedBlock, EnforcedBlockVersion]]:
        """What Packer injects into builds of the bucket (a bucket the caller may see)."""
        with self.store.read() as conn:
            bucket = bucket_or_404(conn, caller, bucket_name)
            return EnforcedRepo(conn).for_bucket(bucket.id)


def _version_label(value: str | None) -> str:
    label = validate_text(value, field="version", limit=MAX_VERSION_LABEL).strip()
    return label


def _names(items: Sequence[EnforcedLink]) -> str:
    return ", ".join(link.bucket_name for link in items)

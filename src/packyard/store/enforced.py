"""Enforced provisioner blocks, their versions and their links to buckets."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, update

from packyard.domain.enforced import EnforcedBlock, EnforcedBlockVersion, EnforcedLink
from packyard.domain.enums import TemplateType
from packyard.domain.models import Bucket
from packyard.ids import new_id
from packyard.store.buckets import bucket_from_row
from packyard.store.schema import (
    buckets,
    enforced_block_links,
    enforced_block_versions,
    enforced_blocks,
)

blocks, versions, links = enforced_blocks, enforced_block_versions, enforced_block_links

# Newest first: ULIDs grow with time, so the id breaks ties between equal timestamps.
_NEWEST = (versions.c.created_at.desc(), versions.c.id.desc())


def _block(row: Any) -> EnforcedBlock:
    m = row._mapping
    return EnforcedBlock(
        id=m["id"],
        project_id=m["project_id"],
        name=m["name"],
        labels=dict(m["labels"] or {}),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _version(row: Any) -> EnforcedBlockVersion:
    m = row._mapping
    return EnforcedBlockVersion(
        id=m["id"],
        block_id=m["block_id"],
        version=m["version"],
        template_type=TemplateType(m["template_type"]),
        block_content=m["block_content"],
        additional_description=m["additional_description"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _link(row: Any) -> EnforcedLink:
    m = row._mapping
    return EnforcedLink(
        id=m["id"],
        bucket_id=m["bucket_id"],
        bucket_name=m["bucket_name"],
        block_id=m["block_id"],
        version_id=m["version_id"],
        created_at=m["created_at"],
    )


_LINKS = select(links, buckets.c.name.label("bucket_name")).join(
    buckets, buckets.c.id == links.c.bucket_id
)


class EnforcedRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- blocks ---------------------------------------------------------------------------

    def insert_block(self, b: EnforcedBlock) -> None:
        self.conn.execute(
            insert(blocks).values(
                id=b.id,
                project_id=b.project_id,
                name=b.name,
                labels=b.labels,
                created_at=b.created_at,
                updated_at=b.updated_at,
            )
        )

    def find_block(
        self, project_id: str, ident: str, *, lock: bool = False
    ) -> EnforcedBlock | None:
        """A block of the project by id or by name."""
        stmt = select(blocks).where(
            blocks.c.project_id == project_id, or_(blocks.c.id == ident, blocks.c.name == ident)
        )
        if lock:
            stmt = stmt.with_for_update()
        rows = self.conn.execute(stmt).all()
        # An id is matched before a name (a block may be named like another's id).
        row = next((r for r in rows if r.id == ident), rows[0] if rows else None)
        return _block(row) if row is not None else None

    def block_named(self, project_id: str, name: str) -> EnforcedBlock | None:
        row = self.conn.execute(
            select(blocks).where(blocks.c.project_id == project_id, blocks.c.name == name)
        ).first()
        return _block(row) if row is not None else None

    def list_blocks(self, project_id: str, *, descending: bool = False) -> list[EnforcedBlock]:
        order = blocks.c.name.desc() if descending else blocks.c.name
        rows = self.conn.execute(
            select(blocks).where(blocks.c.project_id == project_id).order_by(order)
        )
        return [_block(r) for r in rows]

    def update_block(self, block_id: str, **values: Any) -> None:
        self.conn.execute(update(blocks).where(blocks.c.id == block_id).values(**values))

    def delete_block(self, block_id: str) -> None:
        self.conn.execute(delete(links).where(links.c.block_id == block_id))
        self.conn.execute(delete(versions).where(versions.c.block_id == block_id))
        self.conn.execute(delete(blocks).where(blocks.c.id == block_id))

    # --- versions -------------------------------------------------------------------------

    def insert_version(self, v: EnforcedBlockVersion) -> None:
        self.conn.execute(
            insert(versions).values(
                id=v.id,
                block_id=v.block_id,
                version=v.version,
                template_type=v.template_type.value,
                block_content=v.block_content,
                additional_description=v.additional_description,
                created_at=v.created_at,
                updated_at=v.updated_at,
            )
        )

    def versions(self, block_id: str) -> list[EnforcedBlockVersion]:
        rows = self.conn.execute(
            select(versions).where(versions.c.block_id == block_id).order_by(*_NEWEST)
        )
        return [_version(r) for r in rows]

    def latest(self, block_ids: Sequence[str]) -> dict[str, EnforcedBlockVersion]:
        if not block_ids:
            return {}
        rows = self.conn.execute(
            select(versions).where(versions.c.block_id.in_(block_ids)).order_by(*_NEWEST)
        )
        out: dict[str, EnforcedBlockVersion] = {}
        for r in rows:
            out.setdefault(r.block_id, _version(r))
        return out

    def find_version(self, block_id: str, ident: str) -> EnforcedBlockVersion | None:
        """A version of the block by id or by its version label."""
        rows = self.conn.execute(
            select(versions).where(
                versions.c.block_id == block_id,
                or_(versions.c.id == ident, versions.c.version == ident),
            )
        ).all()
        row = next((r for r in rows if r.id == ident), rows[0] if rows else None)
        return _version(row) if row is not None else None

    def update_version(self, version_id: str, **values: Any) -> None:
        self.conn.execute(update(versions).where(versions.c.id == version_id).values(**values))

    def delete_version(self, version_id: str) -> None:
        self.conn.execute(delete(versions).where(versions.c.id == version_id))

    # --- links ----------------------------------------------------------------------------

    def links_of_block(self, block_id: str) -> list[EnforcedLink]:
        rows = self.conn.execute(
            _LINKS.where(links.c.block_id == block_id).order_by(buckets.c.name)
        )
        return [_link(r) for r in rows]

    def links_of_version(self, version_id: str) -> list[EnforcedLink]:
        rows = self.conn.execute(
            _LINKS.where(links.c.version_id == version_id).order_by(buckets.c.name)
        )
        return [_link(r) for r in rows]

    def replace_links(
        self, block_id: str, version_id: str, buckets_: Iterable[Bucket], now: datetime
    ) -> list[EnforcedLink]:
        """Link exactly ``buckets_`` to the version: others lose their link to it, and a
        bucket linked to another version of the block moves to this one."""
        wanted = {b.id: b for b in buckets_}
        current = {link.bucket_id: link for link in self.links_of_version(version_id)}
        gone = [bid for bid in current if bid not in wanted]
        if gone:
            self.conn.execute(
                delete(links).where(links.c.version_id == version_id, links.c.bucket_id.in_(gone))
            )
        added = [bid for bid in wanted if bid not in current]
        if added:
            self.conn.execute(
                delete(links).where(links.c.block_id == block_id, links.c.bucket_id.in_(added))
            )
            self.conn.execute(
                insert(links),
                [
                    {
                        "id": new_id(),
                        "bucket_id": bid,
                        "block_id": block_id,
                        "version_id": version_id,
                        "created_at": now,
                    }
                    for bid in added
                ],
            )
        return self.links_of_version(version_id)

    def linked_buckets(self, version_id: str) -> list[tuple[EnforcedLink, Bucket]]:
        rows = self.conn.execute(
            select(
                links.c.id.label("link_id"),
                links.c.block_id,
                links.c.version_id,
                links.c.created_at.label("linked_at"),
                buckets,
            )
            .join(buckets, buckets.c.id == links.c.bucket_id)
            .where(links.c.version_id == version_id)
            .order_by(buckets.c.name)
        )
        out = []
        for r in rows:
            m = r._mapping
            link = EnforcedLink(
                id=m["link_id"],
                bucket_id=m["id"],
                bucket_name=m["name"],
                block_id=m["block_id"],
                version_id=m["version_id"],
                created_at=m["linked_at"],
            )
            out.append((link, bucket_from_row(r)))
        return out

    def for_bucket(self, bucket_id: str) -> list[tuple[EnforcedBlock, EnforcedBlockVersion]]:
        """The blocks linked to a bucket, each with the version linked, by block name."""
        v = versions.alias("v")
        rows = self.conn.execute(
            select(blocks, *(c.label(f"v_{c.name}") for c in v.c))
            .join(links, links.c.block_id == blocks.c.id)
            .join(v, v.c.id == links.c.version_id)
            .where(links.c.bucket_id == bucket_id)
            .order_by(blocks.c.name)
        )
        out = []
        for r in rows:
            m = r._mapping
            version = EnforcedBlockVersion(
                id=m["v_id"],
                block_id=m["v_block_id"],
                version=m["v_version"],
                template_type=TemplateType(m["v_template_type"]),
                block_content=m["v_block_content"],
                additional_description=m["v_additional_description"],
                created_at=m["v_created_at"],
                updated_at=m["v_updated_at"],
            )
            out.append((_block(r), version))
        return out

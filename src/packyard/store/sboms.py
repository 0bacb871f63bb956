"""SBOM document storage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, func, select

from packyard.domain.enums import SbomFormat
from packyard.store.schema import buckets, builds, sboms, versions

# Sizes are read from the stored values' headers (SQLite's length() of a blob and
# PostgreSQL's of a bytea do not read the content).
_SIZE = func.coalesce(func.sum(func.length(sboms.c.content)), 0)
_BUILD_USAGE = select(func.count(), _SIZE).where(sboms.c.build_id == bindparam("build_id"))
_PROJECT_BYTES = (
    select(_SIZE)
    .select_from(
        sboms.join(builds, builds.c.id == sboms.c.build_id)
        .join(versions, versions.c.id == builds.c.version_id)
        .join(buckets, buckets.c.id == versions.c.bucket_id)
    )
    .where(buckets.c.project_id == bindparam("project_id"))
)
_FOR_VERSION = (
    select(sboms.c.id, sboms.c.build_id, sboms.c.name, sboms.c.format, sboms.c.created_at)
    .join(builds, builds.c.id == sboms.c.build_id)
    .where(builds.c.version_id == bindparam("version_id"))
    .order_by(sboms.c.build_id, sboms.c.created_at, sboms.c.id)
)


@dataclass(frozen=True, slots=True)
class Sbom:
    id: str
    build_id: str
    name: str
    format: SbomFormat
    created_at: datetime


class SbomRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def for_build(self, build_id: str) -> list[Sbom]:
        rows = self.conn.execute(
            select(sboms.c.id, sboms.c.build_id, sboms.c.name, sboms.c.format, sboms.c.created_at)
            .where(sboms.c.build_id == build_id)
            .order_by(sboms.c.created_at, sboms.c.id)
        )
        return [Sbom(r.id, r.build_id, r.name, SbomFormat(r.format), r.created_at) for r in rows]

    def for_version(self, version_id: str) -> dict[str, list[Sbom]]:
        """The SBOMs (without their content) of every build of a version, by build id:
        one query."""
        out: dict[str, list[Sbom]] = {}
        for r in self.conn.execute(_FOR_VERSION, {"version_id": version_id}):
            out.setdefault(r.build_id, []).append(
                Sbom(r.id, r.build_id, r.name, SbomFormat(r.format), r.created_at)
            )
        return out

    def exists(self, build_id: str, name: str) -> bool:
        found = self.conn.execute(
            select(sboms.c.id).where(sboms.c.build_id == build_id, sboms.c.name == name)
        ).first()
        return found is not None

    def build_usage(self, build_id: str) -> tuple[int, int]:
        """(number of SBOMs, their total size in bytes) of a build."""
        count, size = self.conn.execute(_BUILD_USAGE, {"build_id": build_id}).one()
        return int(count), int(size)

    def project_bytes(self, project_id: str) -> int:
        """Total size in bytes of the SBOMs of a project."""
        return int(self.conn.execute(_PROJECT_BYTES, {"project_id": project_id}).scalar_one())

    def insert(self, sbom: Sbom, content: bytes) -> None:
        self.conn.execute(
            sboms.insert().values(
                id=sbom.id,
                build_id=sbom.build_id,
                name=sbom.name,
                format=sbom.format.value,
                content=content,
                created_at=sbom.created_at,
            )
        )

    def content(self, sbom_id: str) -> tuple[Sbom, bytes] | None:
        row = self.conn.execute(select(sboms).where(sboms.c.id == sbom_id)).first()
        if row is None:
            return None
        sbom = Sbom(row.id, row.build_id, row.name, SbomFormat(row.format), row.created_at)
        return sbom, bytes(row.content)

    def by_name(self, build_id: str, name: str) -> Sbom | None:
        found = [s for s in self.for_build(build_id) if s.name == name]
        return found[0] if found else None

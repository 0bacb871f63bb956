"""SBOM document storage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from packyard.domain.enums import SbomFormat
from packyard.store.schema import sboms


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

    def exists(self, build_id: str, name: str) -> bool:
        found = self.conn.execute(
            select(sboms.c.id).where(sboms.c.build_id == build_id, sboms.c.name == name)
        ).first()
        return found is not None

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

"""Run task configurations: one row per registry (project)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from packyard.store.schema import registries, run_task_configs


@dataclass(frozen=True, slots=True)
class RunTaskRow:
    project_id: str
    api_id: str
    hmac_key_sealed: bytes
    on_untracked_image: str
    created_at: datetime
    updated_at: datetime


class RunTaskRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get(self, project_id: str) -> RunTaskRow | None:
        row = self.conn.execute(
            select(run_task_configs).where(run_task_configs.c.project_id == project_id)
        ).first()
        return _row(row) if row else None

    def by_api_id(self, api_id: str) -> RunTaskRow | None:
        row = self.conn.execute(
            select(run_task_configs).where(run_task_configs.c.api_id == api_id)
        ).first()
        return _row(row) if row else None

    def project_ids(self, *, lock: bool = False) -> list[str]:
        """Every project with a run task, in order (locked for a rewrite with ``lock``)."""
        query = select(run_task_configs.c.project_id).order_by(run_task_configs.c.project_id)
        return list(self.conn.execute(query.with_for_update() if lock else query).scalars())

    def lock_registry(self, project_id: str) -> bool:
        """Lock the project's registry row (PostgreSQL; SQLite writers take turns anyway)
        so concurrent first calls create one configuration; whether the registry exists."""
        found = self.conn.execute(
            select(registries.c.id).where(registries.c.project_id == project_id).with_for_update()
        ).first()
        return found is not None

    def add(self, row: RunTaskRow) -> None:
        self.conn.execute(
            run_task_configs.insert().values(
                project_id=row.project_id,
                api_id=row.api_id,
                hmac_key_sealed=row.hmac_key_sealed,
                on_untracked_image=row.on_untracked_image,
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
        )

    def update(self, project_id: str, **values: Any) -> None:
        self.conn.execute(
            update(run_task_configs)
            .where(run_task_configs.c.project_id == project_id)
            .values(**values)
        )


def _row(row: Any) -> RunTaskRow:
    return RunTaskRow(
        project_id=row.project_id,
        api_id=row.api_id,
        hmac_key_sealed=bytes(row.hmac_key_sealed),
        on_untracked_image=row.on_untracked_image,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )

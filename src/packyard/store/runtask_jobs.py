"""SQL of the run-task job queue (:mod:`packyard.services.runtask_jobs`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from packyard.store.schema import run_task_jobs

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
PENDING = (QUEUED, RUNNING)


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    project_id: str
    task_result_id: str
    stage: str
    run_id: str
    workspace_name: str
    plan_json_api_url: str | None
    callback_url: str
    access_token_sealed: bytes | None
    outcomes: bool
    on_untracked_image: str
    link_base: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str
    result: dict[str, Any] | None
    created_at: datetime
    finished_at: datetime | None


def _job(row: Any) -> Job:
    sealed = row.access_token_sealed
    return Job(
        id=row.id,
        project_id=row.project_id,
        task_result_id=row.task_result_id,
        stage=row.stage,
        run_id=row.run_id,
        workspace_name=row.workspace_name,
        plan_json_api_url=row.plan_json_api_url,
        callback_url=row.callback_url,
        access_token_sealed=bytes(sealed) if sealed is not None else None,
        outcomes=bool(row.outcomes),
        on_untracked_image=row.on_untracked_image,
        link_base=row.link_base,
        state=row.state,
        attempts=int(row.attempts),
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        result=row.result,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


class RunTaskJobRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get(self, job_id: str) -> Job | None:
        row = self.conn.execute(select(run_task_jobs).where(run_task_jobs.c.id == job_id)).first()
        return _job(row) if row is not None else None

    def by_task_result(self, task_result_id: str) -> Job | None:
        row = self.conn.execute(
            select(run_task_jobs).where(run_task_jobs.c.task_result_id == task_result_id)
        ).first()
        return _job(row) if row is not None else None

    def insert(self, values: dict[str, Any]) -> None:
        self.conn.execute(run_task_jobs.insert().values(**values))

    def has_due(self, now: datetime) -> bool:
        row = self.conn.execute(
            select(run_task_jobs.c.id)
            .where(run_task_jobs.c.state.in_(PENDING), run_task_jobs.c.next_attempt_at <= now)
            .limit(1)
        ).first()
        return row is not None

    def claim(self, now: datetime, lease_until: datetime) -> Job | None:
        """Take the job due first: a queued one whose time has come, or a running one whose
        claim has lapsed. PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so servers never take the
        same job; SQLite: write transactions are serial."""
        row = self.conn.execute(
            select(run_task_jobs.c.id)
            .where(run_task_jobs.c.state.in_(PENDING), run_task_jobs.c.next_attempt_at <= now)
            .order_by(run_task_jobs.c.next_attempt_at, run_task_jobs.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if row is None:
            return None
        self.conn.execute(
            update(run_task_jobs)
            .where(run_task_jobs.c.id == row.id)
            .values(
                state=RUNNING,
                attempts=run_task_jobs.c.attempts + 1,
                next_attempt_at=lease_until,
            )
        )
        return self.get(row.id)

    def change(self, job: Job, **values: Any) -> bool:
        """Update ``job`` if it is still held by this claim (no other server took it over
        after its claim lapsed); whether it was."""
        result = self.conn.execute(
            update(run_task_jobs)
            .where(
                run_task_jobs.c.id == job.id,
                run_task_jobs.c.attempts == job.attempts,
                run_task_jobs.c.state == RUNNING,
            )
            .values(**values)
        )
        return bool(result.rowcount)

    def backlog(self) -> tuple[int, datetime | None]:
        """(jobs not finished, when the oldest of them arrived)."""
        row = self.conn.execute(
            select(func.count(), func.min(run_task_jobs.c.created_at)).where(
                run_task_jobs.c.state.in_(PENDING)
            )
        ).one()
        return int(row[0]), row[1]


__all__ = ["DONE", "FAILED", "QUEUED", "RUNNING", "Job", "RunTaskJobRepo"]

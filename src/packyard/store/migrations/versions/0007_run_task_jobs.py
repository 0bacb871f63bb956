"""run task jobs: the durable queue of HCP Terraform run-task requests

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 14:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from packyard.store.types import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_task_jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("task_result_id", sa.String(length=256), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=256), nullable=False),
        sa.Column("workspace_name", sa.String(length=256), nullable=False),
        sa.Column("plan_json_api_url", sa.Text(), nullable=True),
        sa.Column("callback_url", sa.Text(), nullable=False),
        sa.Column("access_token_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("outcomes", sa.Boolean(), nullable=False),
        sa.Column("on_untracked_image", sa.String(length=16), nullable=False),
        sa.Column("link_base", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_run_task_jobs_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_task_jobs")),
        sa.UniqueConstraint("task_result_id", name=op.f("uq_run_task_jobs_task_result_id")),
    )
    op.create_index(
        "ix_run_task_jobs_due", "run_task_jobs", ["state", "next_attempt_at"], unique=False
    )
    op.create_index("ix_run_task_jobs_project_id", "run_task_jobs", ["project_id"], unique=False)


def downgrade() -> None:
    op.drop_table("run_task_jobs")

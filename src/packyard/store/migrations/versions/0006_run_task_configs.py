"""run task configuration per registry (endpoint id, sealed HMAC key, untracked-image policy)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 14:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from packyard.store.types import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_task_configs",
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("api_id", sa.String(length=64), nullable=False),
        sa.Column("hmac_key_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("on_untracked_image", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_run_task_configs_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_run_task_configs")),
        sa.UniqueConstraint("api_id", name=op.f("uq_run_task_configs_api_id")),
    )


def downgrade() -> None:
    op.drop_table("run_task_configs")

"""versions of a bucket in creation order (an index for ListVersions and the console)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 12:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_versions_bucket_created",
        "versions",
        ["bucket_id", "created_at", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_versions_bucket_created", table_name="versions")

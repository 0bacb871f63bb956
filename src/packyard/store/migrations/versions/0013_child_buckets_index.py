"""child edges indexed by parent bucket, child bucket and time (the bucket page's children)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 00:45:00
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_version_edges_parent_child",
        "version_edges",
        ["parent_bucket_id", "child_bucket_id", "created_at", "child_version_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_version_edges_parent_child", table_name="version_edges")

"""child edges indexed by parent bucket, channel and version (the children's roll-up)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 21:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ix_version_edges_parent_bucket_id stays (store/schema.py says why).
    op.create_index(
        "ix_version_edges_parent_channel",
        "version_edges",
        ["parent_bucket_id", "parent_channel_id", "parent_version_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_version_edges_parent_channel", table_name="version_edges")

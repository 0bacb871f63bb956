"""enforced blocks: provisioner blocks, their versions and their links to buckets

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 17:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import packyard.store.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enforced_blocks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("created_at", packyard.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", packyard.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_enforced_blocks_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enforced_blocks")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_enforced_blocks_project_id_name")),
    )
    op.create_table(
        "enforced_block_versions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("block_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("template_type", sa.String(length=32), nullable=False),
        sa.Column("block_content", sa.Text(), nullable=False),
        sa.Column("additional_description", sa.Text(), nullable=False),
        sa.Column("created_at", packyard.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", packyard.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["block_id"],
            ["enforced_blocks.id"],
            name=op.f("fk_enforced_block_versions_block_id_enforced_blocks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enforced_block_versions")),
        sa.UniqueConstraint(
            "block_id", "version", name=op.f("uq_enforced_block_versions_block_id_version")
        ),
    )
    op.create_table(
        "enforced_block_links",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("bucket_id", sa.String(length=36), nullable=False),
        sa.Column("block_id", sa.String(length=36), nullable=False),
        sa.Column("version_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", packyard.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bucket_id"],
            ["buckets.id"],
            name=op.f("fk_enforced_block_links_bucket_id_buckets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["block_id"],
            ["enforced_blocks.id"],
            name=op.f("fk_enforced_block_links_block_id_enforced_blocks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["enforced_block_versions.id"],
            name=op.f("fk_enforced_block_links_version_id_enforced_block_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enforced_block_links")),
        sa.UniqueConstraint(
            "bucket_id", "block_id", name=op.f("uq_enforced_block_links_bucket_id_block_id")
        ),
    )
    op.create_index(
        "ix_enforced_block_links_block_id", "enforced_block_links", ["block_id"], unique=False
    )
    op.create_index(
        "ix_enforced_block_links_version_id", "enforced_block_links", ["version_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_enforced_block_links_version_id", table_name="enforced_block_links")
    op.drop_index("ix_enforced_block_links_block_id", table_name="enforced_block_links")
    op.drop_table("enforced_block_links")
    op.drop_table("enforced_block_versions")
    op.drop_table("enforced_blocks")

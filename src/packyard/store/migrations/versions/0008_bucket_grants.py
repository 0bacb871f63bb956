"""bucket grants: roles on single buckets, and each bucket's IAM policy etag

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 16:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from packyard.store.types import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bucket_grants",
        sa.Column("bucket_id", sa.String(length=36), nullable=False),
        sa.Column("member_id", sa.String(length=36), nullable=False),
        sa.Column("principal_id", sa.String(length=36), nullable=True),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "(principal_id IS NULL) <> (user_id IS NULL) "
            "AND member_id = COALESCE(principal_id, user_id)",
            name="ck_bucket_grants_one_member",
        ),
        sa.ForeignKeyConstraint(
            ["bucket_id"],
            ["buckets.id"],
            name=op.f("fk_bucket_grants_bucket_id_buckets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_bucket_grants_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_bucket_grants_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("bucket_id", "member_id", "role", name=op.f("pk_bucket_grants")),
    )
    op.create_index("ix_bucket_grants_member_id", "bucket_grants", ["member_id"], unique=False)
    op.create_table(
        "bucket_policies",
        sa.Column("bucket_id", sa.String(length=36), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bucket_id"],
            ["buckets.id"],
            name=op.f("fk_bucket_policies_bucket_id_buckets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("bucket_id", name=op.f("pk_bucket_policies")),
    )


def downgrade() -> None:
    op.drop_table("bucket_policies")
    op.drop_table("bucket_grants")

"""cache generations per bucket: (scope, bucket) keys

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per project at most until now: copied over as the project-wide keys, so no
    # counter goes back.
    rows = op.get_bind().execute(sa.text("SELECT scope, generation FROM cache_generations")).all()
    op.drop_table("cache_generations")
    table = op.create_table(
        "cache_generations",
        sa.Column("scope", sa.String(length=36), nullable=False),
        sa.Column("bucket", sa.String(length=128), server_default="", nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "bucket", name=op.f("pk_cache_generations")),
        # On SQLite the rows live in the primary key's b-tree: a project's key range is
        # read without a lookup per row.
        sqlite_with_rowid=False,
    )
    op.bulk_insert(table, [{"scope": s, "bucket": "", "generation": g} for s, g in rows])


def downgrade() -> None:
    # Each project's keys fold into its one counter: no sum goes back.
    rows = (
        op.get_bind()
        .execute(sa.text("SELECT scope, SUM(generation) FROM cache_generations GROUP BY scope"))
        .all()
    )
    op.drop_table("cache_generations")
    table = op.create_table(
        "cache_generations",
        sa.Column("scope", sa.String(length=36), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_cache_generations")),
    )
    op.bulk_insert(table, [{"scope": s, "generation": int(g)} for s, g in rows])

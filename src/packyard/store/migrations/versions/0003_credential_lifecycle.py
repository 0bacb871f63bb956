"""token signing keys with ids and retirement; principals' token version

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 10:30:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from packyard.store.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_LEGACY_SETTING = "token_signing_key"
# The key that existed before key ids did keeps a fixed id: tokens issued without a ``kid``
# header are checked against the current key, which it is until the first rotation.
INITIAL_KEY_ID = "initial"


def upgrade() -> None:
    keys = op.create_table(
        "signing_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("retire_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signing_keys")),
    )
    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("token_version", sa.Integer(), nullable=False, server_default="1")
        )
    conn = op.get_bind()
    settings = sa.table("settings", sa.column("key", sa.String), sa.column("value", sa.Text))
    legacy = conn.execute(
        sa.select(settings.c.value).where(settings.c.key == _LEGACY_SETTING)
    ).scalar_one_or_none()
    if legacy is not None:
        op.bulk_insert(
            keys,
            [
                {
                    "id": INITIAL_KEY_ID,
                    "secret": legacy,
                    "created_at": datetime.now(UTC),
                    "retire_at": None,
                }
            ],
        )
        conn.execute(settings.delete().where(settings.c.key == _LEGACY_SETTING))


def downgrade() -> None:
    conn = op.get_bind()
    keys = sa.table(
        "signing_keys",
        sa.column("secret", sa.Text),
        sa.column("created_at", UTCDateTime),
        sa.column("retire_at", UTCDateTime),
    )
    current = conn.execute(
        sa.select(keys.c.secret)
        .where(keys.c.retire_at.is_(None))
        .order_by(keys.c.created_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    if current is not None:
        settings = sa.table("settings", sa.column("key", sa.String), sa.column("value", sa.Text))
        conn.execute(settings.insert().values(key=_LEGACY_SETTING, value=current))
    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.drop_column("token_version")
    op.drop_table("signing_keys")

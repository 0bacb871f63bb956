"""Alembic environment: runs on the connection handed over by packyard.store.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from packyard.store.schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):  # pragma: no cover - only via packyard.store.migrate
    raise RuntimeError("run migrations through packyard.store.migrate.upgrade()")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()

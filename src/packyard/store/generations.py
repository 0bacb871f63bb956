"""Generation counters: what makes cached read responses exact.

Every write transaction bumps one counter in ``cache_generations`` just before it
commits: the counter of the project it changed, or the global counter (scope
``*``) when the writer did not say which project it changed (background jobs,
tenancy, tests writing through the store). A project's *generation* is the sum of
its counter and the global one; both only grow, so an equal sum means neither
moved.

A reader that takes the generation **before** reading content gets content at
least as new as that generation. A response cached under generation ``g`` is
served again only while the generation is still ``g``: any write that committed
in between — in this process or another one on the same database — has moved
the sum, so no response older than a returned write is ever served.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, select, text

from packyard.store.schema import buckets, versions

GLOBAL_SCOPE = "*"

# The same SQL on SQLite (>= 3.24) and PostgreSQL.
_BUMP = text(
    "INSERT INTO cache_generations (scope, generation) VALUES (:scope, 1) "
    "ON CONFLICT (scope) DO UPDATE SET generation = cache_generations.generation + 1"
)
# Raw DB-API text for the per-request probe (no SQLAlchemy on the hot path).
PROBE_SQL = {
    "sqlite": "SELECT COALESCE(SUM(generation), 0) FROM cache_generations WHERE scope IN (?, '*')",
    "postgresql": "SELECT COALESCE(SUM(generation), 0)::bigint FROM cache_generations "
    "WHERE scope IN (%s, '*')",
}


def bump(conn: Connection, project_id: str | None) -> None:
    """Move the generation of ``project_id`` (or of every project, for ``None``)."""
    conn.execute(_BUMP, {"scope": project_id or GLOBAL_SCOPE})


def current(conn: Connection, project_id: str) -> int:
    """The project's generation as ``conn`` sees it now."""
    stmt = text(
        "SELECT COALESCE(SUM(generation), 0) FROM cache_generations WHERE scope IN (:scope, '*')"
    )
    return int(conn.execute(stmt, {"scope": project_id}).scalar_one())


def next_scheduled_revocation(conn: Connection, project_id: str, now: datetime) -> datetime | None:
    """When the earliest revocation in the project that is still in the future takes effect.

    A version's status (and so every response showing it) changes at that moment
    without any write, so responses cached now are good until then at most.
    """
    stmt = (
        select(func.min(versions.c.revoke_at))
        .select_from(versions.join(buckets, buckets.c.id == versions.c.bucket_id))
        .where(versions.c.revoke_at > now, buckets.c.project_id == project_id)
    )
    value: datetime | None = conn.execute(stmt).scalar_one_or_none()
    return value

"""Generation counters: what makes cached read responses exact.

``cache_generations`` holds monotonic counters keyed ``(scope, bucket)``:

- ``(project, "")``: the project-wide key of a project;
- ``(project, name)``: the key of the bucket called ``name`` in that project;
- ``(project, name + "/")``: its *outer* key, moved only by the changes that the
  buckets one ancestry edge away show (its channels, its versions' numbers);
- ``("*", "")``: the global key.

Every write transaction bumps, just before it commits, the keys of what it changed:

- a write that declared itself confined to buckets (:func:`confine`, with the
  buckets its changes reach added by :func:`touch`) bumps those buckets' keys, and
  their outer keys too where it said so (``reveal``);
- any other write naming its project bumps the project-wide key (correctness
  first: grants, policies, registry settings, bucket creation and deletion,
  revocations cascading to descendants, deletions… all take this path);
- a write naming no project (background jobs, tenancy, tests writing through the
  store) bumps the global key.

A cached response depends on a set of keys: a response about one bucket on that
bucket's key, the outer keys of the buckets its ancestry edges lead to (one hop
up and down: parents' channels, children's versions), the project-wide key and
the global key; a project-wide response (ListBuckets, search, the registry) on every
key of the project and the global key. Its *generation* is the sum of those
counters; counters only grow and rows are never deleted, so an equal sum means
none of them moved.

A reader that takes the generation **before** reading content gets content at
least as new as that generation. A response cached under generation ``g`` is
served again only while its keys still sum to ``g``: any write that committed in
between and changed what the response shows — in this process or another one
on the same database — has moved one of them, so no response older than a
returned write is ever served.

Why one hop is enough: everything a bucket's responses show of another bucket
is either immutable (names, fingerprints), or an edge's other end: the parent's
channels (version, existence, restriction), the parent's and the child's version
numbers. Those move only in writes that reveal (channel changes, completions) or
that are project-wide (deletions, revocations, which copy down the ancestry into
each descendant's own rows). Edges only appear in writes that bump both of their
buckets (:func:`touch` in the child's write).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, TextClause, bindparam, func, select, text, union_all

from packyard.store.schema import buckets, version_edges, versions

GLOBAL_SCOPE = "*"
PROJECT_KEY = ""  # the bucket column of a project's project-wide key
# Above this many neighbours (or edges read to find them) a bucket's responses depend
# on every key of the project instead: the probe then sums one primary-key range.
MAX_NEIGHBOURS = 64
MAX_EDGES_READ = 2_000

# conn.info: (the write transaction, bucket names it declared it is confined to).
_CONFINED = "packyard_cache_buckets"

Buckets = tuple[str, ...] | None  # the bucket keys a response depends on; None: all


def outer_key(bucket_name: str) -> str:
    """The key of what a bucket's ancestry neighbours show of it ('/' is in no name)."""
    return bucket_name + "/"


def confine(conn: Connection, bucket_name: str, *, reveal: bool = False) -> None:
    """Declare that the current write transaction changes ``bucket_name`` and (apart
    from further :func:`confine`, :func:`touch` and :func:`reveal` calls) nothing else.

    Only for writes whose every effect shows in responses about that bucket, or,
    with ``reveal``, also in those of the buckets one ancestry edge away. Without it
    a write counts as changing the whole project.
    """
    keys = {bucket_name, outer_key(bucket_name)} if reveal else {bucket_name}
    txn = conn.get_transaction()
    held = conn.info.get(_CONFINED)
    if held is not None and held[0] is txn:
        held[1].update(keys)
    else:
        conn.info[_CONFINED] = (txn, keys)


def reveal(conn: Connection, bucket_name: str) -> None:
    """The current write changes what ``bucket_name``'s ancestry neighbours show of it:
    a channel, or a version's number (completion)."""
    _add(conn, bucket_name, outer_key(bucket_name))


def touch(conn: Connection, bucket_name: str) -> None:
    """The current write changes ``bucket_name``'s responses too (an ancestry edge
    into it appears or changes). Nothing to add when the write is not confined: the
    project-wide key it bumps covers every bucket."""
    _add(conn, bucket_name)


def _add(conn: Connection, *keys: str) -> None:
    held = conn.info.get(_CONFINED)
    if held is not None and held[0] is conn.get_transaction():
        held[1].update(keys)


@cache
def _bump_statement(count: int) -> TextClause:
    rows = ", ".join(f"(:s{n}, :b{n}, 1)" for n in range(count))  # placeholders only
    return text(
        f"INSERT INTO cache_generations (scope, bucket, generation) VALUES {rows} "  # noqa: S608
        "ON CONFLICT (scope, bucket) DO UPDATE SET generation = cache_generations.generation + 1"
    )


def changed_keys(conn: Connection, project_id: str | None) -> list[tuple[str, str]]:
    """The keys the current write transaction changed (see the module docstring), in key
    order: writers bumping overlapping keys lock them in one order and cannot deadlock."""
    held = conn.info.pop(_CONFINED, None)
    if project_id is None:
        return [(GLOBAL_SCOPE, PROJECT_KEY)]
    if held is None or held[0] is not conn.get_transaction():
        return [(project_id, PROJECT_KEY)]
    return [(project_id, name) for name in sorted(held[1])]


def bump(conn: Connection, keys: Sequence[tuple[str, str]]) -> None:
    """Move ``keys`` (as :func:`changed_keys` gives them) by one. On PostgreSQL the
    journal's statement moves them instead (:func:`packyard.store.journal.flush`)."""
    params: dict[str, Any] = {}
    for n, (scope, bucket) in enumerate(keys):
        params[f"s{n}"] = scope
        params[f"b{n}"] = bucket
    conn.execute(_bump_statement(len(keys)), params)


# Raw DB-API text for the per-request probe (no SQLAlchemy on the hot path). The probe
# passes the project id, then (unless every key counts) the bucket names.
def probe_sql(dialect: str, bucket_count: int | None) -> str:
    """The probe's statement: the sum of the keys a response depends on."""
    if dialect == "postgresql":
        head = "SELECT COALESCE(SUM(generation), 0)::bigint FROM cache_generations "
        where = "WHERE scope IN (%s, '*')"
        return head + where + ("" if bucket_count is None else " AND bucket = ANY(%s)")
    head = "SELECT COALESCE(SUM(generation), 0) FROM cache_generations WHERE scope IN (?, '*')"
    if bucket_count is None:
        return head
    return head + " AND bucket IN (''" + ", ?" * bucket_count + ")"


def probe_params(dialect: str, project_id: str, bucket_names: Buckets) -> Sequence[Any]:
    if bucket_names is None:
        return (project_id,)
    if dialect == "postgresql":
        return (project_id, [PROJECT_KEY, *bucket_names])
    return (project_id, *bucket_names)


_SUM_ALL = text(
    "SELECT COALESCE(SUM(generation), 0) FROM cache_generations WHERE scope IN (:scope, '*')"
)
_SUM_KEYS = text(
    "SELECT COALESCE(SUM(generation), 0) FROM cache_generations "
    "WHERE scope IN (:scope, '*') AND bucket IN :buckets"
).bindparams(bindparam("buckets", expanding=True))


def current(conn: Connection, project_id: str, bucket_names: Buckets = None) -> int:
    """The sum of the keys ``(project_id, bucket_names)`` as ``conn`` sees it now."""
    if bucket_names is None:
        return int(conn.execute(_SUM_ALL, {"scope": project_id}).scalar_one())
    params = {"scope": project_id, "buckets": [PROJECT_KEY, *bucket_names]}
    return int(conn.execute(_SUM_KEYS, params).scalar_one())


def dependencies(conn: Connection, project_id: str, bucket_name: str) -> Buckets:
    """The bucket keys a response about ``bucket_name`` depends on: its own and the outer
    keys of the buckets one ancestry edge away (``None``, every key, when there are many)."""
    bucket_id = conn.execute(
        select(buckets.c.id).where(
            buckets.c.project_id == project_id, buckets.c.name == bucket_name
        )
    ).scalar_one_or_none()
    if bucket_id is None:
        return (bucket_name,)
    e = version_edges.c
    ends = conn.execute(
        union_all(
            select(e.parent_bucket_id.label("other")).where(e.child_bucket_id == bucket_id),
            select(e.child_bucket_id.label("other")).where(e.parent_bucket_id == bucket_id),
        ).limit(MAX_EDGES_READ)
    ).all()
    if len(ends) >= MAX_EDGES_READ:
        return None
    others = {row.other for row in ends} - {bucket_id}
    if len(others) > MAX_NEIGHBOURS:
        return None
    keys = {bucket_name}
    if others:
        found = conn.execute(select(buckets.c.name).where(buckets.c.id.in_(sorted(others))))
        keys.update(outer_key(name) for name in found.scalars())
    return tuple(sorted(keys))


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

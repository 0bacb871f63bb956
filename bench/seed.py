"""Seeding a registry of a given size straight through the storage layer, in bulk.

The rows are the ones Packyard's services would write (the same tables, the same
column values), generated in Python and inserted a few tens of thousands at a
time: ``executemany`` on SQLite, ``COPY`` on PostgreSQL. Nothing goes through
HTTP or the services, so 100,000 versions take seconds to minutes, not hours.

Shape of one bucket of ``versions`` versions (all complete, ``v1`` … ``vN``):

* ``builds`` builds per version (one per platform), each DONE with ``regions``
  artifacts, one per region;
* channels ``latest`` (managed, history of every completion), ``production``
  (every 5th version, serving ``v(N-5)``), ``staging`` (the last 50) and ``dev``
  (the push benchmark moves it);
* ancestry: buckets come in families of ``family``; the first bucket of a
  family is a base image and version *j* of every other bucket in the family
  was built from its version *j*, tracked through its ``production`` channel.

The revocation scenario lives in a project of its own: one root version and
``buckets`` x ``versions`` descendants, the first ``tier1`` buckets built from
the root and the others from a tier-1 bucket's version of the same number.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import JSON, Connection, Table, text

from packyard.domain.enums import BuildStatus, FeatureTier, Role, TemplateType
from packyard.domain.models import MANAGED_AUTHOR, MANAGED_CHANNEL, Project, Registry
from packyard.ids import new_uuid
from packyard.store.engine import Store
from packyard.store.schema import (
    artifacts,
    buckets,
    builds,
    channel_assignments,
    channels,
    version_edges,
    versions,
)
from packyard.store.tenancy import TenancyRepo
from packyard.store.types import UTCDateTime

PLATFORMS = [
    ("amazon-ebs.ubuntu", "aws"),
    ("azure-arm.ubuntu", "azure"),
    ("googlecompute.ubuntu", "gce"),
    ("vsphere-iso.ubuntu", "vsphere"),
    ("docker.ubuntu", "docker"),
]
REGIONS = [
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-1",
    "ap-northeast-1",
    "sa-east-1",
]
AUTHOR = "bench-seeder"
READ_CHANNEL = "production"
PUSH_CHANNEL = "dev"
_METADATA = {"packer": {"version": "1.16.0"}, "cicd": None, "vcs": None}
_FLUSH_ROWS = 60_000  # artifacts per transaction, roughly


@dataclass(frozen=True, slots=True)
class Shape:
    """A registry: ``buckets`` x ``versions``, each version ``builds`` x ``regions``."""

    buckets: int
    versions: int
    builds: int = 3
    regions: int = 5
    family: int = 10

    @property
    def total_versions(self) -> int:
        return self.buckets * self.versions

    @property
    def total_artifacts(self) -> int:
        return self.total_versions * self.builds * self.regions


@dataclass(frozen=True, slots=True)
class RevocationShape:
    """One root version with ``buckets`` x ``versions`` descendants."""

    buckets: int = 100
    versions: int = 100
    tier1: int = 10

    @property
    def descendants(self) -> int:
        return self.buckets * self.versions


SIZES: dict[str, Shape] = {
    "XS": Shape(buckets=3, versions=10),
    "S": Shape(buckets=10, versions=100),
    "M": Shape(buckets=100, versions=100),
    "L": Shape(buckets=1000, versions=100),
}


@dataclass(slots=True)
class Targets:
    """What the benchmark requests address (all names in the seeded project)."""

    organization_id: str
    project_id: str
    bucket: str
    channel: str
    version_fingerprint: str  # the version ``channel`` serves
    external_identifier: str  # one artifact of that version
    region: str
    list_page_size: int
    push_buckets: list[str]
    push_channel: str = PUSH_CHANNEL
    latest_fingerprint: str = ""  # the newest version of ``bucket`` (the console compares it)
    revocation_project_id: str | None = None
    revocation_bucket: str | None = None
    revocation_fingerprint: str | None = None
    revocation_descendants: int = 0
    revocation_probe_bucket: str | None = None  # a descendant two generations down
    revocation_probe_fingerprint: str | None = None


@dataclass(slots=True)
class SeedReport:
    targets: Targets
    seconds: float
    revocation_seconds: float
    rows: dict[str, int] = field(default_factory=dict)


# --- identifiers --------------------------------------------------------------
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _b32(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 32)
        out.append(_CROCKFORD[r])
    return "".join(reversed(out))


class IdGen:
    """ULID-shaped ids (26 Crockford base32 characters) without the per-id cost of a ULID.

    Ten characters of time and six of randomness fixed per seeding run, then a
    ten-character counter: unique within the run and time-ordered like ULIDs.
    """

    def __init__(self) -> None:
        now_ms = int(time.time() * 1000)
        self._prefix = _b32(now_ms, 10) + _b32(secrets.randbits(30), 6)
        self._n = 0

    def __call__(self) -> str:
        self._n += 1
        return self._prefix + _b32(self._n, 10)


# --- bulk writer --------------------------------------------------------------
class _Writer:
    """Collects rows per table and writes them in bulk inside one transaction."""

    ORDER = (buckets, channels, versions, builds, artifacts, channel_assignments, version_edges)

    def __init__(self, store: Store) -> None:
        self.store = store
        self.rows: dict[str, list[dict[str, Any]]] = {t.name: [] for t in self.ORDER}
        self.totals: dict[str, int] = {t.name: 0 for t in self.ORDER}

    def add(self, table: Table, row: dict[str, Any]) -> None:
        self.rows[table.name].append(row)

    def pending_artifacts(self) -> int:
        return len(self.rows[artifacts.name])

    def flush(self) -> None:
        if not any(self.rows.values()):
            return
        with self.store.write() as conn:
            for table in self.ORDER:
                batch = self.rows[table.name]
                if not batch:
                    continue
                if self.store.is_sqlite:
                    conn.execute(table.insert(), batch)
                else:
                    _copy(conn, table, batch)
                self.totals[table.name] += len(batch)
                self.rows[table.name] = []


def _defaults(table: Table) -> dict[str, Callable[[], Any]]:
    """Python-side column defaults, for columns a row leaves out (COPY does not apply them)."""
    out: dict[str, Callable[[], Any]] = {}
    for col in table.columns:
        default: Any = col.default
        if default is not None and getattr(default, "is_scalar", False):
            out[col.name] = _constant(default.arg)
        elif default is not None and getattr(default, "is_callable", False):
            out[col.name] = _call(default.arg)
        else:
            out[col.name] = _constant(None)
    return out


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _call(fn: Callable[[Any], Any]) -> Callable[[], Any]:
    return lambda: fn(None)


def _copy(conn: Connection, table: Table, batch: list[dict[str, Any]]) -> None:
    """``COPY … FROM STDIN`` with psycopg 3, converting values as the column types would."""
    columns = [c.name for c in table.columns]
    defaults = _defaults(table)
    converters: list[Callable[[Any], Any]] = []
    for col in table.columns:
        if isinstance(col.type, UTCDateTime):
            converters.append(
                lambda v: None if v is None else v.astimezone(UTC).replace(tzinfo=None)
            )
        elif isinstance(col.type, JSON):
            converters.append(lambda v: None if v is None else orjson.dumps(v).decode())
        else:
            converters.append(lambda v: v)
    raw = conn.connection.driver_connection
    assert raw is not None
    quoted = ", ".join(f'"{c}"' for c in columns)
    with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
        for row in batch:
            copy.write_row(
                tuple(
                    conv(row[name] if name in row else defaults[name]())
                    for name, conv in zip(columns, converters, strict=True)
                )
            )


# --- generation ---------------------------------------------------------------
@dataclass(slots=True)
class _Bucket:
    id: str
    name: str
    version_ids: list[str]
    fingerprints: list[str]
    channel_ids: dict[str, str]


Parent = tuple[str, str | None, str]  # (version id, channel id, bucket id)


class _Generator:
    def __init__(self, store: Store, project_id: str, base: datetime) -> None:
        self.writer = _Writer(store)
        self.project_id = project_id
        self.base = base
        self.new_id = IdGen()

    def plan_bucket(self, name: str, count: int) -> _Bucket:
        return _Bucket(
            id=self.new_id(),
            name=name,
            version_ids=[self.new_id() for _ in range(count)],
            fingerprints=[f"{name}-fp-{j:05d}" for j in range(1, count + 1)],
            channel_ids={
                n: self.new_id() for n in (MANAGED_CHANNEL, READ_CHANNEL, "staging", PUSH_CHANNEL)
            },
        )

    def bucket(
        self,
        b: _Bucket,
        offset: int,
        *,
        builds_per_version: int,
        regions: int,
        parent_of: Callable[[int], Parent | None],
    ) -> None:
        """Every row of one bucket: versions, builds, artifacts, channels, history, edges."""
        w, new_id = self.writer, self.new_id
        count = len(b.version_ids)
        start = self.base + timedelta(seconds=offset)
        created = [start + timedelta(minutes=10 * j) for j in range(count)]
        w.add(
            buckets,
            {
                "id": b.id,
                "project_id": self.project_id,
                "name": b.name,
                "description": f"Benchmark image family {b.name}",
                "labels": {"team": "platform", "os": "ubuntu"},
                "version_count": count,
                "latest_version_id": b.version_ids[-1] if count else None,
                "created_at": start,
                "updated_at": created[-1] if count else start,
            },
        )
        for j in range(count):
            vid, at = b.version_ids[j], created[j]
            w.add(
                versions,
                {
                    "id": vid,
                    "bucket_id": b.id,
                    "fingerprint": b.fingerprints[j],
                    "number": j + 1,
                    "template_type": TemplateType.HCL2.value,
                    "author_id": AUTHOR,
                    "created_at": at,
                    "updated_at": at + timedelta(seconds=30),
                    "revoke_at": None,
                    "revocation_message": "",
                    "revocation_author": "",
                    "revocation_type": None,
                    "revocation_inherited_from": None,
                    "revocation_applied": True,
                },
            )
            parent = parent_of(j)
            for k in range(builds_per_version):
                component, platform = PLATFORMS[k % len(PLATFORMS)]
                bid = new_id()
                built = at + timedelta(seconds=k + 1)
                w.add(
                    builds,
                    {
                        "id": bid,
                        "version_id": vid,
                        "component_type": component,
                        "packer_run_uuid": f"run-{vid}",
                        "platform": platform,
                        "status": BuildStatus.DONE.value,
                        "source_external_identifier": "",
                        "labels": {"os": "ubuntu"},
                        "metadata": _METADATA,
                        "parent_version_id": parent[0] if parent else None,
                        "parent_channel_id": parent[1] if parent else None,
                        "created_at": built,
                        "updated_at": built + timedelta(seconds=20),
                    },
                )
                for r in range(regions):
                    w.add(
                        artifacts,
                        {
                            "id": new_id(),
                            "build_id": bid,
                            "project_id": self.project_id,
                            "external_identifier": external_identifier(b.name, j + 1, k, r),
                            "region": REGIONS[r % len(REGIONS)],
                            "created_at": built + timedelta(seconds=20),
                        },
                    )
            if parent is not None:
                w.add(
                    version_edges,
                    {
                        "child_version_id": vid,
                        "parent_version_id": parent[0],
                        "parent_channel_id": parent[1],
                        "child_bucket_id": b.id,
                        "parent_bucket_id": parent[2],
                        "created_at": at + timedelta(seconds=25),
                    },
                )
        if count:
            self._channels(b, created)

    def _channels(self, b: _Bucket, created: list[datetime]) -> None:
        count = len(b.version_ids)
        histories = {
            MANAGED_CHANNEL: list(range(count)),
            READ_CHANNEL: _production_history(count),
            "staging": list(range(max(0, count - 50), count)),
            PUSH_CHANNEL: [count - 1],
        }
        for name, history in histories.items():
            cid = b.channel_ids[name]
            managed = name == MANAGED_CHANNEL
            author = MANAGED_AUTHOR if managed else AUTHOR
            last = created[history[-1]] + timedelta(minutes=1)
            self.writer.add(
                channels,
                {
                    "id": cid,
                    "bucket_id": b.id,
                    "name": name,
                    "managed": managed,
                    "restricted": managed,
                    "version_id": b.version_ids[history[-1]],
                    "author_id": author,
                    "created_at": created[0],
                    "updated_at": last,
                },
            )
            for seq, j in enumerate(history, start=1):
                self.writer.add(
                    channel_assignments,
                    {
                        "id": self.new_id(),
                        "channel_id": cid,
                        "seq": seq,
                        "version_id": b.version_ids[j],
                        "author_id": author,
                        "assigned_at": created[j] + timedelta(minutes=1),
                    },
                )

    def maybe_flush(self) -> None:
        if self.writer.pending_artifacts() >= _FLUSH_ROWS:
            self.writer.flush()


def _no_parent(j: int) -> Parent | None:
    return None


def _built_from(parent: _Bucket, version: int | None = None) -> Callable[[int], Parent | None]:
    """Version j was built from the parent bucket's version j (or a fixed one), via production."""

    def parent_of(j: int) -> Parent | None:
        k = j if version is None else version
        return (parent.version_ids[k], parent.channel_ids[READ_CHANNEL], parent.id)

    return parent_of


def _production_history(count: int) -> list[int]:
    """Indexes of the versions ``production`` was assigned: v5, v10, … up to v(N-5)."""
    return list(range(4, count - 5, 5)) or [0]


def external_identifier(bucket: str, number: int, build: int, region: int) -> str:
    return f"img-{bucket}-v{number:05d}-{build}-{region}"


def bucket_name(i: int, prefix: str = "b") -> str:
    return f"{prefix}-{i:05d}"


def target_bucket_index(shape: Shape) -> int:
    """A bucket in the middle of the registry that has a parent bucket (so ancestry is rendered)."""
    if shape.buckets >= shape.family:
        index = shape.buckets // 2 + shape.family // 2
        if index % shape.family == 0:
            index += 1
        return min(index, shape.buckets - 1)
    return shape.buckets - 1


def seed(
    store: Store,
    organization_id: str,
    project_id: str,
    shape: Shape,
    *,
    revocation: RevocationShape | None = None,
    principal_id: str | None = None,
    bucket_prefix: str = "b",
    progress: Callable[[str], None] | None = None,
) -> SeedReport:
    """Fill ``project_id`` with ``shape``; optionally add the revocation project.

    ``principal_id`` gets the admin role on the revocation project.
    """
    say = progress or (lambda _: None)
    started = time.perf_counter()
    base = datetime.now(UTC) - timedelta(minutes=10 * shape.versions + 60 * 24)
    gen = _Generator(store, project_id, base)
    planned = [
        gen.plan_bucket(bucket_name(i, bucket_prefix), shape.versions) for i in range(shape.buckets)
    ]
    for i, b in enumerate(planned):
        root = planned[i - i % shape.family]
        parent_of = _no_parent if root is b else _built_from(root)
        gen.bucket(
            b, i, builds_per_version=shape.builds, regions=shape.regions, parent_of=parent_of
        )
        gen.maybe_flush()
        if (i + 1) % 100 == 0:
            say(f"seeded {i + 1}/{shape.buckets} buckets")
    gen.writer.flush()
    main_seconds = time.perf_counter() - started

    t = planned[target_bucket_index(shape)] if planned else None
    served = _production_history(shape.versions)[-1]
    targets = Targets(
        organization_id=organization_id,
        project_id=project_id,
        bucket=t.name if t else "",
        channel=READ_CHANNEL,
        version_fingerprint=t.fingerprints[served] if t else "",
        external_identifier=external_identifier(t.name, served + 1, 0, 0) if t else "",
        region=REGIONS[0],
        list_page_size=min(10, shape.buckets) or 1,
        push_buckets=[b.name for b in planned[:64]],
        latest_fingerprint=t.fingerprints[-1] if t and t.fingerprints else "",
    )
    rows = dict(gen.writer.totals)

    rev_seconds = 0.0
    if revocation is not None:
        rev_started = time.perf_counter()
        _seed_revocation(store, organization_id, revocation, targets, principal_id, base)
        rev_seconds = time.perf_counter() - rev_started
        say(f"seeded the revocation forest ({revocation.descendants} descendants)")
    _finish(store)
    return SeedReport(
        targets=targets, seconds=main_seconds, revocation_seconds=rev_seconds, rows=rows
    )


def _seed_revocation(
    store: Store,
    organization_id: str,
    shape: RevocationShape,
    targets: Targets,
    principal_id: str | None,
    base: datetime,
) -> None:
    now = datetime.now(UTC)
    project = Project(
        id=new_uuid(),
        organization_id=organization_id,
        name="bench-revocation",
        description="Revocation benchmark",
        created_at=now,
    )
    with store.write() as conn:
        repo = TenancyRepo(conn)
        repo.add_project(project)
        repo.add_registry(
            Registry(
                id=IdGen()(),
                organization_id=organization_id,
                project_id=project.id,
                feature_tier=FeatureTier.PLUS,
                activated=True,
                created_at=now,
                updated_at=now,
            )
        )
        if principal_id is not None:
            repo.bind_role(principal_id, project.id, Role.ADMIN)
    gen = _Generator(store, project.id, base)
    root = gen.plan_bucket("rv-root", 1)
    gen.bucket(root, 0, builds_per_version=1, regions=1, parent_of=_no_parent)
    tier1: list[_Bucket] = []
    b = root
    for i in range(shape.buckets):
        b = gen.plan_bucket(f"rv-{i:04d}", shape.versions)
        if i < shape.tier1:
            tier1.append(b)
            parent_of = _built_from(root, version=0)
        else:
            parent_of = _built_from(tier1[i % shape.tier1])
        gen.bucket(b, i + 1, builds_per_version=1, regions=1, parent_of=parent_of)
        gen.maybe_flush()
    gen.writer.flush()
    targets.revocation_project_id = project.id
    targets.revocation_bucket = root.name
    targets.revocation_fingerprint = root.fingerprints[0]
    targets.revocation_descendants = shape.descendants
    targets.revocation_probe_bucket = b.name
    targets.revocation_probe_fingerprint = b.fingerprints[-1] if b.fingerprints else None


def _finish(store: Store) -> None:
    """Leave the database as a running installation would have it."""
    if store.is_sqlite:
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    # PostgreSQL's autovacuum analyses freshly loaded tables within a minute; do it now
    # so the plans measured are the ones a settled server uses.
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))

"""``packyard check``: verify the invariants the services maintain, over the whole store.

The check reads one consistent snapshot (a single read transaction) of the
rows that matter, then applies pure rules to it; it never writes. Each broken
rule yields one :class:`Violation`.

The rules, and why each one is sound (holds for every history of API calls):

``version-number``
    A complete version has a number >= 1, unique within its bucket.
``version-gap``
    Numbers are handed out as max(surviving) + 1 under the bucket row lock,
    so among a bucket's complete versions the numbers 1..max are all taken,
    except a number whose version was deleted. Deletions are recorded in the
    ``deletions`` table, so every gap must be explained by a recorded
    deletion of a version that held that number.
``version-builds``
    A version is completed (given a number) only when at least one of its
    builds is DONE (automatically when all are, or by ``complete: true``).
    Builds of a complete version cannot change, but they can be deleted, so
    the rule is: a complete version with no recorded build deletion has at
    least one build in BUILD_DONE.
``version-incomplete``
    The update that makes a version's last build DONE completes it in the
    same transaction, so an unnumbered version whose builds are all DONE with
    metadata (and which has at least one) is a lost completion -- unless one
    of its builds was deleted, which may leave only DONE builds behind.
    (The model has no other notion of "incomplete": a version is complete
    exactly when it has a number.)
``latest-channel``
    Every bucket has exactly one managed channel, named ``latest``.
``latest-mirror``
    ``buckets.latest_version_id`` equals the ``latest`` channel's version.
``channel-version``
    A channel (``latest`` included) points at nothing or at an existing,
    complete version of its own bucket: deleting a version rolls back or
    unassigns every channel pointing at it first.
``channel-history``
    A channel's version equals the version of its newest assignment-history
    entry (no entries: no version), because every assignment appends one.
``version-count``
    ``buckets.version_count`` equals the number of versions in the bucket.
``edge-version``
    An ancestry edge joins two existing versions of the same project, and
    its recorded bucket ids are those versions' buckets.
``edge-build``
    Edges mirror the builds' parent ids: each edge has a build in the child
    version naming that parent, and each build naming an existing parent
    version has its edge.
``artifact-status``
    Artifacts are only recorded together with BUILD_DONE.
``artifact-project``
    An artifact's project is the project of the bucket it belongs to.
``orphan``
    Rows whose owner is gone (foreign keys that were not enforced).
``renderable``
    Every value a read renders can be written as JSON: its text is Unicode (no surrogate
    code points; on SQLite, no bytes that are not UTF-8), and labels and metadata are JSON
    with integers within 64 bits, finite numbers and nesting the renderer accepts
    (:mod:`packyard.domain.renderable`). Writes refuse anything else, so such a row was
    stored before they did, or behind the services' back; every read that renders it
    fails. One violation per row, naming the columns.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, Table, Text, cast, select

from packyard.domain.enums import BuildStatus
from packyard.domain.models import MANAGED_CHANNEL
from packyard.domain.renderable import has_surrogate, stored_json_problem
from packyard.store import deletions as deletion_kinds
from packyard.store.engine import Store
from packyard.store.schema import (
    artifacts,
    buckets,
    builds,
    channel_assignments,
    channels,
    deletions,
    organizations,
    projects,
    sboms,
    version_edges,
    versions,
)


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    subject: str
    message: str

    def __post_init__(self) -> None:
        # Names read from a damaged row may not be text (see ``renderable``): print them
        # escaped, so the report itself can always be written.
        object.__setattr__(self, "subject", _shown(self.subject))
        object.__setattr__(self, "message", _shown(self.message))

    def __str__(self) -> str:
        return f"{self.rule}: {self.subject}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


# --- the snapshot the rules read -------------------------------------------


@dataclass(frozen=True, slots=True)
class BucketRow:
    id: str
    project_id: str
    name: str
    version_count: int
    latest_version_id: str | None


@dataclass(frozen=True, slots=True)
class VersionRow:
    id: str
    bucket_id: str
    fingerprint: str
    number: int | None


@dataclass(frozen=True, slots=True)
class BuildRow:
    id: str
    version_id: str
    component_type: str
    status: str
    parent_version_id: str | None
    has_metadata: bool = True


@dataclass(frozen=True, slots=True)
class ArtifactRow:
    id: str
    build_id: str
    project_id: str


@dataclass(frozen=True, slots=True)
class ChannelRow:
    id: str
    bucket_id: str
    name: str
    managed: bool
    version_id: str | None


@dataclass(frozen=True, slots=True)
class AssignmentRow:
    channel_id: str
    seq: int
    version_id: str | None


@dataclass(frozen=True, slots=True)
class EdgeRow:
    child_version_id: str
    parent_version_id: str
    child_bucket_id: str
    parent_bucket_id: str


@dataclass(frozen=True, slots=True)
class DeletionRow:
    bucket_id: str
    kind: str
    version_id: str
    number: int | None


@dataclass(frozen=True, slots=True)
class UnrenderableRow:
    """A row holding values no response can render, and what is wrong with each."""

    kind: str  # "bucket", "build", ...
    id: str
    problems: tuple[str, ...]


@dataclass(slots=True)
class Snapshot:
    buckets: list[BucketRow] = field(default_factory=list)
    versions: list[VersionRow] = field(default_factory=list)
    builds: list[BuildRow] = field(default_factory=list)
    artifacts: list[ArtifactRow] = field(default_factory=list)
    channels: list[ChannelRow] = field(default_factory=list)
    assignments: list[AssignmentRow] = field(default_factory=list)
    edges: list[EdgeRow] = field(default_factory=list)
    deletions: list[DeletionRow] = field(default_factory=list)
    # Found while loading (only the offending rows are kept, not every rendered value).
    unrenderable: list[UnrenderableRow] = field(default_factory=list)


def _rows(conn: Connection, query: Select[Any]) -> list[Any]:
    return list(conn.execute(query))


def load_snapshot(conn: Connection) -> Snapshot:
    """Read every row the rules need (one query per table)."""
    snap = Snapshot()
    for r in _rows(
        conn,
        select(
            buckets.c.id,
            buckets.c.project_id,
            buckets.c.name,
            buckets.c.version_count,
            buckets.c.latest_version_id,
        ),
    ):
        snap.buckets.append(
            BucketRow(r.id, r.project_id, r.name, int(r.version_count), r.latest_version_id)
        )
    for r in _rows(
        conn, select(versions.c.id, versions.c.bucket_id, versions.c.fingerprint, versions.c.number)
    ):
        snap.versions.append(VersionRow(r.id, r.bucket_id, r.fingerprint, r.number))
    for r in _rows(
        conn,
        select(
            builds.c.id,
            builds.c.version_id,
            builds.c.component_type,
            builds.c.status,
            builds.c.parent_version_id,
            builds.c.metadata,
        ),
    ):
        snap.builds.append(
            BuildRow(
                r.id,
                r.version_id,
                r.component_type,
                r.status,
                r.parent_version_id,
                r.metadata is not None,
            )
        )
    for r in _rows(conn, select(artifacts.c.id, artifacts.c.build_id, artifacts.c.project_id)):
        snap.artifacts.append(ArtifactRow(r.id, r.build_id, r.project_id))
    for r in _rows(
        conn,
        select(
            channels.c.id,
            channels.c.bucket_id,
            channels.c.name,
            channels.c.managed,
            channels.c.version_id,
        ),
    ):
        snap.channels.append(ChannelRow(r.id, r.bucket_id, r.name, bool(r.managed), r.version_id))
    for r in _rows(
        conn,
        select(
            channel_assignments.c.channel_id,
            channel_assignments.c.seq,
            channel_assignments.c.version_id,
        ),
    ):
        snap.assignments.append(AssignmentRow(r.channel_id, int(r.seq), r.version_id))
    for r in _rows(
        conn,
        select(
            version_edges.c.child_version_id,
            version_edges.c.parent_version_id,
            version_edges.c.child_bucket_id,
            version_edges.c.parent_bucket_id,
        ),
    ):
        snap.edges.append(
            EdgeRow(r.child_version_id, r.parent_version_id, r.child_bucket_id, r.parent_bucket_id)
        )
    for r in _rows(
        conn,
        select(deletions.c.bucket_id, deletions.c.kind, deletions.c.version_id, deletions.c.number),
    ):
        snap.deletions.append(DeletionRow(r.bucket_id, r.kind, r.version_id, r.number))
    snap.unrenderable = list(_unrenderable_rows(conn))
    return snap


# What reads render: (kind, table, text columns, JSON columns); every table has an ``id``.
_RENDERED: tuple[tuple[str, Table, tuple[str, ...], tuple[str, ...]], ...] = (
    ("organization", organizations, ("name",), ()),
    ("project", projects, ("name", "description"), ()),
    ("bucket", buckets, ("name", "description"), ("labels",)),
    (
        "version",
        versions,
        ("fingerprint", "author_id", "revocation_message", "revocation_author"),
        (),
    ),
    (
        "build",
        builds,
        ("component_type", "packer_run_uuid", "platform", "source_external_identifier"),
        ("labels", "metadata"),
    ),
    ("artifact", artifacts, ("external_identifier", "region"), ()),
    ("channel", channels, ("name", "author_id"), ()),
    ("channel assignment", channel_assignments, ("author_id",), ()),
    ("sbom", sboms, ("name",), ()),
)


def _unrenderable_rows(conn: Connection) -> Iterator[UnrenderableRow]:
    """Rows with a value no response can render, streamed (one query per table).

    JSON columns are read as their stored text and decoded here, so a value the normal
    read path cannot even decode is reported rather than raised.
    """
    for kind, table, texts, jsons in _RENDERED:
        columns: list[ColumnElement[Any]] = [table.c.id, *(table.c[n] for n in texts)]
        columns += [cast(table.c[n], Text).label(n) for n in jsons]
        query = select(*columns).execution_options(yield_per=500)
        for row in conn.execute(query):
            problems = [f"{n} is not valid Unicode text" for n in texts if _bad_text(row, n)]
            for n in jsons:
                problem = _json_cell_problem(getattr(row, n), n)
                if problem is not None:
                    problems.append(problem)
            if problems:
                yield UnrenderableRow(kind, str(row.id), tuple(problems))


def _bad_text(row: Any, name: str) -> bool:
    value = getattr(row, name)
    return isinstance(value, str) and has_surrogate(value)


def _json_cell_problem(text: str | None, name: str) -> str | None:
    if text is None:
        return None
    if has_surrogate(text):  # raw bytes that are not UTF-8 (SQLite), read leniently
        return f"{name} is not valid Unicode text"
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return f"{name} is not valid JSON"
    problem = stored_json_problem(value, name)
    return None if problem is None else f"{problem.field} {problem.reason}"


def _shown(text: str) -> str:
    """Text safe to print: anything that is not UTF-8 escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@contextmanager
def _lenient_text(conn: Connection) -> Iterator[None]:
    """On SQLite, read text that is not UTF-8 with its bad bytes as surrogate escapes.

    sqlite3 otherwise raises on such a row, so the check would fail where it should
    report; a surrogate is exactly what the ``renderable`` rule looks for. PostgreSQL
    only stores valid UTF-8 text.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    raw: Any = conn.connection.driver_connection
    previous = raw.text_factory
    raw.text_factory = _decode_leniently
    try:
        yield
    finally:
        raw.text_factory = previous


def _decode_leniently(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


# --- the rules ----------------------------------------------------------------


class _Index:
    """Lookups over a snapshot shared by the rules."""

    def __init__(self, snap: Snapshot) -> None:
        self.buckets = {b.id: b for b in snap.buckets}
        self.versions = {v.id: v for v in snap.versions}
        self.builds = {b.id: b for b in snap.builds}
        self.versions_of: dict[str, list[VersionRow]] = defaultdict(list)
        for v in snap.versions:
            self.versions_of[v.bucket_id].append(v)
        self.builds_of: dict[str, list[BuildRow]] = defaultdict(list)
        for b in snap.builds:
            self.builds_of[b.version_id].append(b)
        self.channels_of: dict[str, list[ChannelRow]] = defaultdict(list)
        for c in snap.channels:
            self.channels_of[c.bucket_id].append(c)
        self.history_of: dict[str, list[AssignmentRow]] = defaultdict(list)
        for a in snap.assignments:
            self.history_of[a.channel_id].append(a)
        self.deleted_numbers: dict[str, set[int]] = defaultdict(set)
        self.build_deleted: set[str] = set()
        for d in snap.deletions:
            if d.kind == deletion_kinds.VERSION and d.number is not None:
                self.deleted_numbers[d.bucket_id].add(d.number)
            elif d.kind == deletion_kinds.BUILD:
                self.build_deleted.add(d.version_id)

    def bucket_label(self, bucket_id: str) -> str:
        bucket = self.buckets.get(bucket_id)
        if bucket is None:
            return f"bucket/{bucket_id}"
        return f"project/{bucket.project_id}/bucket/{bucket.name}"

    def version_label(self, version: VersionRow) -> str:
        name = f"v{version.number}" if version.number is not None else "v0"
        return f"{self.bucket_label(version.bucket_id)}/version/{version.fingerprint}@{name}"

    def project_of_version(self, version_id: str) -> str | None:
        version = self.versions.get(version_id)
        bucket = self.buckets.get(version.bucket_id) if version else None
        return bucket.project_id if bucket else None


def find_violations(snap: Snapshot) -> list[Violation]:
    """Every invariant the snapshot breaks, in a stable order."""
    ix = _Index(snap)
    found: list[Violation] = []
    found += _orphans(snap, ix)
    found += _numbering(ix)
    found += _completion(snap, ix)
    found += _counts(snap, ix)
    found += _channels(snap, ix)
    found += _edges(snap, ix)
    found += _artifacts(snap, ix)
    found += _renderable(snap)
    return found


def _renderable(snap: Snapshot) -> list[Violation]:
    return [
        Violation("renderable", f"{row.kind}/{row.id}", "; ".join(row.problems))
        for row in snap.unrenderable
    ]


def _orphans(snap: Snapshot, ix: _Index) -> list[Violation]:
    out: list[Violation] = []
    for v in snap.versions:
        if v.bucket_id not in ix.buckets:
            out.append(Violation("orphan", f"version/{v.id}", f"bucket {v.bucket_id} is missing"))
    for b in snap.builds:
        if b.version_id not in ix.versions:
            out.append(Violation("orphan", f"build/{b.id}", f"version {b.version_id} is missing"))
    for a in snap.artifacts:
        if a.build_id not in ix.builds:
            out.append(Violation("orphan", f"artifact/{a.id}", f"build {a.build_id} is missing"))
    channel_ids = {c.id for c in snap.channels}
    for c in snap.channels:
        if c.bucket_id not in ix.buckets:
            out.append(Violation("orphan", f"channel/{c.id}", f"bucket {c.bucket_id} is missing"))
    for channel_id in sorted({a.channel_id for a in snap.assignments} - channel_ids):
        out.append(Violation("orphan", f"channel/{channel_id}/history", "the channel is missing"))
    return out


def _numbering(ix: _Index) -> list[Violation]:
    out: list[Violation] = []
    for bucket_id in sorted(ix.versions_of):
        numbered = [v for v in ix.versions_of[bucket_id] if v.number is not None]
        subject = ix.bucket_label(bucket_id)
        for v in numbered:
            assert v.number is not None
            if v.number < 1:
                out.append(
                    Violation(
                        "version-number",
                        subject,
                        f"version {v.fingerprint} has number {v.number} (must be >= 1)",
                    )
                )
        counts = Counter(v.number for v in numbered)
        for number, n in sorted((k, c) for k, c in counts.items() if k is not None and c > 1):
            out.append(Violation("version-number", subject, f"{n} versions are named v{number}"))
        taken = {v.number for v in numbered if v.number is not None}
        if not taken:
            continue
        missing = [
            n
            for n in range(1, max(taken) + 1)
            if n not in taken and n not in ix.deleted_numbers[bucket_id]
        ]
        if missing:
            shown = ", ".join(f"v{n}" for n in missing[:20])
            more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
            out.append(
                Violation(
                    "version-gap",
                    subject,
                    f"no version holds {shown}{more} and no deletion of it was recorded",
                )
            )
    return out


def _completion(snap: Snapshot, ix: _Index) -> list[Violation]:
    out: list[Violation] = []
    for v in snap.versions:
        if v.id in ix.build_deleted:
            continue
        own = ix.builds_of.get(v.id, [])
        statuses = [b.status for b in own]
        done = BuildStatus.DONE.value
        if v.number is not None and done not in statuses:
            what = "no builds" if not statuses else "no build in BUILD_DONE"
            out.append(Violation("version-builds", ix.version_label(v), f"complete with {what}"))
        finished = all(b.status == done and b.has_metadata for b in own)
        if v.number is None and own and finished:
            out.append(
                Violation(
                    "version-incomplete",
                    ix.version_label(v),
                    f"all {len(statuses)} builds are BUILD_DONE but the version has no number",
                )
            )
    return out


def _counts(snap: Snapshot, ix: _Index) -> list[Violation]:
    out: list[Violation] = []
    for b in snap.buckets:
        real = len(ix.versions_of.get(b.id, []))
        if b.version_count != real:
            out.append(
                Violation(
                    "version-count",
                    ix.bucket_label(b.id),
                    f"version_count is {b.version_count} but the bucket has {real} versions",
                )
            )
    return out


def _channels(snap: Snapshot, ix: _Index) -> list[Violation]:
    out: list[Violation] = []
    for b in snap.buckets:
        subject = ix.bucket_label(b.id)
        own = ix.channels_of.get(b.id, [])
        managed = [c for c in own if c.managed]
        latest = [c for c in own if c.name == MANAGED_CHANNEL]
        if not latest:
            out.append(Violation("latest-channel", subject, "has no `latest` channel"))
        elif not latest[0].managed:
            out.append(Violation("latest-channel", subject, "its `latest` channel is not managed"))
        for c in managed:
            if c.name != MANAGED_CHANNEL:
                out.append(
                    Violation("latest-channel", subject, f"channel {c.name} is marked managed")
                )
        if latest and latest[0].version_id != b.latest_version_id:
            out.append(
                Violation(
                    "latest-mirror",
                    subject,
                    f"bucket.latest_version_id is {b.latest_version_id} but `latest` points "
                    f"at {latest[0].version_id}",
                )
            )
    for c in snap.channels:
        subject = f"{ix.bucket_label(c.bucket_id)}/channel/{c.name}"
        if c.version_id is not None:
            target = ix.versions.get(c.version_id)
            if target is None:
                out.append(
                    Violation(
                        "channel-version", subject, f"points at missing version {c.version_id}"
                    )
                )
            elif target.bucket_id != c.bucket_id:
                out.append(
                    Violation(
                        "channel-version",
                        subject,
                        f"points at version {target.fingerprint} of another bucket",
                    )
                )
            elif target.number is None:
                out.append(
                    Violation(
                        "channel-version",
                        subject,
                        f"points at incomplete version {target.fingerprint}",
                    )
                )
        history = ix.history_of.get(c.id, [])
        newest = max(history, key=lambda a: a.seq).version_id if history else None
        if newest != c.version_id:
            out.append(
                Violation(
                    "channel-history",
                    subject,
                    f"points at {c.version_id} but its newest history entry names {newest}",
                )
            )
    return out


def _edges(snap: Snapshot, ix: _Index) -> list[Violation]:
    out: list[Violation] = []
    edges = {(e.child_version_id, e.parent_version_id) for e in snap.edges}
    for e in snap.edges:
        subject = f"version/{e.child_version_id}/parent/{e.parent_version_id}"
        child = ix.versions.get(e.child_version_id)
        parent = ix.versions.get(e.parent_version_id)
        if child is None or parent is None:
            gone = "child" if child is None else "parent"
            out.append(Violation("edge-version", subject, f"the {gone} version is missing"))
            continue
        if child.bucket_id != e.child_bucket_id or parent.bucket_id != e.parent_bucket_id:
            out.append(
                Violation(
                    "edge-version", subject, "recorded bucket ids differ from the versions' buckets"
                )
            )
        if ix.project_of_version(child.id) != ix.project_of_version(parent.id):
            out.append(Violation("edge-version", subject, "joins versions of different projects"))
        if not any(
            b.parent_version_id == e.parent_version_id for b in ix.builds_of.get(child.id, [])
        ):
            out.append(
                Violation("edge-build", subject, "no build of the child version names this parent")
            )
    for b in snap.builds:
        if b.parent_version_id is None or b.parent_version_id not in ix.versions:
            continue  # a deleted parent takes its edges with it
        if b.version_id in ix.versions and (b.version_id, b.parent_version_id) not in edges:
            out.append(
                Violation(
                    "edge-build",
                    f"build/{b.id}",
                    f"names parent version {b.parent_version_id} but no ancestry edge exists "
                    f"({b.component_type})",
                )
            )
    return out


def _artifacts(snap: Snapshot, ix: _Index) -> list[Violation]:
    out: list[Violation] = []
    for a in snap.artifacts:
        build = ix.builds.get(a.build_id)
        if build is None:
            continue  # reported as an orphan
        if build.status != BuildStatus.DONE.value:
            out.append(
                Violation(
                    "artifact-status",
                    f"artifact/{a.id}",
                    f"belongs to build {build.id} ({build.component_type}) in {build.status}",
                )
            )
        project = ix.project_of_version(build.version_id)
        if project is not None and project != a.project_id:
            out.append(
                Violation(
                    "artifact-project",
                    f"artifact/{a.id}",
                    f"records project {a.project_id} but its bucket is in project {project}",
                )
            )
    return out


@dataclass(frozen=True, slots=True)
class CheckReport:
    violations: list[Violation]
    buckets: int
    versions: int
    builds: int
    channels: int

    @property
    def ok(self) -> bool:
        return not self.violations


def check_connection(conn: Connection) -> CheckReport:
    with _lenient_text(conn):
        snap = load_snapshot(conn)
    return CheckReport(
        violations=find_violations(snap),
        buckets=len(snap.buckets),
        versions=len(snap.versions),
        builds=len(snap.builds),
        channels=len(snap.channels),
    )


def check_store(store: Store) -> CheckReport:
    """Check the whole store from one consistent snapshot."""
    with store.read() as conn:
        return check_connection(conn)


__all__ = [
    "CheckReport",
    "Snapshot",
    "UnrenderableRow",
    "Violation",
    "check_connection",
    "check_store",
    "find_violations",
    "load_snapshot",
]

"""Lineage: versions related by built-from edges, over any number of hops and buckets.

The read models of the console's version page (one hop: a version's parents and
children) and of the ancestry graph (every hop around a bucket), and the pure rule
that places a graph's versions in generations.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from packyard.domain.enums import AncestryStatus, BuildStatus, RevocationType, VersionStatus
from packyard.domain.rules import derive_version_status

# A lineage graph shows at most this many versions; a larger one is cut (and says so).
MAX_LINEAGE_NODES = 200
# Children listed on one version's page (a base image can have thousands).
MAX_CHILDREN = 100


@dataclass(frozen=True, slots=True)
class LineageVersion:
    """A version as a relation or a graph node names it, with what its status needs."""

    id: str
    bucket_name: str
    fingerprint: str
    number: int | None
    created_at: datetime
    revoke_at: datetime | None
    revocation_message: str
    revocation_author: str
    revocation_type: RevocationType | None
    build_statuses: tuple[BuildStatus, ...] = ()

    @property
    def name(self) -> str:
        return f"v{self.number or 0}"

    @property
    def label(self) -> str:
        return f"{self.bucket_name} {self.name}"

    def status(self, now: datetime) -> VersionStatus:
        return derive_version_status(
            complete=self.number is not None,
            build_statuses=self.build_statuses,
            revoke_at=self.revoke_at,
            now=now,
        )


@dataclass(frozen=True, slots=True)
class Relation:
    """One built-from edge seen from one end: the version at the other end, the parent
    channel it was taken from (empty when none, or hidden from the caller) and its status."""

    version: LineageVersion
    channel_name: str
    status: AncestryStatus


@dataclass(frozen=True, slots=True)
class Relations:
    """A version's parents and children (children: the newest :data:`MAX_CHILDREN`)."""

    parents: list[Relation]
    children: list[Relation]
    children_total: int


@dataclass(frozen=True, slots=True)
class LineageEdge:
    parent_id: str
    child_id: str
    channel_name: str
    status: AncestryStatus


@dataclass(slots=True)
class Lineage:
    """The versions around a bucket: its own versions that have relations, all their
    ancestors and all their descendants, with the edges between them.

    ``truncated``: more versions belong to the lineage than :data:`MAX_LINEAGE_NODES`;
    those nearest to the bucket were kept.
    """

    bucket_id: str
    bucket_name: str
    nodes: dict[str, LineageVersion] = field(default_factory=dict)
    edges: list[LineageEdge] = field(default_factory=list)
    truncated: bool = False

    def generations(self) -> list[list[LineageVersion]]:
        """The nodes in columns: a version stands one column right of its furthest parent.

        Within a column, versions sit near the average row of their parents (fewer
        crossing edges), then by bucket and name.
        """
        return [[self.nodes[i] for i in column] for column in layer(self.nodes, self.edges)]


def layer(nodes: dict[str, LineageVersion], edges: Iterable[LineageEdge]) -> list[list[str]]:
    """Node ids by generation (longest path from a root), ordered within each column."""
    parents: dict[str, list[str]] = defaultdict(list)
    children: dict[str, list[str]] = defaultdict(list)
    for e in edges:
        if e.parent_id in nodes and e.child_id in nodes and e.parent_id != e.child_id:
            parents[e.child_id].append(e.parent_id)
            children[e.parent_id].append(e.child_id)
    pending = {n: len(parents[n]) for n in nodes}
    level = dict.fromkeys(nodes, 0)
    queue = deque(sorted(n for n, count in pending.items() if count == 0))
    while queue:
        node = queue.popleft()
        for child in children[node]:
            level[child] = max(level[child], level[node] + 1)
            pending[child] -= 1
            if pending[child] == 0:
                queue.append(child)
    # A cycle cannot be recorded (the store refuses it); should one exist anyway, its
    # versions stay in the column reached so far rather than looping.
    columns: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for node in nodes:
        columns[level[node]].append(node)

    def natural(node: str) -> tuple[str, int, str]:
        v = nodes[node]
        return (v.bucket_name, -(v.number or 0), v.fingerprint)

    row: dict[str, float] = {}
    for column in columns:

        def key(node: str) -> tuple[float, tuple[str, int, str]]:
            placed = [row[p] for p in parents[node] if p in row]
            return (sum(placed) / len(placed) if placed else 0.0, natural(node))

        column.sort(key=key)
        for i, node in enumerate(column):
            row[node] = float(i)
    return columns


__all__ = [
    "MAX_CHILDREN",
    "MAX_LINEAGE_NODES",
    "Lineage",
    "LineageEdge",
    "LineageVersion",
    "Relation",
    "Relations",
    "layer",
]

"""Laying out a lineage as an SVG drawing: versions in columns by generation, parents on the
left, edges from each parent to the versions built from it.

Only coordinates and words are made here; ``ancestry.html`` writes the SVG (no script,
no inline style: the classes come from the ``.graph`` section of ``packyard.css``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from packyard.domain.enums import AncestryStatus, VersionStatus
from packyard.domain.lineage import Lineage, LineageVersion
from packyard.web.filters import status_label

NODE_W = 196
NODE_H = 50
COL_GAP = 72
ROW_GAP = 18
PAD = 12
# Characters of a bucket name that fit on a node (13px system font); longer names are cut
# with an ellipsis (the full name is in the node's title and accessible name).
MAX_LABEL = 24


@dataclass(frozen=True, slots=True)
class GraphNode:
    version: LineageVersion
    status: VersionStatus
    x: int
    y: int
    classes: str
    title: str  # the bucket name as it fits
    subtitle: str  # "v3 · Active"
    label: str  # the accessible name: everything, in words
    href: str

    @property
    def text_x(self) -> int:
        return self.x + 10


@dataclass(frozen=True, slots=True)
class GraphEdge:
    path: str
    classes: str
    label: str
    marker: str


@dataclass(frozen=True, slots=True)
class Graph:
    width: int
    height: int
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    columns: int
    node_w: int = NODE_W
    node_h: int = NODE_H


def _cut(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def layout(lineage: Lineage, now: datetime, href: Callable[[LineageVersion], str]) -> Graph:
    columns = lineage.generations()
    stale = {e.child_id for e in lineage.edges if e.status is AncestryStatus.OUT_OF_DATE}
    placed: dict[str, GraphNode] = {}
    for c, column in enumerate(columns):
        for r, v in enumerate(column):
            status = v.status(now)
            classes = ["node"]
            words = [v.bucket_name, v.name, status_label(status)]
            if v.bucket_name == lineage.bucket_name:
                classes.append("current")
                words.append("this bucket")
            if status is VersionStatus.REVOKED:
                classes.append("revoked")
            elif status is VersionStatus.REVOCATION_SCHEDULED:
                classes.append("scheduled")
            if v.id in stale:
                classes.append("out_of_date")
                words.append("built from an out-of-date parent")
            sub = f"{v.name} · {status_label(status)}"
            if status is VersionStatus.REVOKED:
                sub = f"{v.name} · ✕ REVOKED"
            placed[v.id] = GraphNode(
                version=v,
                status=status,
                x=PAD + c * (NODE_W + COL_GAP),
                y=PAD + r * (NODE_H + ROW_GAP),
                classes=" ".join(classes),
                title=_cut(v.bucket_name),
                subtitle=sub,
                label=", ".join(words),
                href=href(v),
            )
    edges: list[GraphEdge] = []
    for e in lineage.edges:
        parent, child = placed.get(e.parent_id), placed.get(e.child_id)
        if parent is None or child is None:
            continue
        x1, y1 = parent.x + NODE_W, parent.y + NODE_H // 2
        x2, y2 = child.x - 4, child.y + NODE_H // 2
        bend = max(24, (x2 - x1) // 2)
        out_of_date = e.status is AncestryStatus.OUT_OF_DATE
        through = f" from channel {e.channel_name}" if e.channel_name else ""
        edges.append(
            GraphEdge(
                path=f"M{x1} {y1} C{x1 + bend} {y1} {x2 - bend} {y2} {x2} {y2}",
                classes="edge out_of_date" if out_of_date else "edge",
                label=(
                    f"{child.version.label} built from {parent.version.label}{through}: "
                    f"{status_label(e.status).lower()}"
                ),
                marker="arrow-stale" if out_of_date else "arrow",
            )
        )
    rows = max((len(c) for c in columns), default=0)
    width = 2 * PAD + len(columns) * NODE_W + max(0, len(columns) - 1) * COL_GAP
    height = 2 * PAD + rows * NODE_H + max(0, rows - 1) * ROW_GAP
    return Graph(
        width=width, height=height, nodes=list(placed.values()), edges=edges, columns=len(columns)
    )


__all__ = ["Graph", "GraphEdge", "GraphNode", "layout"]

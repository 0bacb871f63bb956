"""Seeding a large ancestry forest fast, through the storage layer (benchmarks, scale tests).

:func:`seed_forest` writes, in one transaction of bulk inserts, a root version
and ``descendants`` transitive descendants spread over ``buckets`` buckets,
ready for a revocation of the root to cascade over all of them:

* every bucket gets an older complete *base* version outside the tree (``v1``),
  its `latest` channel (history: base, then the bucket's newest tree version,
  which it serves) and a user channel ``stable`` (history: base, then the
  bucket's first tree version, which it serves);
* tree version ``i`` (1..N) lives in bucket ``i % buckets``; its parent is
  version ``(i - 1) // fanout`` (0 is the root, in bucket 0), and every
  ``diamond_every``-th version has a second, earlier parent, so the forest has
  diamonds and crosses buckets at every level;
* each version has one DONE build with one artifact.

After revoking the root, every tree version is revoked and every channel above
serves its bucket's base version again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from packyard.domain.enums import BuildStatus, TemplateType
from packyard.domain.models import MANAGED_AUTHOR, MANAGED_CHANNEL
from packyard.domain.rules import utcnow
from packyard.ids import new_id
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

USER_CHANNEL = "stable"


@dataclass(slots=True)
class Forest:
    root_id: str
    root_bucket: str
    root_fingerprint: str
    bucket_names: list[str]
    bucket_ids: list[str]
    base_ids: list[str]  # per bucket, the version outside the tree
    descendant_ids: list[str]
    edges: int
    channel_ids: list[str] = field(default_factory=list)


def seed_forest(
    store: Store,
    project_id: str,
    *,
    descendants: int = 10_000,
    buckets_count: int = 100,
    fanout: int = 3,
    diamond_every: int = 7,
    prefix: str = "forest",
    with_builds: bool = True,
    now: datetime | None = None,
) -> Forest:
    """Seed the forest described in the module docstring; returns its ids."""
    if descendants < 1 or buckets_count < 1 or fanout < 1:
        raise ValueError("descendants, buckets_count and fanout must be positive")
    now = now or utcnow()
    start = now - timedelta(hours=1)
    bucket_ids = [new_id() for _ in range(buckets_count)]
    bucket_names = [f"{prefix}-{b}" for b in range(buckets_count)]
    base_ids = [new_id() for _ in range(buckets_count)]
    tree_ids = [new_id() for _ in range(descendants + 1)]

    version_rows: list[dict[str, Any]] = []
    numbers = [1] * buckets_count
    first_in_bucket: dict[int, str] = {}
    newest_in_bucket: dict[int, str] = {}

    def version_row(vid: str, b: int, fingerprint: str, number: int, at: datetime) -> None:
        version_rows.append(
            {
                "id": vid,
                "bucket_id": bucket_ids[b],
                "fingerprint": fingerprint,
                "number": number,
                "template_type": TemplateType.HCL2.value,
                "author_id": "forest-seeder",
                "created_at": at,
                "updated_at": at,
                "revoke_at": None,
                "revocation_message": "",
                "revocation_author": "",
                "revocation_type": None,
                "revocation_inherited_from": None,
                "revocation_applied": True,
            }
        )

    for b in range(buckets_count):
        version_row(base_ids[b], b, "base", 1, start)
    for i, vid in enumerate(tree_ids):
        b = i % buckets_count
        numbers[b] += 1
        version_row(vid, b, f"tree-{i}", numbers[b], start + timedelta(microseconds=i + 1))
        first_in_bucket.setdefault(b, vid)
        newest_in_bucket[b] = vid

    edge_rows: list[dict[str, Any]] = []
    for i in range(1, descendants + 1):
        parents = {(i - 1) // fanout}
        if diamond_every and i % diamond_every == 0 and i >= 2:
            parents.add(i // 2 - 1)  # earlier than i, so still a DAG
        for p in sorted(parents):
            edge_rows.append(
                {
                    "child_version_id": tree_ids[i],
                    "parent_version_id": tree_ids[p],
                    "parent_channel_id": None,
                    "child_bucket_id": bucket_ids[i % buckets_count],
                    "parent_bucket_id": bucket_ids[p % buckets_count],
                    "created_at": start,
                }
            )

    bucket_rows = [
        {
            "id": bucket_ids[b],
            "project_id": project_id,
            "name": bucket_names[b],
            "description": "",
            "labels": {},
            "version_count": numbers[b],
            "latest_version_id": newest_in_bucket.get(b, base_ids[b]),
            "created_at": start,
            "updated_at": start,
        }
        for b in range(buckets_count)
    ]

    channel_rows: list[dict[str, Any]] = []
    history_rows: list[dict[str, Any]] = []
    for b in range(buckets_count):
        for name, managed, serving in (
            (MANAGED_CHANNEL, True, newest_in_bucket.get(b)),
            (USER_CHANNEL, False, first_in_bucket.get(b)),
        ):
            cid = new_id()
            author = MANAGED_AUTHOR if managed else "forest-seeder"
            channel_rows.append(
                {
                    "id": cid,
                    "bucket_id": bucket_ids[b],
                    "name": name,
                    "managed": managed,
                    "restricted": managed,
                    "version_id": serving or base_ids[b],
                    "author_id": author,
                    "created_at": start,
                    "updated_at": start,
                }
            )
            history = [base_ids[b]] + ([serving] if serving else [])
            for seq, vid in enumerate(history, start=1):
                history_rows.append(
                    {
                        "id": new_id(),
                        "channel_id": cid,
                        "seq": seq,
                        "version_id": vid,
                        "author_id": author,
                        "assigned_at": start + timedelta(seconds=seq),
                    }
                )

    build_rows: list[dict[str, Any]] = []
    artifact_rows: list[dict[str, Any]] = []
    if with_builds:
        for row in version_rows:
            bid = new_id()
            build_rows.append(
                {
                    "id": bid,
                    "version_id": row["id"],
                    "component_type": "null.forest",
                    "packer_run_uuid": "",
                    "platform": "aws",
                    "status": BuildStatus.DONE.value,
                    "source_external_identifier": "",
                    "labels": {},
                    "metadata": {"packer": {"version": "1.16.0"}},
                    "parent_version_id": None,
                    "parent_channel_id": None,
                    "created_at": start,
                    "updated_at": start,
                }
            )
            artifact_rows.append(
                {
                    "id": new_id(),
                    "build_id": bid,
                    "project_id": project_id,
                    "external_identifier": f"ami-{row['id'].lower()}",
                    "region": "us-east-1",
                    "created_at": start,
                }
            )

    with store.write() as conn:
        for table, rows in (
            (buckets, bucket_rows),
            (versions, version_rows),
            (version_edges, edge_rows),
            (channels, channel_rows),
            (channel_assignments, history_rows),
            (builds, build_rows),
            (artifacts, artifact_rows),
        ):
            if rows:
                conn.execute(table.insert(), rows)

    return Forest(
        root_id=tree_ids[0],
        root_bucket=bucket_names[0],
        root_fingerprint="tree-0",
        bucket_names=bucket_names,
        bucket_ids=bucket_ids,
        base_ids=base_ids,
        descendant_ids=tree_ids[1:],
        edges=len(edge_rows),
        channel_ids=[r["id"] for r in channel_rows],
    )


__all__ = ["USER_CHANNEL", "Forest", "seed_forest"]

"""The object blocks of webhook events and audit records, as HCP Packer sends them.

Pure functions of domain objects: names as on HCP's wire (``bucket.name``, version
``name`` "v0"/"vN"), times RFC 3339 UTC, statuses without their ``VERSION_``/``BUILD_``
prefix, ``""`` for what is unset (HCP's documented examples).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from packyard.domain.models import Bucket, Build, Channel, Version
from packyard.domain.rules import status_of

JSON = dict[str, Any]


def when(value: datetime | None) -> str:
    """RFC 3339 UTC (``2026-12-05T16:17:00.123456Z``), ``""`` when unset."""
    if value is None:
        return ""
    if value.tzinfo is None:  # SQLite gives stored UTC times back without their zone
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def bucket(b: Bucket, *, labels: bool = False) -> JSON:
    out: JSON = {"id": b.id, "name": b.name}
    if labels:
        out["labels"] = dict(b.labels)
    return out


def bucket_of(v: Version) -> JSON:
    return {"id": v.bucket_id, "name": v.bucket_name}


def version_status(v: Version, now: datetime) -> str:
    return status_of(v, now).value.removeprefix("VERSION_")


def version(v: Version, now: datetime) -> JSON:
    return {
        "id": v.id,
        "fingerprint": v.fingerprint,
        "name": v.name,
        "revoke_at": when(v.revoke_at),
        "revocation_message": v.revocation_message,
        "revocation_author": v.revocation_author,
        "status": version_status(v, now),
    }


def version_ref(v: Version) -> JSON:
    """A version as the ``assign`` event names it (and its ``previous_version``)."""
    return {"id": v.id, "fingerprint": v.fingerprint, "name": v.name}


def artifacts(b: Build) -> list[JSON]:
    return [{"region": a.region, "external_identifier": a.external_identifier} for a in b.artifacts]


def builds(items: Iterable[Build]) -> list[JSON]:
    return [
        {
            "id": b.id,
            "platform": b.platform,
            "component_type": b.component_type,
            "labels": dict(b.labels),
            "artifacts": artifacts(b),
        }
        for b in items
    ]


def build(b: Build, *, source_channel: Channel | None = None) -> JSON:
    """A build as HCP's audit records carry it."""
    return {
        "id": b.id,
        "source_external_identifier": b.source_external_identifier,
        "source_version_id": b.parent_version_id or "",
        "source_build_id": "",
        "source_channel_id": b.parent_channel_id or "",
        "source_channel_name": source_channel.name if source_channel else "",
        "source_channel_managed": bool(source_channel and source_channel.managed),
        "platform": b.platform,
        "component_type": b.component_type,
        "status": b.status.value.removeprefix("BUILD_"),
        "labels": dict(b.labels),
        "artifacts": artifacts(b),
        "metadata": dict(b.metadata or {}),
    }


def channel(c: Channel) -> JSON:
    return {
        "id": c.id,
        "name": c.name,
        "author_id": c.author_id,
        "managed": c.managed,
        "restricted": c.restricted,
    }


def version_payload(v: Version, now: datetime, *, with_builds: bool = True) -> JSON:
    """``bucket``, ``version`` and (unless the version was just created) ``builds``."""
    out: JSON = {"bucket": bucket_of(v), "version": version(v, now)}
    if with_builds:
        out["builds"] = builds(v.builds)
    return out


def assign_payload(
    c: Channel, assigned: Version | None, previous: Version | None, bucket_block: JSON
) -> JSON:
    """The ``assign`` event: the channel, the version it now serves (none when unassigned)
    and the one it served before, if any."""
    out: JSON = {"bucket": bucket_block, "channel": channel(c)}
    if assigned is not None:
        out["version"] = version_ref(assigned)
        out["builds"] = builds(assigned.builds)
    if previous is not None:
        out["previous_version"] = version_ref(previous)
        out["previous_builds"] = builds(previous.builds)
    return out

"""Helpers for revocation, rollback and deletion tests (HTTP and service level)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import func, select

from packyard.domain.enums import BuildStatus, RevocationType, TemplateType
from packyard.domain.models import Caller, Version
from packyard.services.builds import ArtifactInput, BuildChanges
from packyard.services.container import Services
from packyard.services.revocation import RevocationRequest
from packyard.store.engine import Store
from packyard.store.schema import channel_assignments, channels, versions
from tests.support import swagger
from tests.support.factories import Api, unique

# --- over HTTP --------------------------------------------------------------


def new_bucket(api: Api) -> str:
    """Create a bucket with a fresh name; returns the name."""
    name = unique("b")
    api.create_bucket(name)
    return name


def version_path(bucket: str, fingerprint: str) -> str:
    return f"/buckets/{bucket}/versions/{fingerprint}"


def update_version(api: Api, bucket: str, fingerprint: str, **body: Any) -> httpx.Response:
    return api.patch(version_path(bucket, fingerprint), body)


def revoke(api: Api, bucket: str, fingerprint: str, **body: Any) -> dict[str, Any]:
    """UpdateVersion that must succeed; returns the (swagger-valid) version."""
    payload = api.ok(update_version(api, bucket, fingerprint, **body))
    swagger.validate("PackerService_UpdateVersion", payload)
    version: dict[str, Any] = payload["version"]
    return version


def get_version(api: Api, bucket: str, fingerprint: str) -> dict[str, Any]:
    version: dict[str, Any] = api.ok(api.get(version_path(bucket, fingerprint)))["version"]
    return version


def get_channel(api: Api, bucket: str, name: str) -> dict[str, Any]:
    channel: dict[str, Any] = api.ok(api.get(f"/buckets/{bucket}/channels/{name}"))["channel"]
    return channel


def serving(api: Api, bucket: str, channel: str) -> str | None:
    """The fingerprint a channel serves, or None when unassigned."""
    version = get_channel(api, bucket, channel)["version"]
    return None if version is None else str(version["fingerprint"])


def create_channel(api: Api, bucket: str, name: str, fingerprint: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if fingerprint:
        body["version_fingerprint"] = fingerprint
    channel: dict[str, Any] = api.ok(api.post(f"/buckets/{bucket}/channels", body))["channel"]
    return channel


def assign(api: Api, bucket: str, channel: str, fingerprint: str | None) -> httpx.Response:
    body: dict[str, Any] = {"update_mask": "versionFingerprint"}
    if fingerprint:
        body["version_fingerprint"] = fingerprint
    return api.patch(f"/buckets/{bucket}/channels/{channel}", body)


def history(api: Api, bucket: str, channel: str) -> list[dict[str, Any]]:
    """Assignment history, newest first."""
    body = api.ok(api.get(f"/buckets/{bucket}/channels/{channel}/history"))
    entries: list[dict[str, Any]] = body["history"]
    return entries


def push(
    api: Api,
    bucket: str,
    fingerprint: str | None = None,
    *,
    parent: dict[str, Any] | None = None,
    parent_channel: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A complete version, optionally built from ``parent`` (taken from ``parent_channel``)."""
    fp = fingerprint or unique("fp")
    link = None
    if parent is not None:
        link = (parent["id"], parent_channel["id"] if parent_channel else None)
    return api.complete_version(bucket, fp, parent=link)


# --- service level ----------------------------------------------------------


def new_buckets(services: Services, caller: Caller, *prefixes: str) -> list[str]:
    """Create a bucket with a fresh name for each prefix; returns the names."""
    names = [unique(prefix) for prefix in prefixes]
    for name in names:
        services.buckets.create(caller, name, None, None)
    return names


def request(
    *,
    revoke_at: datetime | None = None,
    revoke_in: str | None = None,
    message: str = "",
    restore: bool = False,
    skip_descendants: bool = False,
    disable_rollback: bool = False,
) -> RevocationRequest:
    return RevocationRequest(
        revoke_at=revoke_at,
        revoke_in=revoke_in,
        message=message,
        restore=restore,
        skip_descendants=skip_descendants,
        disable_rollback=disable_rollback,
    )


@dataclass
class Pushed:
    bucket: str
    fingerprint: str
    id: str


def push_version(
    services: Services,
    caller: Caller,
    bucket: str,
    fingerprint: str | None = None,
    *,
    parent_id: str | None = None,
    parent_channel_id: str | None = None,
) -> Pushed:
    """Create and complete a one-build version through the services."""
    fp = fingerprint or unique("fp")
    version = services.versions.create(caller, bucket, fp, TemplateType.HCL2)
    build = services.builds.create(caller, bucket, fp, "null.a", BuildChanges())
    services.builds.update(
        caller,
        bucket,
        fp,
        build.id,
        BuildChanges(
            status=BuildStatus.DONE,
            platform="aws",
            artifacts=[ArtifactInput(unique("ami"), "us-east-1")],
            metadata={"packer": {}},
            parent_version_id=parent_id,
            parent_channel_id=parent_channel_id,
        ),
    )
    return Pushed(bucket, fp, version.id)


def load(services: Services, caller: Caller, pushed: Pushed) -> Version:
    return services.versions.get(caller, pushed.bucket, pushed.fingerprint)


def channel_target(store: Store, bucket_id: str, name: str) -> str | None:
    with store.read() as conn:
        row = conn.execute(
            select(channels.c.version_id).where(
                channels.c.bucket_id == bucket_id, channels.c.name == name
            )
        ).one()
    target: str | None = row.version_id
    return target


def history_length(store: Store, channel_id: str) -> int:
    with store.read() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(channel_assignments)
                .where(channel_assignments.c.channel_id == channel_id)
            ).scalar_one()
        )


def revocation_snapshot(store: Store, version_ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """``id -> (revoke_at, type, inherited_from, applied)`` for the given versions."""
    out: dict[str, tuple[Any, ...]] = {}
    with store.read() as conn:
        for start in range(0, len(version_ids), 500):
            rows = conn.execute(
                select(
                    versions.c.id,
                    versions.c.revoke_at,
                    versions.c.revocation_type,
                    versions.c.revocation_inherited_from,
                    versions.c.revocation_applied,
                ).where(versions.c.id.in_(version_ids[start : start + 500]))
            )
            for r in rows:
                out[r.id] = (r.revoke_at, r.revocation_type, r.revocation_inherited_from, r[4])
    return out


INHERITED = RevocationType.INHERITED.value
MANUAL = RevocationType.MANUAL.value

"""The HCP Packer 2021-04-30 ("images/iterations") wire: request bodies, their
translation to the 2023-01-01 services' terms, and responses in that API's names.

An iteration is a version (same ULID), an image an artifact (same ULID), a bucket's
``slug`` its name, a channel's ``slug`` its name. Build statuses lose their ``BUILD_``
prefix; Packer up to 1.10 dereferences ``status`` unconditionally, so it is always set.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from packyard.api.render import ts
from packyard.api.wire import Body
from packyard.domain.ancestry import AncestryRelation
from packyard.domain.enums import BuildStatus, RevocationType, TemplateType, VersionStatus
from packyard.domain.models import Bucket, Build, Channel, Registry, Version
from packyard.domain.paging import Page
from packyard.domain.rules import status_of
from packyard.errors import invalid
from packyard.services.builds import ArtifactInput, BuildChanges

API_PREFIX = "/packer/2021-04-30"
JSON = dict[str, Any]


# --- request bodies ------------------------------------------------------------------


class BuildStatus2021(StrEnum):
    UNSET = "UNSET"
    RUNNING = "RUNNING"
    DONE = "DONE"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


class Restriction(StrEnum):
    UNSET = "RESTRICTION_UNSET"
    RESTRICTED = "RESTRICTED"
    UNRESTRICTED = "UNRESTRICTED"


class CreateBucketBody(Body):
    bucket_slug: str | None = None
    description: str | None = None
    labels: dict[str, str] | None = None


class UpdateBucketBody(Body):
    description: str | None = None
    labels: dict[str, str] | None = None
    platforms: list[str] | None = None  # null (sent by Packer 1.9) leaves them as they are


class CreateIterationBody(Body):
    fingerprint: str | None = None
    template_type: TemplateType | None = None


class UpdateIterationBody(Body):
    bucket_slug: str | None = None
    complete: bool | None = None
    revocation_message: str | None = None
    revoke_at: datetime | None = None
    revoke_in: str | None = None
    restore: bool | None = None
    skip_descendants_revocation: bool | None = None
    rollback_channels: bool | None = None  # opt-in here; 2023 has disable_rollback_channels


class ImageBody(Body):
    image_id: str | None = None
    region: str | None = None


class BuildFields(Body):
    """BuildCreateBody and BuildUpdates: the same fields, ``component_type`` on create."""

    component_type: str | None = None
    packer_run_uuid: str | None = None
    images: list[ImageBody] | None = None  # null (every Packer 1.9 PATCH): unchanged
    cloud_provider: str | None = None
    status: BuildStatus2021 | None = None
    source_image_id: str | None = None
    source_iteration_id: str | None = None
    source_channel_id: str | None = None
    labels: dict[str, str] | None = None


class CreateBuildBody(Body):
    build: BuildFields | None = None
    fingerprint: str | None = None


class UpdateBuildBody(Body):
    updates: BuildFields | None = None


class ChannelBody(Body):
    """CreateChannel's and UpdateChannel's body (``slug`` on create, ``mask`` on update)."""

    slug: str | None = None
    incremental_version: int | None = None
    iteration_id: str | None = None
    fingerprint: str | None = None
    restriction: Restriction | None = None
    mask: str | None = None


# --- translation ------------------------------------------------------------------------


def build_changes(fields: BuildFields | None) -> BuildChanges:
    f = fields or BuildFields()
    return BuildChanges(
        status=None if f.status is None else BuildStatus("BUILD_" + f.status.value),
        platform=f.cloud_provider,
        packer_run_uuid=f.packer_run_uuid,
        artifacts=None
        if f.images is None
        else [ArtifactInput(i.image_id, i.region) for i in f.images],
        labels=f.labels,
        source_external_identifier=f.source_image_id,
        parent_version_id=f.source_iteration_id or None,
        parent_channel_id=f.source_channel_id or None,
        metadata=None,
    )


def restricted(restriction: Restriction | None) -> bool | None:
    """The 2023 ``restricted`` flag; ``None`` (unchanged) for ``RESTRICTION_UNSET``."""
    if restriction is None or restriction is Restriction.UNSET:
        return None
    return restriction is Restriction.RESTRICTED


# UpdateChannel ``mask`` paths (camelCase as documented, snake_case accepted).
IDENTIFIER_PATHS = {
    "iterationId": "iteration_id",
    "iteration_id": "iteration_id",
    "fingerprint": "fingerprint",
    "incrementalVersion": "incremental_version",
    "incremental_version": "incremental_version",
}


def channel_mask(body: ChannelBody) -> tuple[list[str], bool]:
    """``(identifier fields to resolve, restriction in the mask)`` of an UpdateChannel.

    Without a mask every attribute is updated from its value: the first non-zero
    identifier (iterationId, fingerprint, incrementalVersion) is the assignment, none
    unassigns; the restriction changes unless it is ``RESTRICTION_UNSET``.
    """
    if not (body.mask or "").strip():
        given = [
            name
            for name in ("iteration_id", "fingerprint", "incremental_version")
            if getattr(body, name)
        ]
        return given[:1] or ["none"], restricted(body.restriction) is not None
    idents: list[str] = []
    restriction = False
    for raw in (body.mask or "").split(","):
        path = raw.strip()
        if not path:
            continue
        if path == "restriction":
            restriction = True
        elif path in IDENTIFIER_PATHS:
            idents.append(IDENTIFIER_PATHS[path])
        else:
            raise invalid(f"field mask: unknown path {path[:100]!r}", field="mask")
    return sorted(set(idents)), restriction


def one_identifier(
    iteration_id: str | None, fingerprint: str | None, incremental_version: int | None
) -> None:
    """Refuse anything but exactly one of GetIteration's three identifiers."""
    given = [
        name
        for name, value in (
            ("iteration_id", iteration_id),
            ("fingerprint", fingerprint),
            ("incremental_version", incremental_version),
        )
        if value
    ]
    if len(given) != 1:
        raise invalid(
            "Exactly one of iteration_id, fingerprint or incremental_version is required.",
            field="iteration_id",
        )


UNIMPLEMENTED = {
    "CreateRegistry": "PUT /packer/2023-01-01/organizations/{org}/projects/{project}/registry",
    "UpdateRegistry": "PATCH /packer/2023-01-01/organizations/{org}/projects/{project}/registry",
    "DeleteRegistry": "DELETE /packer/2023-01-01/organizations/{org}/projects/{project}/registry",
}


def unimplemented_message(operation: str) -> str:
    return (
        f"{operation} of the 2021-04-30 API is not served by this registry; "
        f"use {UNIMPLEMENTED[operation]} (PackerService_{operation} of 2023-01-01)."
    )


# --- responses --------------------------------------------------------------------------


def location(org: str, project: str) -> JSON:
    return {"organization_id": org, "project_id": project}


def pagination(page: Page[Any]) -> JSON:
    return {"next_page_token": page.next_token, "previous_page_token": page.previous_token}


def registry(r: Registry) -> JSON:
    return {
        "id": r.id,
        "location": location(r.organization_id, r.project_id),
        "config": {
            "feature_tier": r.feature_tier.value,
            "activated": r.activated,
            "billing_deprovision": None,
            "tfc_run_task_config": None
            if r.run_task is None
            else {"api_id": r.run_task.api_id, "hmac_key": ""},
        },
        "created_at": ts(r.created_at),
        "updated_at": ts(r.updated_at),
    }


def build(b: Build) -> JSON:
    return {
        "id": b.id,
        "iteration_id": b.version_id,
        "component_type": b.component_type,
        "packer_run_uuid": b.packer_run_uuid,
        "images": [
            {
                "id": a.id,
                "image_id": a.external_identifier,
                "region": a.region,
                "created_at": ts(a.created_at),
            }
            for a in b.artifacts
        ],
        "cloud_provider": b.platform,
        "status": b.status.value.removeprefix("BUILD_"),
        "created_at": ts(b.created_at),
        "updated_at": ts(b.updated_at),
        "source_image_id": b.source_external_identifier,
        "labels": b.labels,
    }


def _revocation_type(v: Version) -> str:
    kind = v.revocation_type or RevocationType.UNSET
    return "UNSET" if kind is RevocationType.UNSET else kind.value


def _iteration_fields(v: Version, org: str, project: str) -> JSON:
    """What Iteration, BucketLatestIteration and IterationforList share."""
    inherited = v.revocation_inherited_from
    out: JSON = {
        "id": v.id,
        "bucket_slug": v.bucket_name,
        "incremental_version": v.number or 0,
        "complete": v.complete,
        "author_id": v.author_id,
        "created_at": ts(v.created_at),
        "updated_at": ts(v.updated_at),
        "fingerprint": v.fingerprint,
        "revocation_message": v.revocation_message,
        "revocation_author": v.revocation_author,
        "revocation_type": _revocation_type(v),
        "revocation_inherited_from": None
        if inherited is None
        else {
            "href": f"{API_PREFIX}/organizations/{org}/projects/{project}/images/"
            f"{quote(inherited.bucket_name)}/iteration?iteration_id={inherited.version_id}",
            "bucket_slug": inherited.bucket_name,
            "iteration_incremental_version": int(inherited.version_name.removeprefix("v") or 0),
            "iteration_id": inherited.version_id,
            "iteration_fingerprint": inherited.version_fingerprint,
        },
    }
    if v.revoke_at is not None:  # Packer reads a zero revoke_at as "not revoked"
        out["revoke_at"] = ts(v.revoke_at)
    return out


def iteration(v: Version, org: str, project: str) -> JSON:
    return {
        **_iteration_fields(v, org, project),
        "builds": [build(b) for b in v.builds],
        "has_descendants": v.has_descendants,
        "template_type": v.template_type.value,
    }


def iteration_for_list(v: Version, org: str, project: str) -> JSON:
    return {
        **_iteration_fields(v, org, project),
        "build_statuses": {
            b.component_type: b.status.value.removeprefix("BUILD_") for b in v.builds
        },
        "has_descendants": v.has_descendants,
    }


def _ancestry_href(org: str, project: str, bucket: str, query: str) -> str:
    return (
        f"{API_PREFIX}/organizations/{org}/projects/{project}/images/{quote(bucket)}/ancestry"
        f"?{query}"
    )


def bucket(b: Bucket, org: str) -> JSON:
    latest = b.latest_version
    out: JSON = {
        "id": b.id,
        "slug": b.name,
        "location": location(org, b.project_id),
        "latest_iteration": None
        if latest is None
        else {
            **_iteration_fields(latest, org, b.project_id),
            "builds": [build(x) for x in latest.builds],
        },
        "latest_version": latest.number or 0 if latest else 0,
        "created_at": ts(b.created_at),
        "updated_at": ts(b.updated_at),
        "platforms": sorted({x.platform for x in latest.builds if x.platform}) if latest else [],
        "description": b.description,
        "labels": b.labels,
        "iteration_count": str(b.version_count),
    }
    if b.parents_status is not None:
        out["parents"] = {
            "href": _ancestry_href(org, b.project_id, b.name, "type=ANCESTRY_TYPE_PARENTS"),
            "status": b.parents_status.value,
        }
    if b.children_status is not None:
        out["children"] = {
            "href": _ancestry_href(org, b.project_id, b.name, "type=ANCESTRY_TYPE_CHILDREN"),
            "status": b.children_status.value,
        }
    return out


def channel(c: Channel, org: str, project: str) -> JSON:
    return {
        "id": c.id,
        "slug": c.name,
        "bucket_slug": c.bucket_name,
        "author_id": c.author_id,
        "created_at": ts(c.created_at),
        "updated_at": ts(c.updated_at),
        "iteration": iteration(c.version, org, project) if c.version else None,
        "managed": c.managed,
        "restricted": c.restricted,
    }


_ITERATION_STATUS: dict[VersionStatus, str] = {
    s: "ITERATION_" + s.value.removeprefix("VERSION_")
    for s in VersionStatus
    if s is not VersionStatus.INCOMPLETE
}


def history_iteration(v: Version, org: str, project: str, now: datetime) -> JSON:
    status = status_of(v, now)
    return {
        "id": v.id,
        "incremental_version": v.number or 0,
        "fingerprint": v.fingerprint,
        # ITERATION_* has no "incomplete": an incomplete version is still running.
        "status": _ITERATION_STATUS.get(status, "ITERATION_RUNNING"),
        "parents": None
        if v.parents_status is None
        else {
            "href": _ancestry_href(
                org, project, v.bucket_name, f"type=ANCESTRY_TYPE_PARENTS&iteration_id={v.id}"
            ),
            "status": v.parents_status.value,
        },
    }


def ancestry_relation(r: AncestryRelation) -> JSON:
    cv = r.channel_version
    return {
        "status": r.status.value,
        "parent": {
            "bucket_slug": r.parent.bucket_name,
            "iteration_id": r.parent.id,
            "iteration_incremental_version": r.parent.number or 0,
            "iteration_fingerprint": r.parent.fingerprint,
            "channel": r.channel_name,
            "channel_iteration": None
            if cv is None
            else {
                "id": cv.id,
                "incremental_version": cv.number or 0,
                "fingerprint": cv.fingerprint,
            },
        },
        "child": {
            "bucket_slug": r.child.bucket_name,
            "iteration_id": r.child.id,
            "iteration_incremental_version": r.child.number or 0,
            "iteration_fingerprint": r.child.fingerprint,
        },
    }

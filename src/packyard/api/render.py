"""Domain objects rendered as HCP Packer 2023-01-01 JSON (protojson conventions).

int64 values are strings, int32 values numbers, enums their names, timestamps
RFC 3339 UTC; unpopulated fields are emitted (``null``, ``""``, ``[]``) the way
live HCP does, and the fields Packer dereferences (``status``) are always set.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from packyard.domain.ancestry import AncestryRelation
from packyard.domain.enforced import EnforcedBlock, EnforcedBlockVersion, EnforcedLink
from packyard.domain.enums import RevocationType
from packyard.domain.models import (
    Artifact,
    Bucket,
    Build,
    Channel,
    Organization,
    PrincipalRecord,
    Project,
    Registry,
    RunTaskSettings,
    Version,
)
from packyard.domain.paging import Page
from packyard.domain.rules import status_of
from packyard.domain.search import ExternalArtifactHit
from packyard.services.access import AccessEntry

API_PREFIX = "/packer/2023-01-01"
JSON = dict[str, Any]


def ts(value: datetime | None) -> datetime | str | None:
    """RFC 3339 in UTC with microseconds: ``2026-11-30T01:02:03.000004Z``.

    A UTC time with a fraction is handed to the encoder as it is: orjson writes exactly
    that text (``JSONBody``), six times faster than ``isoformat``, and an uncached
    GetChannel has 25 of them. Other times are formatted here, so that the six digits of
    a whole second and the conversion of other offsets stay the same.
    """
    if value is None:
        return None
    if value.tzinfo is UTC:  # what the store and the clock give
        if value.microsecond:
            return value
        return value.isoformat(timespec="microseconds")[:-6] + "Z"
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def location(organization_id: str, project_id: str) -> JSON:
    return {"organization_id": organization_id, "project_id": project_id, "region": None}


def pagination(page: Page[Any]) -> JSON:
    return {"next_page_token": page.next_token, "previous_page_token": page.previous_token}


def ancestry_href(org: str, project: str, bucket: str, query: str) -> str:
    return (
        f"{API_PREFIX}/organizations/{org}/projects/{project}/buckets/{quote(bucket)}/ancestry"
        f"?{query}"
    )


def registry(r: Registry) -> JSON:
    return {
        "id": r.id,
        "location": location(r.organization_id, r.project_id),
        "config": {
            "feature_tier": r.feature_tier.value,
            "activated": r.activated,
            "billing_deprovision": None,
            "tfc_run_task_config": run_task_config(r.run_task),
        },
        "created_at": ts(r.created_at),
        "updated_at": ts(r.updated_at),
    }


def run_task_config(settings: RunTaskSettings | None) -> JSON | None:
    """RegistryTFCRunTaskConfig. The HMAC key is left empty: GetRegistry is for viewers too,
    and only GetRegistryTFCRunTaskAPI hands the key out, to writers."""
    if settings is None:
        return None
    return {
        "api_id": settings.api_id,
        "hmac_key": "",
        "on_untracked_image": settings.on_untracked_image.value,
    }


RUN_TASK_ENDPOINT = "/packyard/runtasks/"  # + api_id: where HCP Terraform sends run tasks


def run_task_api(base_url: str, api_id: str, hmac_key: str) -> JSON:
    """GetRegistryTFCRunTaskAPIResponse; ``base_url`` is the server's public base."""
    return {"api_url": base_url + RUN_TASK_ENDPOINT + quote(api_id, safe=""), "hmac_key": hmac_key}


def artifact(a: Artifact) -> JSON:
    return {
        "id": a.id,
        "external_identifier": a.external_identifier,
        "region": a.region,
        "created_at": ts(a.created_at),
    }


def build(b: Build) -> JSON:
    return {
        "id": b.id,
        "version_id": b.version_id,
        "component_type": b.component_type,
        "packer_run_uuid": b.packer_run_uuid,
        "artifacts": [artifact(a) for a in b.artifacts],
        "platform": b.platform,
        "status": b.status.value,
        "created_at": ts(b.created_at),
        "updated_at": ts(b.updated_at),
        "source_external_identifier": b.source_external_identifier,
        "labels": b.labels,
        "metadata": _metadata(b.metadata),
    }


def _metadata(value: dict[str, Any] | None) -> JSON | None:
    if value is None:
        return None
    return {"packer": value.get("packer"), "cicd": value.get("cicd"), "vcs": value.get("vcs")}


def version(v: Version, org: str, project: str, now: datetime) -> JSON:
    inherited = v.revocation_inherited_from
    return {
        "id": v.id,
        "bucket_name": v.bucket_name,
        "name": v.name,
        "status": version_status(v, now),
        "author_id": v.author_id,
        "created_at": ts(v.created_at),
        "updated_at": ts(v.updated_at),
        "fingerprint": v.fingerprint,
        "builds": [build(b) for b in v.builds],
        "revoke_at": ts(v.revoke_at),
        "revocation_message": v.revocation_message,
        "revocation_author": v.revocation_author,
        "revocation_type": (v.revocation_type or RevocationType.UNSET).value,
        "revocation_inherited_from": None
        if inherited is None
        else {
            "href": f"{API_PREFIX}/organizations/{org}/projects/{project}/buckets/"
            f"{quote(inherited.bucket_name)}/versions/{quote(inherited.version_fingerprint)}",
            "bucket_name": inherited.bucket_name,
            "version_name": inherited.version_name,
            "version_id": inherited.version_id,
            "version_fingerprint": inherited.version_fingerprint,
        },
        "has_descendants": v.has_descendants,
        "template_type": v.template_type.value,
        "parents": None
        if v.parents_status is None
        else {
            "href": ancestry_href(
                org,
                project,
                v.bucket_name,
                f"type=ANCESTRY_TYPE_PARENTS&version_fingerprint={quote(v.fingerprint)}",
            ),
            "status": v.parents_status.value,
        },
    }


def version_status(v: Version, now: datetime) -> str:
    return status_of(v, now).value


def bucket(b: Bucket, org: str, now: datetime) -> JSON:
    latest = b.latest_version
    out: JSON = {
        "id": b.id,
        "name": b.name,
        "location": location(org, b.project_id),
        "latest_version": version(latest, org, b.project_id, now) if latest else None,
        "created_at": ts(b.created_at),
        "updated_at": ts(b.updated_at),
        "platforms": sorted({x.platform for x in latest.builds if x.platform}) if latest else [],
        "description": b.description,
        "labels": b.labels,
        "version_count": str(b.version_count),
        "resource_name": f"packer/project/{b.project_id}/bucket/{b.name}",
    }
    if b.parents_status is not None:
        out["parents"] = {
            "href": ancestry_href(org, b.project_id, b.name, "type=ANCESTRY_TYPE_PARENTS"),
            "status": b.parents_status.value,
        }
    if b.children_status is not None:
        out["children"] = {
            "href": ancestry_href(org, b.project_id, b.name, "type=ANCESTRY_TYPE_CHILDREN"),
            "status": b.children_status.value,
        }
    return out


def channel(c: Channel, org: str, project: str, now: datetime) -> JSON:
    return {
        "id": c.id,
        "name": c.name,
        "bucket_name": c.bucket_name,
        "author_id": c.author_id,
        "created_at": ts(c.created_at),
        "updated_at": ts(c.updated_at),
        "version": version(c.version, org, project, now) if c.version else None,
        "managed": c.managed,
        "restricted": c.restricted,
    }


def organization(o: Organization) -> JSON:
    return {
        "id": o.id,
        "name": o.name,
        "state": "ACTIVE",
        "created_at": ts(o.created_at),
        "owner": None,
    }


def project(p: Project) -> JSON:
    return {
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "parent": {"type": "ORGANIZATION", "id": p.organization_id},
        "state": "ACTIVE",
        "created_at": ts(p.created_at),
    }


def ancestry_relation(r: AncestryRelation) -> JSON:
    """One BucketAncestry: both sides of the edge and how current the parent side is."""
    cv = r.channel_version
    return {
        "status": r.status.value,
        "parent": {
            "bucket_name": r.parent.bucket_name,
            "version_name": r.parent.name,
            "version_id": r.parent.id,
            "version_fingerprint": r.parent.fingerprint,
            "channel_name": r.channel_name,
            "channel_version": None
            if cv is None
            else {"id": cv.id, "name": cv.name, "fingerprint": cv.fingerprint},
        },
        "child": {
            "bucket_name": r.child.bucket_name,
            "version_name": r.child.name,
            "version_id": r.child.id,
            "version_fingerprint": r.child.fingerprint,
        },
    }


def external_artifact(hit: ExternalArtifactHit, now: datetime) -> JSON:
    v = hit.version
    return {
        "bucket": {"id": hit.bucket_id, "name": hit.bucket_name, "labels": hit.bucket_labels},
        "version": {
            "id": v.id,
            "name": v.name,
            "status": version_status(v, now),
            "author_id": v.author_id,
            "fingerprint": v.fingerprint,
            "revoke_at": ts(v.revoke_at),
            "revocation_message": v.revocation_message,
            "revocation_author": v.revocation_author,
            "revocation_type": (v.revocation_type or RevocationType.UNSET).value,
        },
        "build": build(hit.build),
    }


def principal(p: PrincipalRecord) -> JSON:
    return {
        "id": p.id,
        "client_id": p.client_id,
        "name": p.name,
        "role": p.role.value if p.role is not None else None,
        "disabled": p.disabled,
        "organization_id": p.organization_id,
        "project_id": p.project_id,
        "created_at": ts(p.created_at),
    }


def access_entry(e: AccessEntry) -> JSON:
    return {
        "member_id": e.member.id,
        "member_type": e.member.type.value,
        "name": e.name,
        "role": e.role.value,
        "bucket": e.bucket,
    }


def enforced_block_version(v: EnforcedBlockVersion) -> JSON:
    return {
        "id": v.id,
        "enforced_block_id": v.block_id,
        "version": v.version,
        "template_type": v.template_type.value,
        "block_content": v.block_content,
        "additional_description": v.additional_description,
        "created_at": ts(v.created_at),
        "updated_at": ts(v.updated_at),
    }


def enforced_block(b: EnforcedBlock, org: str, *, with_latest: bool = False) -> JSON:
    """EnforcedBlock; ``latest_version`` only when fetched by id, as the swagger says."""
    latest = b.latest_version if with_latest else None
    return {
        "id": b.id,
        "name": b.name,
        "location": location(org, b.project_id),
        "labels": b.labels,
        "resource_name": f"packer/project/{b.project_id}/enforced-block/{b.id}",
        "latest_version": enforced_block_version(latest) if latest else None,
        "created_at": ts(b.created_at),
        "updated_at": ts(b.updated_at),
    }


def enforced_block_detail(b: EnforcedBlock, v: EnforcedBlockVersion) -> JSON:
    """EnforcedBlockDetail: what Packer reads (``id``, ``name``, ``version.*``)."""
    return {"id": b.id, "name": b.name, "version": enforced_block_version(v)}


def enforced_block_bucket(link: EnforcedLink) -> JSON:
    return {
        "id": link.id,
        "bucket_id": link.bucket_id,
        "enforced_block_id": link.block_id,
        "enforced_block_version_id": link.version_id,
        "created_at": ts(link.created_at),
    }

"""What stock consumers do with our read responses, re-enacted on real HTTP answers.

Each function performs the calls one stock data source makes, decodes the
answer the way its Go client would (swagger-typed, so a wrongly typed field
fails like a Go decode error), applies the client's own selection logic and
returns exactly the outputs that data source exposes. Failures the client
reports become :class:`ConsumerError` with the client's message; responses
that would crash the client fail the test with an ``AssertionError``.

Sources: packer ``datasource/hcp-packer-{version,artifact}/data.go`` and
terraform-provider-hcp ``internal/provider/packer/datasources/*`` and
``internal/clients/packerv2/*`` (as summarised in the reference notes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import httpx

from tests.support import swagger
from tests.support.factories import Api

ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Packer's only way of reading an error: the first code in the re-marshalled Status.
_PACKER_CODE_RE = re.compile(r'[Cc]ode"?:([0-9]+)')
_MAX_LIST_PAGES = 1000


class ConsumerError(Exception):
    """The error a stock client would report to its user."""

    def __init__(self, message: str, *, code: int | None = None, http_status: int | None = None):
        super().__init__(message)
        self.code = code
        self.http_status = http_status


def _decode(response: httpx.Response, operation: str, what: str) -> dict[str, Any]:
    """A Go client's decode: 200 → typed payload, anything else → the error's code."""
    if response.status_code != 200:
        match = _PACKER_CODE_RE.search(response.text)
        code = int(match.group(1)) if match else None
        raise ConsumerError(
            f"error retrieving {what}: {response.text}",
            code=code,
            http_status=response.status_code,
        )
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    swagger.validate(f"PackerService_{operation}", body)
    return body


def _require_status(version: dict[str, Any]) -> str:
    status = version.get("status")
    assert isinstance(status, str) and status, "Packer dereferences version.status: it would crash"
    return status


def _packer_refuse_revoked(version: dict[str, Any]) -> None:
    if _require_status(version) == "VERSION_REVOKED":
        raise ConsumerError(
            f"the version {version['id']} is revoked and can not be used on Packer builds"
        )


def _tf_channel_version(api: Api, bucket: str, channel: str) -> dict[str, Any]:
    """The provider's GetChannel: the channel's version; no channel or no version is an error."""
    body = _decode(api.get(f"/buckets/{bucket}/channels/{channel}"), "GetChannel", "channel")
    ch = body.get("channel")
    if ch is None or not ch.get("name"):
        raise ConsumerError("received an invalid channel response.")
    version: dict[str, Any] | None = ch.get("version")
    if version is None:
        raise ConsumerError("provided Channel does not have an assigned Version")
    return version


# --- Packer -----------------------------------------------------------------


def packer_version(api: Api, bucket: str, channel: str) -> dict[str, str]:
    """``data "hcp-packer-version"``: GetChannel, refuse a missing or revoked version."""
    body = _decode(
        api.get(f"/buckets/{bucket}/channels/{channel}"), "GetChannel", "HCP Packer Version"
    )
    ch = body.get("channel")
    if ch is None:
        raise ConsumerError(f"there is no channel with the name {channel}")
    version = ch.get("version")
    if version is None:
        raise ConsumerError(f"there is no HCP Packer Version associated with the channel {channel}")
    _packer_refuse_revoked(version)
    return {
        "id": version["id"],
        "name": version["name"],
        "fingerprint": version["fingerprint"],
        "status": version["status"],
        "bucket_name": version["bucket_name"],
        "author_id": version["author_id"],
        "created_at": version["created_at"],
        "updated_at": version["updated_at"],
        "channel_id": ch["id"],
    }


def packer_artifact(
    api: Api,
    bucket: str,
    *,
    platform: str,
    region: str,
    channel: str | None = None,
    fingerprint: str | None = None,
    component_type: str = "",
) -> dict[str, Any]:
    """``data "hcp-packer-artifact"``: first artifact in ``region`` of a matching build."""
    if bool(channel) == bool(fingerprint):
        raise ConsumerError("exactly one of `version_fingerprint` or `channel_name` is required")
    channel_id = ""
    if fingerprint:
        body = _decode(
            api.get(f"/buckets/{bucket}/versions/{fingerprint}"), "GetVersion", "version"
        )
        version = body["version"]
    else:
        body = _decode(api.get(f"/buckets/{bucket}/channels/{channel}"), "GetChannel", "channel")
        ch = body["channel"]
        if ch.get("version") is None:
            raise ConsumerError(f"there is no version associated with the channel {channel}")
        channel_id = ch["id"]
        version = ch["version"]
    _packer_refuse_revoked(version)
    available: dict[str, list[str]] = {}
    for build in version.get("builds") or []:
        if build.get("platform") != platform:
            continue
        assert isinstance(build.get("status"), str), "Packer dereferences build.status"
        for art in build.get("artifacts") or []:
            available.setdefault(build["platform"], []).append(art["region"])
            if art["region"] == region and (
                not component_type or build["component_type"] == component_type
            ):
                return {
                    "platform": build["platform"],
                    "component_type": build["component_type"],
                    "created_at": art["created_at"],
                    "build_id": build["id"],
                    "version_id": build["version_id"],
                    "channel_id": channel_id,
                    "packer_run_uuid": build["packer_run_uuid"],
                    "external_identifier": art["external_identifier"],
                    "region": art["region"],
                    "labels": dict(build.get("labels") or {}),
                }
    raise ConsumerError(
        f'could not find a build result matching [region="{region}", platform="{platform}", '
        f'component_type="{component_type}"]. Available: {available} '
    )


def packer_parent_ids(
    artifact_output: dict[str, Any], versions: Sequence[dict[str, str]] = ()
) -> dict[str, str]:
    """The parent ids Packer sends when a source image matches an artifact output."""
    channel_id = artifact_output["channel_id"]
    if not channel_id:
        for v in versions:
            if v["id"] == artifact_output["version_id"]:
                channel_id = v["channel_id"]
                break
    out = {"parent_version_id": artifact_output["version_id"]}
    if channel_id:
        out["parent_channel_id"] = channel_id
    return out


# --- Terraform provider -------------------------------------------------------


def tf_version(api: Api, bucket: str, channel: str) -> dict[str, str]:
    """``data "hcp_packer_version"``: GetChannel; a null version is an error.

    The provider does not check revocation; it exposes ``revoke_at``.
    """
    version = _tf_channel_version(api, bucket, channel)
    assert ULID_RE.match(version["id"]), "the provider types version ids as ULIDs"
    return {
        "organization_id": api.tenant.organization_id,
        "project_id": api.tenant.project_id,
        "bucket_name": version["bucket_name"],
        "channel_name": channel,
        "fingerprint": version["fingerprint"],
        "id": version["id"],
        "name": version["name"],
        "author_id": version["author_id"],
        "created_at": version["created_at"],
        "updated_at": version["updated_at"],
        "revoke_at": version.get("revoke_at") or "",
    }


def tf_artifact(
    api: Api,
    bucket: str,
    *,
    platform: str,
    region: str,
    channel_name: str | None = None,
    version_fingerprint: str | None = None,
    component_type: str = "",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``data "hcp_packer_artifact"`` (v0.113+ label matching included)."""
    if bool(channel_name) == bool(version_fingerprint):
        raise ConsumerError("Exactly one of channel_name or version_fingerprint must be set")
    if labels and not channel_name:
        raise ConsumerError("When `labels` is set, `channel_name` must also be set.")
    if version_fingerprint:
        body = _decode(
            api.get(f"/buckets/{bucket}/versions/{version_fingerprint}"), "GetVersion", "version"
        )
        version = body.get("version")
        if version is None or not version.get("fingerprint"):
            raise ConsumerError("received an invalid Version response from the HCP Packer API")
    else:
        assert channel_name is not None
        version = _tf_channel_version(api, bucket, channel_name)

    build: dict[str, Any] | None = None
    artifact: dict[str, Any] | None = None
    for b in version.get("builds") or []:
        if b["platform"] != platform:
            continue
        arts = b.get("artifacts") or []
        if labels:
            if any((b.get("labels") or {}).get(k) != v for k, v in labels.items()):
                continue
            chosen = next((a for a in arts if a["region"] == region), arts[0] if arts else None)
        else:
            if component_type and b["component_type"] != component_type:
                continue
            chosen = next((a for a in arts if a["region"] == region), None)
        if chosen is not None:
            build, artifact = b, chosen
            break
    if build is None or artifact is None:
        raise ConsumerError(
            f'Could not find an Artifact with attributes (region: "{region}" cloud: '
            f'"{platform}", version_fingerprint: "{version_fingerprint or ""}", '
            f'component_type: "{component_type}").'
        )
    assert ULID_RE.match(artifact["id"]), "artifact ids are typed as ULIDs"
    assert ULID_RE.match(build["id"]), "build ids are typed as ULIDs"
    run_uuid = build["packer_run_uuid"]
    assert run_uuid == "" or UUID_RE.match(run_uuid), "packer_run_uuid is typed as a UUID"
    return {
        "bucket_name": version["bucket_name"],
        "version_fingerprint": version["fingerprint"],
        "revoke_at": version.get("revoke_at") or None,
        "platform": build["platform"],
        "component_type": build["component_type"],
        "build_id": build["id"],
        "packer_run_uuid": run_uuid,
        "labels": dict(build.get("labels") or {}),
        "region": artifact["region"],
        "id": artifact["id"],
        "external_identifier": artifact["external_identifier"],
        "created_at": artifact["created_at"],
    }


def tf_bucket_names(api: Api, *, page_size: int | None = None) -> set[str]:
    """``data "hcp_packer_bucket_names"``: the provider's ListBuckets loop.

    The provider sends ``sorting.order_by=name`` and no page size; ``page_size``
    only lets a test force several pages. Fails if the token never empties.
    """
    names: list[str] = []
    token = ""
    for _ in range(_MAX_LIST_PAGES):
        params: dict[str, Any] = {"sorting.order_by": "name"}
        if token:
            params["pagination.next_page_token"] = token
        if page_size is not None:
            params["pagination.page_size"] = str(page_size)
        body = _decode(api.get("/buckets", params=params), "ListBuckets", "buckets")
        page_names = [b["name"] for b in body.get("buckets") or []]
        assert page_names == sorted(page_names), "each page comes sorted by name"
        if names and page_names:
            assert names[-1] < page_names[0], "pages continue the name order"
        names.extend(page_names)
        pagination = body.get("pagination")
        token = (pagination or {}).get("next_page_token") or ""
        if not token:
            assert len(names) == len(set(names)), "no bucket is listed twice"
            return set(names)
    raise AssertionError("ListBuckets never returned an empty next_page_token")


__all__ = [
    "ULID_RE",
    "ConsumerError",
    "packer_artifact",
    "packer_parent_ids",
    "packer_version",
    "tf_artifact",
    "tf_bucket_names",
    "tf_version",
]

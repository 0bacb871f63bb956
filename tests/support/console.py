"""A registry as people meet it in the console: a base image with two versions, an app built
on it (now on an outdated parent), a grandchild, a restricted channel, a revoked version with
its message, a scheduled revocation, labels, Packer metadata and an SBOM."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import zstandard

from packyard.domain.enums import Role
from tests.support.factories import Api, Identity, TenantFixture
from tests.support.wire import fetch_token

PACKER_METADATA = {
    "packer": {
        "version": "1.16.0",
        "plugins": [{"name": "amazon", "version": "1.3.4"}, {"name": "azure", "version": "2.1.0"}],
    },
    "vcs": {"type": "git", "ref": "main", "commit": "3f2c1e9"},
    "cicd": {"type": "github-actions", "run": "https://ci.example.com/runs/42"},
}


@dataclass
class Seeded:
    base_url: str
    data_dir: Path
    users: dict[str, tuple[str, str]]
    organization_id: str
    project_id: str
    api: Api
    names: dict[str, Any] = field(default_factory=dict)

    def url(self, *parts: str) -> str:
        return f"{self.base_url}/p/{self.project_id}" + "".join(f"/{p}" for p in parts)


def admin_api(base_url: str, data_dir: Path) -> Api:
    creds = json.loads((data_dir / "credentials.json").read_text())
    with httpx.Client(base_url=base_url, verify=False) as http:
        token = fetch_token(http, creds["oauth"]["client_id"], creds["oauth"]["client_secret"])
    identity = Identity(
        client_id=creds["oauth"]["client_id"],
        client_secret=creds["oauth"]["client_secret"],
        principal_id="",
        name="admin",
        role=Role.ADMIN,
        token=token,
    )
    tenant = TenantFixture(creds["organization_id"], creds["project_id"], {Role.ADMIN: identity})
    return Api(base_url, tenant)


def _push(
    api: Api,
    bucket: str,
    fingerprint: str,
    *,
    parent: tuple[str, str] | None = None,
    sbom: bool = False,
) -> dict[str, Any]:
    """A two-build version as Packer pushes it; ``parent`` is (version id, channel id)."""
    api.create_version(bucket, fingerprint)
    images: dict[str, str] = {}
    sources = (
        ("amazon-ebs.ubuntu", "aws", ("us-east-1", "eu-west-1")),
        ("azure-arm.ubuntu", "azure", ("westeurope",)),
    )
    builds = [api.create_build(bucket, fingerprint, component) for component, _, _ in sources]
    for build, (_, platform, regions) in zip(builds, sources, strict=True):
        api.ok(api.update_build(bucket, fingerprint, build["id"], status="BUILD_RUNNING"))
        if sbom and platform == "aws":
            document = {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []}
            compressed = zstandard.ZstdCompressor().compress(orjson.dumps(document))
            api.ok(
                api.put(
                    f"/buckets/{bucket}/versions/{fingerprint}/builds/{build['id']}/sboms",
                    {
                        "compressed_sbom": base64.b64encode(compressed).decode(),
                        "format": "CYCLONEDX",
                        "name": "os-packages",
                    },
                )
            )
        artifacts = []
        for region in regions:
            image = (
                f"ami-{fingerprint[-6:]}{region[:2]}"
                if platform == "aws"
                else (f"/subscriptions/0000/images/{bucket}-{fingerprint[-6:]}")
            )
            images[f"{platform}:{region}"] = image
            artifacts.append({"external_identifier": image, "region": region})
        extra: dict[str, Any] = {}
        if parent is not None:
            extra = {"parent_version_id": parent[0], "parent_channel_id": parent[1]}
        api.ok(
            api.update_build(
                bucket,
                fingerprint,
                build["id"],
                status="BUILD_DONE",
                platform=platform,
                artifacts=artifacts,
                labels={"os": "ubuntu-24.04"},
                metadata=PACKER_METADATA,
                **extra,
            )
        )
    version = api.ok(api.get(f"/buckets/{bucket}/versions/{fingerprint}"))["version"]
    version["images"] = images
    return version


def _channel(api: Api, bucket: str, name: str, fingerprint: str, **extra: Any) -> dict[str, Any]:
    return api.ok(
        api.post(
            f"/buckets/{bucket}/channels",
            {"name": name, "version_fingerprint": fingerprint, **extra},
        )
    )["channel"]


def seed_registry(base_url: str, data_dir: Path, users: dict[str, tuple[str, str]]) -> Seeded:
    api = admin_api(base_url, data_dir)
    api.create_bucket(
        "ubuntu-base",
        description="Hardened Ubuntu 24.04 base image for every service.",
        labels={"os": "ubuntu", "team": "platform"},
    )
    base_v1 = _push(api, "ubuntu-base", "base-fp-000001", sbom=True)
    staging = _channel(api, "ubuntu-base", "staging", "base-fp-000001")
    _channel(api, "ubuntu-base", "production", "base-fp-000001")
    api.create_bucket("app-server", description="The API servers.", labels={"team": "apps"})
    app_v1 = _push(api, "app-server", "app-fp-000001", parent=(base_v1["id"], staging["id"]))
    _channel(api, "app-server", "production", "app-fp-000001")
    app_prod = api.ok(api.get("/buckets/app-server/channels/production"))["channel"]
    api.create_bucket("app-worker", description="Queue workers built on the API servers.")
    _push(api, "app-worker", "worker-fp-000001", parent=(app_v1["id"], app_prod["id"]))
    # the base moves on: staging now serves v2, so app-server v1's parent is out of date
    base_v2 = _push(api, "ubuntu-base", "base-fp-000002")
    api.ok(
        api.patch(
            "/buckets/ubuntu-base/channels/staging",
            {"version_fingerprint": "base-fp-000002", "update_mask": "versionFingerprint"},
        )
    )
    _channel(api, "ubuntu-base", "canary", "base-fp-000002", restricted=True)
    api.create_bucket("legacy-images", description="Images nobody should use any more.")
    _push(api, "legacy-images", "legacy-fp-000001")
    _push(api, "legacy-images", "legacy-fp-000002")
    api.ok(
        api.patch(
            "/buckets/legacy-images/versions/legacy-fp-000001",
            {"revoke_at": "2020-01-01T00:00:00Z", "revocation_message": "CVE-2026-1234 in openssl"},
        )
    )
    api.ok(
        api.patch(
            "/buckets/legacy-images/versions/legacy-fp-000002",
            {"revoke_at": "2099-01-01T00:00:00Z", "revocation_message": "End of support"},
        )
    )
    tenant = api.tenant
    return Seeded(
        base_url=base_url,
        data_dir=data_dir,
        users=users,
        organization_id=tenant.organization_id,
        project_id=tenant.project_id,
        api=api,
        names={
            "base_v1": base_v1,
            "base_v2": base_v2,
            "app_v1": app_v1,
            "base_image": base_v1["images"]["aws:us-east-1"],
        },
    )

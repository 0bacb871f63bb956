"""Packyard's revocation preview route: what a revocation would change, changing nothing."""

from __future__ import annotations

from typing import Any

from packyard.client import PackerClient
from packyard.domain.enums import Role
from tests.support.factories import Api, TenantFixture
from tests.support.hcp_env import push, push_built_from, sdk_client


def _preview_path(
    tenant: TenantFixture, bucket: str, fingerprint: str, of: str = "revocation"
) -> str:
    return (
        f"/packyard/2026-12-01/organizations/{tenant.organization_id}/projects/"
        f"{tenant.project_id}/buckets/{bucket}/versions/{fingerprint}/{of}-preview"
    )


def _seed(hcp: PackerClient) -> None:
    hcp.create_bucket("parent")
    push(hcp, "parent", "fp-p1", {"us-east-1": "ami-p1"})
    push(hcp, "parent", "fp-p2", {"us-east-1": "ami-p2"})
    hcp.create_channel("parent", "prod", fingerprint="fp-p1")
    prod = hcp.assign_channel("parent", "prod", "fp-p2")
    hcp.create_bucket("child")
    push_built_from(hcp, prod, "child", "fp-c1", {"us-east-1": "ami-c1"})


def test_preview_lists_descendants_and_channels_and_changes_nothing(
    api: Api, base_url: str, tenant: TenantFixture
) -> None:
    with sdk_client(base_url, tenant) as hcp:
        _seed(hcp)
        path = _preview_path(tenant, "parent", "fp-p2")
        answer = api.get(path, params={"revoke_in": "0s"})
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        assert body["version"]["version_fingerprint"] == "fp-p2" and body["immediate"] is True
        assert [
            (d["bucket_name"], d["version_fingerprint"], d["revoked"]) for d in body["descendants"]
        ] == [("child", "fp-c1", True)]
        assert (body["descendants_revoked"], body["descendants_untouched"]) == (1, 0)
        moves = {
            (c["bucket_name"], c["channel_name"]): (
                c["from_version"]["version_fingerprint"],
                c["to_version"] and c["to_version"]["version_fingerprint"],
            )
            for c in body["channels"]
        }
        assert moves == {
            ("parent", "latest"): ("fp-p2", "fp-p1"),
            ("parent", "prod"): ("fp-p2", "fp-p1"),
            ("child", "latest"): ("fp-c1", None),
        }
        assert hcp.get_version("parent", "fp-p2").status == "VERSION_ACTIVE"  # unchanged
        channel = hcp.get_channel("parent", "prod").version
        assert channel is not None and channel.fingerprint == "fp-p2"

        skipped = hcp.preview_revocation(
            "parent", "fp-p2", skip_descendants=True, disable_rollback_channels=True
        )
        assert skipped.descendants_revoked == 0 and skipped.channels == []
        later = hcp.preview_revocation("parent", "fp-p2", revoke_in="30d")
        assert later.immediate is False and later.revoke_at is not None


def test_preview_refuses_like_the_revocation(
    api: Api, base_url: str, tenant: TenantFixture
) -> None:
    with sdk_client(base_url, tenant) as hcp:
        _seed(hcp)
    path = _preview_path(tenant, "parent", "fp-p2")
    bad = api.get(path, params={"revoke_in": "2"})
    assert (bad.status_code, bad.json()["code"]) == (400, 3)
    both = api.get(path, params={"revoke_in": "1d", "revoke_at": "2031-01-01T00:00:00Z"})
    assert both.json()["code"] == 3
    viewer = api.as_role(Role.VIEWER).get(path, params={"revoke_in": "0s"})
    assert (viewer.status_code, viewer.json()["code"]) == (403, 7)
    missing = api.get(_preview_path(tenant, "parent", "fp-nope"), params={"revoke_in": "0s"})
    assert missing.json()["code"] == 10  # as UpdateVersion answers for a missing version
    assert (
        api.get(_preview_path(tenant, "nope", "fp-p2"), params={"revoke_in": "0s"}).json()["code"]
        == 5
    )


def test_restore_preview_lists_the_inherited_copies_and_changes_nothing(
    api: Api, base_url: str, tenant: TenantFixture
) -> None:
    with sdk_client(base_url, tenant) as hcp:
        _seed(hcp)
        path = _preview_path(tenant, "parent", "fp-p2", of="restore")
        assert api.get(path).json()["code"] == 9  # not revoked: as the restore refuses
        hcp.revoke_version("parent", "fp-p2")
        body: dict[str, Any] = api.get(path).json()
        assert body["version"]["version_fingerprint"] == "fp-p2"
        assert [(d["bucket_name"], d["version_fingerprint"]) for d in body["descendants"]] == [
            ("child", "fp-c1")
        ]
        assert body["descendants_restored"] == 1
        assert hcp.get_version("child", "fp-c1").status == "VERSION_REVOKED"  # unchanged
        inherited = api.get(_preview_path(tenant, "child", "fp-c1", of="restore")).json()
        assert inherited["code"] == 9  # an inherited revocation is restored at its origin
        viewer = api.as_role(Role.VIEWER).get(path)
        assert (viewer.status_code, viewer.json()["code"]) == (403, 7)
        assert hcp.preview_restore("parent", "fp-p2").descendants_restored == 1

"""Stock Packer (≥ 1.11.1) pushing as a principal whose only write right is ``contributor``
on one bucket: its project role is ``viewer``, or it has none at all (replayed traffic, as in
tests/api/test_packer_push.py)."""

from __future__ import annotations

import pytest

from packyard.domain.enums import Role
from packyard.services.container import Services
from tests.support.factories import Api, Identity, TenantFixture, assert_status, make_member
from tests.support.packer_replay import GIT_SHA, PackerRun
from tests.support.wire import ok

DESCRIPTION = "Network base image"
LABELS = {"team": "network"}


@pytest.fixture
def world(api: Api) -> str:
    """network-base (the team's bucket, with a `release` channel), app (someone else's) and a
    parent bucket the team builds from; returns the parent's version id."""
    api.create_bucket("network-base")
    api.create_bucket("app")
    api.create_bucket("parent")
    parent = api.complete_version(
        "parent", "parent-fp", components=("file.p",), platform="packer.file", regions=(".",)
    )
    for bucket, fingerprint in (("parent", "parent-fp"), ("network-base", None)):
        body = (
            {"name": "release", "version_fingerprint": fingerprint}
            if fingerprint
            else {"name": "release"}
        )
        ok(api.post(f"/buckets/{bucket}/channels", body), "PackerService_CreateChannel")
    return str(parent["id"])


def packer(base_url: str, tenant: TenantFixture, who: Identity, bucket: str, fp: str) -> PackerRun:
    return PackerRun(
        base_url,
        who.client_id,
        who.client_secret,
        tenant.organization_id,
        tenant.project_id,
        bucket,
        fp,
    )


@pytest.mark.parametrize(
    "project_role", [Role.VIEWER, None], ids=["project-viewer", "no-project-role"]
)
def test_a_bucket_contributor_pushes_to_its_bucket(
    base_url: str,
    services: Services,
    tenant: TenantFixture,
    world: str,
    project_role: Role | None,
) -> None:
    grants = {"network-base": Role.CONTRIBUTOR, "parent": Role.VIEWER}
    who = make_member(services, tenant, project_role=project_role, buckets=grants)
    run = packer(base_url, tenant, who, "network-base", "fp-1")
    try:
        channel = ok(run.get_channel("parent", "release"), "PackerService_GetChannel")["channel"]
        assert channel["version"]["id"] == world  # the hcp-packer-artifact data source
        ok(run.get_bucket(), "PackerService_GetBucket")
        run.update_bucket(DESCRIPTION, LABELS)  # Packer 1.11.1-1.15.2 send it on every build
        assert_status(run.get_version(), 409, 10)
        run.create_version()
        assert run.list_builds()["builds"] == []
        build = ok(run.create_build("file.net"), "PackerService_CreateBuild")["build"]
        # A bucket grant is enough to read what Packer injects (none is linked here).
        blocks = ok(run.enforced_blocks(), "PackerService_GetEnforcedBlocksByBucket")
        assert blocks == {"enforced_block_detail": []}
        run.set_status(build["id"], "BUILD_RUNNING")
        done = run.done(
            build["id"],
            artifacts=[{"external_identifier": "net.img", "region": "."}],
            platform="packer.file",
            labels={"git_sha": GIT_SHA},
            parent_version_id=world,
            parent_channel_id=channel["id"],
        )
        assert ok(done, "PackerService_UpdateBuild")["build"]["status"] == "BUILD_DONE"
        assigned = ok(run.assign_channel("release"), "PackerService_UpdateChannel")["channel"]
        assert assigned["version"]["fingerprint"] == "fp-1"
        version = ok(run.get_version(), "PackerService_GetVersion")["version"]
        assert (version["status"], version["name"]) == ("VERSION_ACTIVE", "v1")
    finally:
        run.close()


@pytest.mark.parametrize(
    ("project_role", "get_bucket", "then"),
    [
        (Role.VIEWER, 200, "update"),  # sees the bucket, may not change it
        (None, 404, "create"),  # does not see it; creating buckets needs a project role
    ],
    ids=["project-viewer", "no-project-role"],
)
def test_the_same_principal_cannot_push_anywhere_else(
    base_url: str,
    services: Services,
    tenant: TenantFixture,
    world: str,
    project_role: Role | None,
    get_bucket: int,
    then: str,
) -> None:
    who = make_member(
        services, tenant, project_role=project_role, buckets={"network-base": Role.CONTRIBUTOR}
    )
    for bucket in ("app", "brand-new"):
        run = packer(base_url, tenant, who, bucket, "fp-x")
        try:
            status = run.get_bucket().status_code
            if bucket == "brand-new" or then == "create":
                assert status == 404
                response = run._send(
                    "PUT",
                    f"{run.prefix}/buckets",
                    {"name": bucket, "description": "", "labels": {}},
                )
            else:
                assert status == get_bucket
                response = run._send(
                    "PATCH",
                    f"{run.prefix}/buckets/{bucket}",
                    {"description": "x", "labels": {}, "platforms": None},
                )
            assert_status(response, 403, 7)  # Packer: "failed to initialize bucket"
            response = run._send(
                "POST",
                f"{run.prefix}/buckets/{bucket}/versions",
                {"fingerprint": "fp-x", "template_type": "HCL2"},
            )
            assert response.status_code in (403, 404)
        finally:
            run.close()
    # nothing was written anywhere
    assert [
        b["name"]
        for b in Api(base_url, tenant).ok(Api(base_url, tenant).get("/buckets"))["buckets"]
    ] == sorted(["app", "network-base", "parent"])


def test_discovery_without_pinned_ids_finds_the_org_project_and_registry(
    api: Api, services: Services, tenant: TenantFixture, world: str
) -> None:
    """With only HCP_PROJECT_ID (or nothing) set, Packer lists organizations (exactly one),
    then projects or GetRegistry: a bucket-only principal must get through them."""
    who = api.as_identity(
        make_member(services, tenant, project_role=None, buckets={"network-base": Role.CONTRIBUTOR})
    )
    try:
        orgs = who.ok(who.get("/resource-manager/2019-12-10/organizations"))
        assert [o["id"] for o in orgs["organizations"]] == [tenant.organization_id]
        projects = who.ok(
            who.get(
                "/resource-manager/2019-12-10/projects",
                params={"scope.type": "ORGANIZATION", "scope.id": tenant.organization_id},
            )
        )
        assert [p["id"] for p in projects["projects"]] == [tenant.project_id]
        who.ok(who.get(f"/resource-manager/2019-12-10/projects/{tenant.project_id}"))
        assert ok(who.get("/registry"), "PackerService_GetRegistry")["registry"] is not None
    finally:
        who.close()


def test_a_parent_in_a_bucket_the_pusher_cannot_see_is_unknown(
    base_url: str, services: Services, tenant: TenantFixture, world: str
) -> None:
    """Without a grant on the parent bucket its version ids are as unknown as another
    tenant's: the build is refused (400/3) and no edge is recorded."""
    who = make_member(
        services, tenant, project_role=None, buckets={"network-base": Role.CONTRIBUTOR}
    )
    run = packer(base_url, tenant, who, "network-base", "fp-orphan")
    try:
        run.create_version()
        build = ok(run.create_build("file.net"), "PackerService_CreateBuild")["build"]
        run.set_status(build["id"], "BUILD_RUNNING")
        response = run.done(
            build["id"],
            artifacts=[{"external_identifier": "net.img", "region": "."}],
            platform="packer.file",
            labels={},
            parent_version_id=world,
        )
        error = assert_status(response, 400, 3)
        assert error["details"][0]["field_violations"][0]["field"] == "parent_version_id"
        assert ok(run.get_version(), "PackerService_GetVersion")["version"]["parents"] is None
    finally:
        run.close()

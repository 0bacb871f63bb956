"""Replay of stock Packer's push traffic (packer-client §3 and §6), every body checked."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from packyard.domain.enums import Role
from tests.support.factories import Api, TenantFixture, assert_status
from tests.support.packer_replay import GIT_SHA, PackerRun, done_metadata
from tests.support.wire import ok

DESCRIPTION = "Base image"
BUCKET_LABELS = {"team": "platform"}
BUILD_LABELS = {"git_sha": GIT_SHA, "os": "ubuntu"}


def _packer(base_url: str, tenant: TenantFixture, fingerprint: str) -> PackerRun:
    ident = tenant.identities[Role.CONTRIBUTOR]
    return PackerRun(
        base_url,
        ident.client_id,
        ident.client_secret,
        tenant.organization_id,
        tenant.project_id,
        "golden",
        fingerprint,
    )


def _parent(api: Api) -> tuple[str, str]:
    """A parent bucket built with the file builder, served on channel `release`."""
    api.create_bucket("parent")
    version = api.complete_version(
        "parent", "parent-fp", components=("file.p",), platform="packer.file", regions=(".",)
    )
    ok(
        api.post(
            "/buckets/parent/channels", {"name": "release", "version_fingerprint": "parent-fp"}
        ),
        "PackerService_CreateChannel",
    )
    return version["id"], version["fingerprint"]


def _builds_by_component(listing: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["component_type"]: b for b in listing["builds"]}


def test_packer_push_fail_resume_and_refuse(base_url: str, api: Api, tenant: TenantFixture) -> None:
    parent_version_id, _ = _parent(api)
    fp = "01J9ZQ7X3M5V6K8T2N4R0A1B2C"

    # ---- run 1: fresh bucket, two sources, one fails --------------------------------------
    run = _packer(base_url, tenant, fp)
    # data source (hcp-packer-artifact on channel `release`) runs before any registry call
    channel = ok(run.get_channel("parent", "release"), "PackerService_GetChannel")["channel"]
    assert channel["version"]["id"] == parent_version_id
    parent_build = channel["version"]["builds"][0]
    assert parent_build["version_id"] == parent_version_id
    parent_channel_id = channel["id"]

    assert_status(run.get_bucket(), 404, 5)
    created = run.create_bucket(DESCRIPTION, BUCKET_LABELS)["bucket"]
    assert created["location"] == {
        "organization_id": tenant.organization_id,
        "project_id": tenant.project_id,
        "region": None,
    }
    assert created["resource_name"] == f"packer/project/{tenant.project_id}/bucket/golden"

    assert_status(run.get_version(), 409, 10)
    version = run.create_version()["version"]
    assert version["name"] == "v0"
    assert version["template_type"] == "HCL2"
    assert version["builds"] == []
    assert version["status"]

    assert ok(run.get_version(), "PackerService_GetVersion")["version"]["name"] == "v0"
    assert run.list_builds()["builds"] == []

    # parallel CreateBuild, with a racing duplicate of null.a (another Packer on this fingerprint)
    with ThreadPoolExecutor(max_workers=3) as pool:
        responses = list(pool.map(run.create_build, ["null.a", "file.b", "null.a"]))
    oks = [ok(r, "PackerService_CreateBuild")["build"] for r in responses if r.status_code == 200]
    errors = [r for r in responses if r.status_code != 200]
    assert sorted(b["component_type"] for b in oks) == ["file.b", "null.a"]
    assert len(errors) == 1
    assert_status(errors[0], 409, 6)
    for b in oks:
        assert b["status"] == "BUILD_UNSET"
        assert b["packer_run_uuid"] == run.run_uuid
        assert b["artifacts"] == []
        assert b["id"]
    ids = {b["component_type"]: b["id"] for b in oks}

    # Nothing linked: the list Packer injects is empty.
    assert ok(run.enforced_blocks(), "PackerService_GetEnforcedBlocksByBucket") == {
        "enforced_block_detail": []
    }

    for build_id in ids.values():
        running = run.set_status(build_id, "BUILD_RUNNING")["build"]
        assert running["status"] == "BUILD_RUNNING"
        heartbeat = run.set_status(build_id, "BUILD_RUNNING")["build"]  # idempotent heartbeat
        assert heartbeat["status"] == "BUILD_RUNNING"
        assert heartbeat["artifacts"] == []
        assert heartbeat["packer_run_uuid"] == run.run_uuid

    # file.b finishes with the exact §6.2 DONE body (parent matched through the data source)
    done = ok(
        run.done(
            ids["file.b"],
            artifacts=[{"external_identifier": "b.img", "region": "out"}],
            platform="packer.file",
            labels=BUILD_LABELS,
            source_external_identifier="parent.img",
            parent_version_id=parent_version_id,
            parent_channel_id=parent_channel_id,
        ),
        "PackerService_UpdateBuild",
    )["build"]
    assert done["status"] == "BUILD_DONE"
    assert done["labels"] == BUILD_LABELS
    assert done["metadata"] == done_metadata()
    assert done["source_external_identifier"] == "parent.img"
    assert [(a["external_identifier"], a["region"]) for a in done["artifacts"]] == [
        ("b.img", "out")
    ]
    # the channel listed in the template does not exist yet: Packer only logs this
    assert_status(run.assign_channel("dev"), 404, 5)
    assert ok(run.get_version(), "PackerService_GetVersion")["version"]["name"] == "v0"

    failed = run.set_status(ids["null.a"], "BUILD_FAILED")["build"]
    assert failed["status"] == "BUILD_FAILED"
    after_run1 = ok(run.get_version(), "PackerService_GetVersion")["version"]
    assert after_run1["name"] == "v0"
    assert after_run1["status"] == "VERSION_FAILED"
    run.close()

    # a person creates the channel the template names before re-running
    ok(api.post("/buckets/golden/channels", {"name": "dev"}), "PackerService_CreateChannel")

    # ---- run 2: same fingerprint resumes; only the failed build reruns ----------------------
    run2 = _packer(base_url, tenant, fp)
    bucket = ok(run2.get_bucket(), "PackerService_GetBucket")["bucket"]
    assert bucket["description"] == DESCRIPTION
    assert bucket["labels"] == BUCKET_LABELS  # equal: Packer sends no UpdateBucket
    version = ok(run2.get_version(), "PackerService_GetVersion")["version"]
    assert version["name"] == "v0"
    assert version["template_type"] == "HCL2"
    existing = _builds_by_component(run2.list_builds())
    assert set(existing) == {"null.a", "file.b"}
    assert existing["file.b"]["status"] == "BUILD_DONE"
    assert existing["file.b"]["artifacts"]
    todo = [b for b in existing.values() if b["status"] != "BUILD_DONE" and not b["artifacts"]]
    assert [b["component_type"] for b in todo] == ["null.a"]
    assert ok(run2.enforced_blocks(), "PackerService_GetEnforcedBlocksByBucket") == {
        "enforced_block_detail": []
    }

    build_id = todo[0]["id"]
    running = run2.set_status(build_id, "BUILD_RUNNING")["build"]
    assert running["packer_run_uuid"] == run2.run_uuid
    run2.set_status(build_id, "BUILD_RUNNING")
    final = ok(
        run2.done(
            build_id,
            artifacts=[{"external_identifier": "Null", "region": "null"}],
            platform="null",
            labels=BUILD_LABELS,
            source_external_identifier="null",
        ),
        "PackerService_UpdateBuild",
    )["build"]
    assert final["status"] == "BUILD_DONE"
    assigned = ok(run2.assign_channel("dev"), "PackerService_UpdateChannel")["channel"]
    assert assigned["version"]["fingerprint"] == fp
    assert assigned["version"]["name"] == "v1"

    complete = ok(run2.get_version(), "PackerService_GetVersion")["version"]
    assert complete["name"] == "v1"
    assert complete["status"] == "VERSION_ACTIVE"
    assert complete["parents"]["status"] == "UP_TO_DATE"
    by_component = {b["component_type"]: b for b in complete["builds"]}
    assert by_component["null.a"]["packer_run_uuid"] == run2.run_uuid
    assert by_component["file.b"]["metadata"] == done_metadata()
    bucket = ok(run2.get_bucket(), "PackerService_GetBucket")["bucket"]
    assert bucket["latest_version"]["id"] == complete["id"]
    assert bucket["platforms"] == ["null", "packer.file"]
    assert bucket["version_count"] == "1"
    latest = ok(run2.get_channel("golden", "latest"), "PackerService_GetChannel")["channel"]
    assert latest["managed"] is True
    assert latest["version"]["name"] == "v1"
    history = ok(
        api.get("/buckets/golden/channels/latest/history"),
        "PackerService_ListChannelAssignmentHistory",
    )
    assert history["count"] == 1
    assert history["history"][0]["author_id"] == "HCP Packer"
    run2.close()

    # ---- run 3: the fingerprint is complete; Packer refuses before any build ---------------
    run3 = _packer(base_url, tenant, fp)
    ok(run3.get_bucket(), "PackerService_GetBucket")
    again = ok(run3.get_version(), "PackerService_GetVersion")["version"]
    assert again["name"] != "v0"
    # and the server never reopens it, whatever a non-Packer client tries
    assert_status(run3.create_build("shell.c"), 400, 9)
    assert_status(
        run3.done(
            build_id,
            artifacts=[{"external_identifier": "x", "region": "y"}],
            platform="null",
            labels={},
        ),
        400,
        9,
    )
    assert ok(run3.get_version(), "PackerService_GetVersion")["version"]["name"] == "v1"
    run3.close()


def test_packer_updates_bucket_metadata_that_differs(
    base_url: str, api: Api, tenant: TenantFixture
) -> None:
    api.create_bucket("golden", description="old", labels={"team": "old", "extra": "x"})
    run = _packer(base_url, tenant, "fp-meta")
    bucket = ok(run.get_bucket(), "PackerService_GetBucket")["bucket"]
    assert bucket["labels"] != BUCKET_LABELS
    updated = run.update_bucket(DESCRIPTION, BUCKET_LABELS)["bucket"]
    assert updated["description"] == DESCRIPTION
    assert updated["labels"] == BUCKET_LABELS
    # a template with neither description nor labels sends only platforms: null
    cleared = ok(
        run.http.patch(f"{run.prefix}/buckets/golden", json={"platforms": None}),
        "PackerService_UpdateBucket",
    )["bucket"]
    assert cleared["description"] == ""
    assert cleared["labels"] == {}
    run.close()


def test_two_packer_runs_on_one_fingerprint_complete_once(
    base_url: str, api: Api, tenant: TenantFixture
) -> None:
    """Two Packer processes racing on one fingerprint: one version, one vN, one latest entry."""
    runs = [_packer(base_url, tenant, "race-fp") for _ in range(2)]
    assert_status(runs[0].get_bucket(), 404, 5)
    runs[0].create_bucket("", {})

    def setup(run: PackerRun) -> list[tuple[str, str]]:
        response = run.get_version()
        if response.status_code != 200:
            assert_status(response, 409, 10)
            created = run.http.post(
                f"{run.prefix}/buckets/golden/versions",
                json={"fingerprint": "race-fp", "template_type": "HCL2"},
            )
            if created.status_code != 200:
                assert_status(created, 409, 6)
        mine: list[tuple[str, str]] = []
        for component in ("null.a", "null.b"):
            response = run.create_build(component)
            if response.status_code == 200:
                mine.append((component, ok(response, "PackerService_CreateBuild")["build"]["id"]))
            else:
                assert_status(response, 409, 6)
        return mine

    with ThreadPoolExecutor(max_workers=2) as pool:
        claimed = list(pool.map(setup, runs))
    assert sorted(c for mine in claimed for c, _ in mine) == ["null.a", "null.b"]

    def finish(pair: tuple[PackerRun, list[tuple[str, str]]]) -> None:
        run, mine = pair
        for component, build_id in mine:
            run.set_status(build_id, "BUILD_RUNNING")
            ok(
                run.done(
                    build_id,
                    artifacts=[{"external_identifier": component, "region": "r"}],
                    platform="null",
                    labels={},
                ),
                "PackerService_UpdateBuild",
            )

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(finish, zip(runs, claimed, strict=True)))
    version = ok(runs[0].get_version(), "PackerService_GetVersion")["version"]
    assert version["name"] == "v1"
    history = ok(
        api.get("/buckets/golden/channels/latest/history"),
        "PackerService_ListChannelAssignmentHistory",
    )
    assert history["count"] == 1
    for run in runs:
        run.close()

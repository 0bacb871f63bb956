"""Registry, bucket, version and build operations: exact paths, shapes and semantics."""

from __future__ import annotations

from tests.support.factories import Api, assert_status
from tests.support.wire import ok


def test_registry_lifecycle(api: Api) -> None:
    got = ok(api.get("/registry"), "PackerService_GetRegistry")["registry"]
    assert got["location"]["organization_id"] == api.tenant.organization_id
    assert got["location"]["project_id"] == api.tenant.project_id
    assert got["config"]["activated"] is True
    assert got["config"]["feature_tier"] == "PLUS"

    updated = ok(
        api.patch("/registry", {"feature_tier": "STANDARD"}), "PackerService_UpdateRegistry"
    )
    assert updated["registry"]["config"]["feature_tier"] == "STANDARD"
    assert updated["operation"] is None
    # `activated` is applied only when the mask names it
    ignored = ok(api.patch("/registry", {"activated": False}), "PackerService_UpdateRegistry")
    assert ignored["registry"]["config"]["activated"] is True
    masked = ok(
        api.patch("/registry", {"activated": False, "update_mask": "config.activated"}),
        "PackerService_UpdateRegistry",
    )
    assert masked["registry"]["config"]["activated"] is False
    assert masked["registry"]["config"]["feature_tier"] == "STANDARD"
    ok(
        api.patch("/registry", {"activated": True, "update_mask": "config.activated"}),
        "PackerService_UpdateRegistry",
    )

    deleted = ok(api.delete("/registry"), "PackerService_DeleteRegistry")
    assert deleted["registry"]["config"]["activated"] is False
    assert (
        ok(api.get("/registry"), "PackerService_GetRegistry")["registry"]["config"]["activated"]
        is False
    )
    # creating the project's one registry again activates it
    created = ok(api.put("/registry", {"feature_tier": "PLUS"}), "PackerService_CreateRegistry")
    assert created["registry"]["id"] == got["id"]
    assert created["registry"]["config"]["activated"] is True
    assert created["registry"]["config"]["feature_tier"] == "PLUS"
    assert_status(api.put("/registry", {}), 409, 6)


def test_bucket_lifecycle(api: Api) -> None:
    listing = ok(api.get("/buckets"), "PackerService_ListBuckets")
    assert listing == {
        "buckets": [],
        "pagination": {"next_page_token": "", "previous_page_token": ""},
    }
    created = ok(
        api.put("/buckets", {"name": "golden", "description": "d", "labels": {"a": "1"}}),
        "PackerService_CreateBucket",
    )["bucket"]
    assert created["name"] == "golden"
    assert created["version_count"] == "0"
    assert created["platforms"] == []
    assert created["latest_version"] is None
    got = ok(api.get("/buckets/golden"), "PackerService_GetBucket")["bucket"]
    assert got["id"] == created["id"]
    assert got["labels"] == {"a": "1"}
    assert got["created_at"] == created["created_at"]

    updated = ok(
        api.patch(
            "/buckets/golden", {"description": "new", "labels": {"b": "2"}, "platforms": None}
        ),
        "PackerService_UpdateBucket",
    )["bucket"]
    assert updated["description"] == "new"
    assert updated["labels"] == {"b": "2"}
    assert updated["updated_at"] >= got["updated_at"]

    response = api.delete("/buckets/golden")
    assert response.status_code == 200
    assert response.json() == {}
    assert_status(api.get("/buckets/golden"), 404, 5)
    assert_status(api.delete("/buckets/golden"), 404, 5)


def test_managed_latest_channel_comes_with_each_bucket(api: Api) -> None:
    api.create_bucket("golden")
    latest = ok(api.get("/buckets/golden/channels/latest"), "PackerService_GetChannel")["channel"]
    assert latest["name"] == "latest"
    assert latest["managed"] is True
    assert latest["restricted"] is True
    assert latest["author_id"] == "HCP Packer"
    assert latest["version"] is None
    assert latest["bucket_name"] == "golden"


def test_delete_bucket_cascades(api: Api) -> None:
    api.create_bucket("golden")
    api.complete_version("golden", "f1")
    api.create_version("golden", "f2")
    api.create_build("golden", "f2", "null.a")
    api.delete("/buckets/golden")
    again = api.create_bucket("golden")
    assert again["version_count"] == "0"
    versions = ok(api.get("/buckets/golden/versions"), "PackerService_ListVersions")
    assert versions["versions"] == []
    latest = ok(api.get("/buckets/golden/channels/latest"), "PackerService_GetChannel")
    assert latest["channel"]["version"] is None
    history = ok(
        api.get("/buckets/golden/channels/latest/history"),
        "PackerService_ListChannelAssignmentHistory",
    )
    assert history["count"] == 0


def test_version_lifecycle(api: Api) -> None:
    api.create_bucket("golden")
    created = ok(
        api.post("/buckets/golden/versions", {"fingerprint": "f1", "template_type": "JSON"}),
        "PackerService_CreateVersion",
    )["version"]
    assert created["name"] == "v0"
    assert created["bucket_name"] == "golden"
    assert created["author_id"] == "admin-sp"
    assert created["template_type"] == "JSON"
    assert created["status"] == "VERSION_RUNNING"
    assert created["revoke_at"] is None
    assert (
        ok(api.get("/buckets/golden"), "PackerService_GetBucket")["bucket"]["version_count"] == "1"
    )
    got = ok(api.get("/buckets/golden/versions/f1"), "PackerService_GetVersion")["version"]
    assert got["id"] == created["id"]

    response = api.delete("/buckets/golden/versions/f1")
    assert response.status_code == 200
    assert response.json() == {}
    assert_status(api.get("/buckets/golden/versions/f1"), 409, 10)
    assert (
        ok(api.get("/buckets/golden"), "PackerService_GetBucket")["bucket"]["version_count"] == "0"
    )
    # the fingerprint can be used again after deletion
    api.create_version("golden", "f1")


def test_force_complete_with_update_version(api: Api) -> None:
    """UpdateVersion `complete`: finishes a version whose remaining builds never ran (-only)."""
    api.create_bucket("golden")
    api.create_version("golden", "f")
    ran = api.create_build("golden", "f", "null.a")
    api.create_build("golden", "f", "null.skipped")
    api.finish_build("golden", "f", ran["id"])
    assert (
        ok(api.get("/buckets/golden/versions/f"), "PackerService_GetVersion")["version"]["name"]
        == "v0"
    )
    forced = ok(
        api.patch("/buckets/golden/versions/f", {"complete": True}), "PackerService_UpdateVersion"
    )
    assert forced["version"]["name"] == "v1"
    assert forced["version"]["status"] == "VERSION_ACTIVE"
    assert forced["operation"] is None
    # completing again changes nothing
    again = ok(
        api.patch("/buckets/golden/versions/f", {"complete": True}), "PackerService_UpdateVersion"
    )
    assert again["version"]["name"] == "v1"
    bucket = ok(api.get("/buckets/golden"), "PackerService_GetBucket")["bucket"]
    assert bucket["latest_version"]["name"] == "v1"


def test_build_lifecycle(api: Api) -> None:
    api.create_bucket("golden")
    version = api.create_version("golden", "f")
    created = ok(
        api.post(
            "/buckets/golden/versions/f/builds",
            {
                "component_type": "amazon-ebs.ubuntu",
                "packer_run_uuid": "run-1",
                "platform": "aws",
                "status": "BUILD_RUNNING",
                "labels": {"os": "ubuntu"},
                "artifacts": None,
            },
        ),
        "PackerService_CreateBuild",
    )["build"]
    assert created["version_id"] == version["id"]
    assert created["status"] == "BUILD_RUNNING"
    assert created["platform"] == "aws"
    assert created["labels"] == {"os": "ubuntu"}
    assert created["packer_run_uuid"] == "run-1"
    assert created["metadata"] is None

    path = f"/buckets/golden/versions/f/builds/{created['id']}"
    got = ok(api.get(path), "PackerService_GetBuild")["build"]
    assert got == created
    listing = ok(api.get("/buckets/golden/versions/f/builds"), "PackerService_ListBuilds")
    assert [b["id"] for b in listing["builds"]] == [created["id"]]
    assert listing["location"]["project_id"] == api.tenant.project_id

    response = api.delete(path)
    assert response.status_code == 200
    assert response.json() == {}
    assert_status(api.get(path), 404, 5)
    after = ok(api.get("/buckets/golden/versions/f"), "PackerService_GetVersion")["version"]
    assert after["builds"] == []
    assert after["name"] == "v0"


def test_done_at_create_completes_single_build_version(api: Api) -> None:
    api.create_bucket("golden")
    api.create_version("golden", "f")
    build = ok(
        api.post(
            "/buckets/golden/versions/f/builds",
            {
                "component_type": "null.a",
                "status": "BUILD_DONE",
                "platform": "null",
                "artifacts": [{"external_identifier": "Null", "region": "null"}],
                "metadata": {},
            },
        ),
        "PackerService_CreateBuild",
    )["build"]
    assert build["status"] == "BUILD_DONE"
    version = ok(api.get("/buckets/golden/versions/f"), "PackerService_GetVersion")["version"]
    assert version["name"] == "v1"


def test_completion_updates_bucket_and_latest(api: Api) -> None:
    api.create_bucket("golden")
    v1 = api.complete_version("golden", "f1", components=("a.x", "b.y"), platform="aws")
    assert v1["name"] == "v1"
    v2 = api.complete_version("golden", "f2", components=("a.x",), platform="gcp")
    assert v2["name"] == "v2"
    completed = ok(api.get("/buckets/golden"), "PackerService_GetBucket")["bucket"]
    api.create_version("golden", "f3")  # incomplete versions never take a number
    bucket = ok(api.get("/buckets/golden"), "PackerService_GetBucket")["bucket"]
    assert bucket["latest_version"]["fingerprint"] == "f2"
    assert bucket["latest_version"]["builds"][0]["artifacts"]
    assert bucket["platforms"] == ["gcp"]
    assert bucket["version_count"] == "3"
    latest = ok(api.get("/buckets/golden/channels/latest"), "PackerService_GetChannel")["channel"]
    assert latest["version"]["id"] == v2["id"]
    history = ok(
        api.get("/buckets/golden/channels/latest/history"),
        "PackerService_ListChannelAssignmentHistory",
    )
    assert history["count"] == 2
    assert [h["version"]["id"] for h in history["history"]] == [v2["id"], v1["id"]]
    assert {h["author_id"] for h in history["history"]} == {"HCP Packer"}
    # the renamed version, latest and the bucket share one completion instant
    assert latest["updated_at"] == v2["updated_at"] == completed["updated_at"]


def test_deleting_latest_version_rolls_latest_back(api: Api) -> None:
    api.create_bucket("golden")
    v1 = api.complete_version("golden", "f1")
    api.complete_version("golden", "f2")
    api.delete("/buckets/golden/versions/f2")
    bucket = ok(api.get("/buckets/golden"), "PackerService_GetBucket")["bucket"]
    assert bucket["latest_version"]["id"] == v1["id"]
    # the next completion takes max(surviving) + 1
    assert api.complete_version("golden", "f3")["name"] == "v2"
    api.delete("/buckets/golden/versions/f3")
    api.delete("/buckets/golden/versions/f1")
    bucket = ok(api.get("/buckets/golden"), "PackerService_GetBucket")["bucket"]
    assert bucket["latest_version"] is None
    assert bucket["platforms"] == []


def test_cancel_twice_then_resume(api: Api) -> None:
    """Packer may send BUILD_CANCELLED twice; a later run resumes the same build."""
    api.create_bucket("golden")
    api.create_version("golden", "f")
    build = api.create_build("golden", "f", "null.a", packer_run_uuid="run-1")
    path = f"/buckets/golden/versions/f/builds/{build['id']}"
    ok(api.patch(path, {"status": "BUILD_RUNNING", "artifacts": None}), "PackerService_UpdateBuild")
    for _ in range(2):
        body = {"status": "BUILD_CANCELLED", "artifacts": None, "packer_run_uuid": "run-1"}
        cancelled = ok(api.patch(path, body), "PackerService_UpdateBuild")["build"]
        assert cancelled["status"] == "BUILD_CANCELLED"
    version = ok(api.get("/buckets/golden/versions/f"), "PackerService_GetVersion")["version"]
    assert version["status"] == "VERSION_CANCELLED"
    assert version["name"] == "v0"
    resumed = ok(
        api.patch(path, {"status": "BUILD_RUNNING", "packer_run_uuid": "run-2"}),
        "PackerService_UpdateBuild",
    )["build"]
    assert resumed["packer_run_uuid"] == "run-2"
    api.finish_build("golden", "f", build["id"])
    version = ok(api.get("/buckets/golden/versions/f"), "PackerService_GetVersion")["version"]
    assert version["name"] == "v1"

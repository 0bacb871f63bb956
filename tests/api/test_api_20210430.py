"""The 2021-04-30 "images/iterations" API on the same data as 2023-01-01.

Replays Packer 1.9.5's push (the last 1.9; SDK v0.36.0 bodies, explicit nulls included),
the deprecated ``hcp-packer-iteration`` / ``hcp-packer-image`` data sources' reads, channels
and revocation; every 200 body is validated against the 2021-04-30 swagger.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from packyard.domain.enums import Role
from tests.support.factories import Api, assert_status
from tests.support.swagger import PACKER_2021_SPEC
from tests.support.wire import ok

FP = "01HB6Z5N3M4K0Q7W8E9R1T2Y3U"
RUN_UUID = "6f1d7b5a-1111-4c2e-9c2b-3a0f1e2d4c5b"
LOCATION = {"organization_id": "ignored", "project_id": "ignored"}


class Old:
    """The 2021-04-30 API of ``api``'s project, as the SDK's client calls it."""

    def __init__(self, api: Api) -> None:
        self.api = api
        t = api.tenant
        self.prefix = (
            f"/packer/2021-04-30/organizations/{t.organization_id}/projects/{t.project_id}"
        )

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.api.request(method, self.prefix + path, body, **kw)

    def ok(self, method: str, path: str, operation: str, body: Any = None, **kw: Any) -> Any:
        response = self.call(method, path, body, **kw)
        return ok(response, f"PackerService_{operation}", spec=PACKER_2021_SPEC)


def _old(api: Api, role: Role = Role.ADMIN) -> Old:
    return Old(api.as_role(role) if role is not Role.ADMIN else api)


def _push_195(old: Old, bucket: str, fp: str, components: tuple[str, ...]) -> dict[str, Any]:
    """Packer 1.9.5's calls for one ``packer build`` (research §C), every answer checked;
    returns the final GetIteration."""
    old.ok("GET", "/registry", "GetRegistry")
    created = old.call(
        "PUT",
        "/images",
        {"bucket_slug": bucket, "description": "Golden", "labels": {"team": "p"}, **_loc()},
    )
    if created.status_code != 200:  # a bucket that exists: code 6, then UpdateBucket
        assert_status(created, 409, 6)
        old.ok(
            "PATCH",
            f"/images/{bucket}",
            "UpdateBucket",
            {"description": "Golden", "labels": {"team": "p"}, "platforms": None, **_loc()},
        )
    else:
        ok(created, "PackerService_CreateBucket", spec=PACKER_2021_SPEC)
    # code 10 (not 5) is what makes Packer create the iteration
    assert_status(
        old.call("GET", f"/images/{bucket}/iteration", params={"fingerprint": fp}), 409, 10
    )
    iteration = old.ok(
        "POST",
        f"/images/{bucket}/iterations",
        "CreateIteration",
        {"fingerprint": fp, "template_type": "HCL2", **_loc()},
    )["iteration"]
    iid = iteration["id"]
    assert iteration["complete"] is False and iteration["template_type"] == "HCL2"
    listed = old.ok("GET", f"/images/{bucket}/iterations/{iid}/builds", "ListBuilds")
    assert listed["builds"] == []

    def create(component: str) -> dict[str, Any]:
        body = {
            "fingerprint": fp,
            "build": {
                "component_type": component,
                "packer_run_uuid": RUN_UUID,
                "status": "UNSET",
                "images": None,
            },
            **_loc(),
        }
        build: dict[str, Any] = old.ok(
            "POST", f"/images/{bucket}/iterations/{iid}", "CreateBuild", body
        )["build"]
        return build

    with ThreadPoolExecutor(len(components)) as pool:  # Packer creates them in parallel
        builds = list(pool.map(create, components))
    for build in builds:
        assert build["status"] == "UNSET" and build["images"] == []
        assert build["iteration_id"] == iid
    again = old.call(
        "POST",
        f"/images/{bucket}/iterations/{iid}",
        {"fingerprint": fp, "build": {"component_type": components[0], "status": "UNSET"}},
    )
    assert_status(again, 409, 6)  # logged and ignored by Packer
    for build in builds:
        running = {"updates": {"packer_run_uuid": RUN_UUID, "status": "RUNNING", "images": None}}
        for _ in range(2):  # the first PATCH, then a heartbeat
            got = old.ok("PATCH", f"/builds/{build['id']}", "UpdateBuild", {**running, **_loc()})
            assert got["build"]["status"] == "RUNNING"
    for n, build in enumerate(builds):
        done = {
            "updates": {
                "packer_run_uuid": RUN_UUID,
                "cloud_provider": "aws",
                "labels": {"os": "ubuntu"},
                "status": "DONE",
                "images": [{"image_id": f"ami-{fp[-4:]}-{n}", "region": "us-east-1"}],
            },
            **_loc(),
        }
        got = old.ok("PATCH", f"/builds/{build['id']}", "UpdateBuild", done)["build"]
        assert got["status"] == "DONE" and got["images"][0]["image_id"] == f"ami-{fp[-4:]}-{n}"
    final: dict[str, Any] = old.ok(
        "GET", f"/images/{bucket}/iteration", "GetIteration", params={"fingerprint": fp}
    )["iteration"]
    return final


def _loc() -> dict[str, Any]:
    return {"location": LOCATION}


def test_packer_195_push_then_2023_reads(api: Api) -> None:
    old = _old(api, Role.CONTRIBUTOR)
    api.create_bucket("golden")  # exists: the code-6 branch
    iteration = _push_195(old, "golden", FP, ("null.a", "null.b"))
    assert iteration["complete"] is True and iteration["incremental_version"] == 1
    assert {b["component_type"] for b in iteration["builds"]} == {"null.a", "null.b"}
    assert "revoke_at" not in iteration
    # the same state through 2023-01-01: iteration = version, image = artifact
    version = ok(api.get(f"/buckets/golden/versions/{FP}"), "PackerService_GetVersion")["version"]
    assert version["id"] == iteration["id"] and version["name"] == "v1"
    assert version["status"] == "VERSION_ACTIVE"
    old_images = {i["id"]: i["image_id"] for b in iteration["builds"] for i in b["images"]}
    new_images = {
        a["id"]: a["external_identifier"] for b in version["builds"] for a in b["artifacts"]
    }
    assert old_images == new_images and len(new_images) == 2
    latest = ok(api.get("/buckets/golden/channels/latest"), "PackerService_GetChannel")
    assert latest["channel"]["version"]["id"] == iteration["id"]
    bucket = ok(api.get("/buckets/golden"), "PackerService_GetBucket")["bucket"]
    assert bucket["platforms"] == ["aws"] and bucket["description"] == "Golden"
    # and the other 2021 reads of it
    got = old.ok("GET", "/images/golden", "GetBucket")["bucket"]
    assert got["slug"] == "golden" and got["latest_version"] == 1 and got["iteration_count"] == "1"
    assert got["latest_iteration"]["id"] == iteration["id"]
    listed = old.ok("GET", "/images", "ListBuckets")["buckets"]
    assert [b["slug"] for b in listed] == ["golden"]
    iterations = old.ok("GET", "/images/golden/iterations", "ListIterations")["iterations"]
    assert iterations[0]["build_statuses"] == {"null.a": "DONE", "null.b": "DONE"}
    for build in iteration["builds"]:
        one = old.ok("GET", f"/builds/{build['id']}", "GetBuild")["build"]
        assert one == build
    by_number = old.ok(
        "GET", "/images/golden/iteration", "GetIteration", params={"incremental_version": 1}
    )["iteration"]
    assert by_number["id"] == iteration["id"]


def test_packer_195_push_into_a_new_bucket(api: Api) -> None:
    iteration = _push_195(_old(api, Role.CONTRIBUTOR), "fresh", FP, ("null.a",))
    assert iteration["complete"] is True
    assert api.ok(api.get("/buckets/fresh"))["bucket"]["version_count"] == "1"


def test_deprecated_data_sources_read_a_2023_push(api: Api) -> None:
    api.create_bucket("base")
    version = api.complete_version(
        "base", "fp-1", components=("amazon-ebs.a", "azure-arm.b"), regions=("us-east-1", "eu")
    )
    ok(
        api.post("/buckets/base/channels", {"name": "release", "version_fingerprint": "fp-1"}),
        "PackerService_CreateChannel",
    )
    old = _old(api, Role.VIEWER)
    # hcp-packer-iteration: GetChannel, reads channel.id and channel.iteration
    channel = old.ok("GET", "/images/base/channels/release", "GetChannel")["channel"]
    it = channel["iteration"]
    assert channel["slug"] == "release" and channel["bucket_slug"] == "base"
    assert it["id"] == version["id"] and it["bucket_slug"] == "base"
    assert it["complete"] is True and it["incremental_version"] == 1
    assert it["fingerprint"] == "fp-1" and it["author_id"]
    # hcp-packer-image: builds[] by cloud_provider, then images[] by region
    match = [
        (b, i)
        for b in it["builds"]
        if b["cloud_provider"] == "aws"
        for i in b["images"]
        if i["region"] == "eu"
    ]
    build, image = match[0]
    assert build["iteration_id"] == version["id"] and build["status"] == "DONE"
    by_id = old.ok(
        "GET", "/images/base/iteration", "GetIteration", params={"iteration_id": version["id"]}
    )["iteration"]
    assert by_id["builds"] == it["builds"]
    # the iteration id Packer 1.16 sends back as a 2023 parent_version_id
    api.create_bucket("child")
    child = api.complete_version("child", "c-1", parent=(build["iteration_id"], channel["id"]))
    assert child["id"]
    relations = old.ok("GET", "/images/base/ancestry", "ListBucketAncestry")["relations"]
    assert [(r["parent"]["iteration_id"], r["child"]["bucket_slug"]) for r in relations] == [
        (version["id"], "child")
    ]
    assert image["image_id"].startswith("ami")


def test_a_push_through_either_api_is_seen_at_once_with_the_cache_on(api: Api) -> None:
    api.create_bucket("golden")
    api.complete_version("golden", "fp-1")
    old = _old(api)
    path = "/buckets/golden/channels/latest"
    for _ in range(3):  # the second answer is stored, the third served from memory
        first = api.get(path)
    assert first.headers.get("x-packyard-cache") == "hit"
    assert first.json()["channel"]["version"]["fingerprint"] == "fp-1"
    _push_195(old, "golden", "fp-2", ("null.a",))
    after = ok(api.get(path), "PackerService_GetChannel")
    assert after["channel"]["version"]["fingerprint"] == "fp-2"
    # and the other way: a 2023 push, read through 2021 at once
    old.ok("GET", "/images/golden/channels/latest", "GetChannel")
    api.complete_version("golden", "fp-3")
    seen = old.ok("GET", "/images/golden/channels/latest", "GetChannel")["channel"]
    assert seen["iteration"]["fingerprint"] == "fp-3"
    assert seen["iteration"]["incremental_version"] == 3


def test_channels_through_the_old_api(api: Api) -> None:
    api.create_bucket("b")
    v1 = api.complete_version("b", "fp-1")
    v2 = api.complete_version("b", "fp-2")
    old = _old(api)
    created = old.ok(
        "POST",
        "/images/b/channels",
        "CreateChannel",
        {"slug": "prod", "iteration_id": v1["id"], "restriction": "RESTRICTED", **_loc()},
    )["channel"]
    assert created["restricted"] is True and created["iteration"]["id"] == v1["id"]
    # provider <= 0.80: mask in camelCase
    moved = old.ok(
        "PATCH",
        "/images/b/channels/prod",
        "UpdateChannel",
        {"incremental_version": 2, "mask": "incrementalVersion"},
    )["channel"]
    assert moved["iteration"]["id"] == v2["id"] and moved["restricted"] is True
    opened = old.ok(
        "PATCH",
        "/images/b/channels/prod",
        "UpdateChannel",
        {"restriction": "UNRESTRICTED", "mask": "restriction"},
    )["channel"]
    assert opened["restricted"] is False and opened["iteration"]["id"] == v2["id"]
    by_fp = old.ok("PATCH", "/images/b/channels/prod", "UpdateChannel", {"fingerprint": "fp-1"})
    assert by_fp["channel"]["iteration"]["id"] == v1["id"]
    disagree = old.call(
        "PATCH",
        "/images/b/channels/prod",
        {"fingerprint": "fp-1", "incremental_version": 2, "mask": "fingerprint,incrementalVersion"},
    )
    assert_status(disagree, 400, 3)
    unassigned = old.ok(
        "PATCH",
        "/images/b/channels/prod",
        "UpdateChannel",
        {"mask": "iterationId,fingerprint,incrementalVersion"},
    )["channel"]
    assert unassigned["iteration"] is None
    # the 2023 API sees the same channel
    same = api.ok(api.get("/buckets/b/channels/prod"))["channel"]
    assert same["id"] == created["id"] and same["version"] is None
    history = old.ok("GET", "/images/b/channels/prod/history", "ListChannelHistory")
    assert history["count"] == 4
    assert {h["iteration"]["status"] for h in history["history"] if h["iteration"]} == {
        "ITERATION_ACTIVE"
    }
    names = [c["slug"] for c in old.ok("GET", "/images/b/channels", "ListChannels")["channels"]]
    assert sorted(names) == ["latest", "prod"]
    old.ok("DELETE", "/images/b/channels/prod", "DeleteChannel")
    assert_status(api.get("/buckets/b/channels/prod"), 404, 5)
    incomplete = api.create_version("b", "fp-open")
    refused = old.call(
        "POST", "/images/b/channels", {"slug": "x", "iteration_id": incomplete["id"]}
    )
    assert_status(refused, 400, 9)


def test_revocation_through_the_old_api(api: Api) -> None:
    api.create_bucket("b")
    v1 = api.complete_version("b", "fp-1")
    v2 = api.complete_version("b", "fp-2")
    old = _old(api)
    old.ok(
        "POST", "/images/b/channels", "CreateChannel", {"slug": "prod", "iteration_id": v1["id"]}
    )
    old.ok("PATCH", "/images/b/channels/prod", "UpdateChannel", {"iteration_id": v2["id"]})
    # rollback_channels is opt-in here (2023: disable_rollback_channels is opt-out)
    kept = old.call(
        "PATCH",
        f"/iterations/{v2['id']}",
        {"bucket_slug": "b", "revocation_message": "CVE", "revoke_in": "3600s"},
    )
    scheduled = ok(kept, "PackerService_UpdateIteration", spec=PACKER_2021_SPEC)["iteration"]
    assert scheduled["revoke_at"] and scheduled["revocation_type"] == "MANUAL"
    restored = old.ok(
        "PATCH", f"/iterations/{v2['id']}", "UpdateIteration", {"bucket_slug": "b", "restore": True}
    )["iteration"]
    assert "revoke_at" not in restored
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    revoked = old.ok(
        "PATCH",
        f"/iterations/{v2['id']}",
        "UpdateIteration",
        {"revocation_message": "CVE", "revoke_at": now, "rollback_channels": True},
    )["iteration"]
    assert revoked["revocation_message"] == "CVE"
    prod = old.ok("GET", "/images/b/channels/prod", "GetChannel")["channel"]
    assert prod["iteration"]["id"] == v1["id"]  # rolled back
    assert api.ok(api.get("/buckets/b/versions/fp-2"))["version"]["status"] == "VERSION_REVOKED"
    # DeleteIteration: the bucket is a query parameter
    assert_status(
        old.call("DELETE", f"/iterations/{v1['id']}", params={"bucket_slug": "b"}), 400, 9
    )
    old.ok(
        "DELETE",
        f"/iterations/{v1['id']}",
        "DeleteIteration",
        params={"bucket_slug": "b", "rollback_channels": "true"},
    )
    assert_status(api.get("/buckets/b/versions/fp-1"), 409, 10)


def test_lookups_answer_the_codes_old_clients_branch_on(api: Api) -> None:
    api.create_bucket("b")
    old = _old(api)
    missing = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
    for params in ({"iteration_id": missing}, {"fingerprint": "nope"}, {"incremental_version": 9}):
        assert_status(old.call("GET", "/images/b/iteration", params=params), 409, 10)
    both = {"fingerprint": "a", "incremental_version": 1}
    assert_status(old.call("GET", "/images/b/iteration", params=both), 400, 3)
    assert_status(old.call("GET", "/images/b/iteration"), 400, 3)
    assert_status(old.call("GET", "/images/nope/iteration", params={"fingerprint": "x"}), 404, 5)
    assert_status(old.call("GET", f"/builds/{missing}"), 404, 5)
    assert_status(old.call("PATCH", f"/iterations/{missing}", {"bucket_slug": "b"}), 409, 10)
    # an iteration of another bucket is not found through this one
    api.create_bucket("other")
    other = api.create_version("other", "fp-o")
    got = old.call("GET", "/images/b/iteration", params={"iteration_id": other["id"]})
    assert_status(got, 409, 10)
    viewer = _old(api, Role.VIEWER)
    assert_status(viewer.call("PUT", "/images", {"bucket_slug": "v"}), 403, 7)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_registry_changes_name_the_2023_replacement(api: Api, method: str) -> None:
    body = assert_status(_old(api).call(method, "/registry", {}), 501, 12)
    assert "/packer/2023-01-01/" in body["message"]


def test_run_task_api_is_the_same_as_2023(api: Api) -> None:
    old = _old(api)
    key = old.ok("PATCH", "/runtasks/hmac", "RegenerateTFCRunTaskHmacKey", {**_loc()})["hmac_key"]
    got = old.ok("GET", "/runtasks/validation", "GetRegistryTFCRunTaskAPI")
    assert got["hmac_key"] == key
    new = api.ok(api.get("/runtasks/validation"))
    assert new == got


def test_bucket_writes_through_the_old_api(api: Api) -> None:
    old = _old(api)
    made = old.ok("PUT", "/images", "CreateBucket", {"bucket_slug": "x", "labels": {"a": "b"}})
    assert made["bucket"]["slug"] == "x" and made["bucket"]["latest_iteration"] is None
    updated = old.ok(
        "PATCH",
        "/images/x",
        "UpdateBucket",
        {"description": "d", "labels": {"a": "c"}, "platforms": None},
    )
    assert updated["bucket"]["description"] == "d" and updated["bucket"]["labels"] == {"a": "c"}
    v = api.create_version("x", "fp")
    build = api.create_build("x", "fp", "null.a")
    old.ok("DELETE", f"/builds/{build['id']}", "DeleteBuild")
    assert api.ok(api.get("/buckets/x/versions/fp"))["version"]["builds"] == []
    old.ok("DELETE", f"/iterations/{v['id']}", "DeleteIteration")
    old.ok("DELETE", "/images/x", "DeleteBucket")
    assert_status(api.get("/buckets/x"), 404, 5)

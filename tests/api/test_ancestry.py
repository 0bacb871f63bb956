"""Ancestry: parent ids on builds become edges whose status follows the parent channel."""

from __future__ import annotations

from typing import Any

from packyard.domain.enums import Role
from packyard.services.container import Services
from tests.support import swagger
from tests.support.factories import Api, assert_status, make_tenant, unique

API = "/packer/2023-01-01"


def ancestry(api: Api, bucket: str, **params: str) -> dict[str, Any]:
    body = api.ok(api.get(f"/buckets/{bucket}/ancestry", params=params))
    swagger.validate("PackerService_ListBucketAncestry", body)
    assert isinstance(body["total_count"], int)
    return body


def bucket_of(api: Api, name: str) -> dict[str, Any]:
    body = api.ok(api.get(f"/buckets/{name}"))
    swagger.validate("PackerService_GetBucket", body)
    bucket: dict[str, Any] = body["bucket"]
    return bucket


def version_of(api: Api, bucket: str, fp: str) -> dict[str, Any]:
    body = api.ok(api.get(f"/buckets/{bucket}/versions/{fp}"))
    swagger.validate("PackerService_GetVersion", body)
    version: dict[str, Any] = body["version"]
    return version


def assign(api: Api, bucket: str, channel: str, fp: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"update_mask": "versionFingerprint"}
    if fp:
        body["version_fingerprint"] = fp
    channel_obj: dict[str, Any] = api.ok(api.patch(f"/buckets/{bucket}/channels/{channel}", body))[
        "channel"
    ]
    return channel_obj


def href(api: Api, bucket: str, query: str) -> str:
    t = api.tenant
    return (
        f"{API}/organizations/{t.organization_id}/projects/{t.project_id}/buckets/{bucket}"
        f"/ancestry?{query}"
    )


def statuses(api: Api, parent_bucket: str, child_bucket: str, child_fp: str) -> dict[str, str]:
    """Every place the one edge's status shows up."""
    child_version = version_of(api, child_bucket, child_fp)
    parent_listing = ancestry(api, child_bucket, type="ANCESTRY_TYPE_PARENTS")
    child_listing = ancestry(api, parent_bucket, type="ANCESTRY_TYPE_CHILDREN")
    listed = {b["name"]: b for b in api.ok(api.get("/buckets"))["buckets"]}
    return {
        "version.parents": child_version["parents"]["status"],
        "child_bucket.parents": bucket_of(api, child_bucket)["parents"]["status"],
        "parent_bucket.children": bucket_of(api, parent_bucket)["children"]["status"],
        "list.child.parents": listed[child_bucket]["parents"]["status"],
        "list.parent.children": listed[parent_bucket]["children"]["status"],
        "ancestry.parents": parent_listing["relations"][0]["status"],
        "ancestry.children": child_listing["relations"][0]["status"],
    }


def build_child(
    api: Api,
    bucket: str,
    parents: list[tuple[str, str | None]],
    fp: str | None = None,
) -> dict[str, Any]:
    """A version with one build per parent, each DONE with that parent's ids."""
    fp = fp or unique("child")
    api.create_version(bucket, fp)
    builds = [api.create_build(bucket, fp, f"null.b{i}") for i in range(len(parents))]
    for build, (version_id, channel_id) in zip(builds, parents, strict=True):
        extra: dict[str, Any] = {"parent_version_id": version_id}
        if channel_id:
            extra["parent_channel_id"] = channel_id
        api.finish_build(bucket, fp, build["id"], **extra)
    return version_of(api, bucket, fp)


def test_edge_status_follows_the_parent_channel(api: Api) -> None:
    api.create_bucket("base")
    api.create_bucket("app")
    p1 = api.complete_version("base", "base-1")
    api.complete_version("base", "base-2")
    release = api.ok(
        api.post("/buckets/base/channels", {"name": "release", "version_fingerprint": "base-1"})
    )["channel"]
    child = api.complete_version("app", "app-1", parent=(p1["id"], release["id"]))

    assert child["parents"] == {
        "href": href(api, "app", "type=ANCESTRY_TYPE_PARENTS&version_fingerprint=app-1"),
        "status": "UP_TO_DATE",
    }
    app, base = bucket_of(api, "app"), bucket_of(api, "base")
    assert app["parents"]["href"] == href(api, "app", "type=ANCESTRY_TYPE_PARENTS")
    assert "children" not in app, "a side without edges is omitted"
    assert base["children"]["href"] == href(api, "base", "type=ANCESTRY_TYPE_CHILDREN")
    assert "parents" not in base
    assert version_of(api, "base", "base-1")["has_descendants"] is True
    assert version_of(api, "base", "base-2")["has_descendants"] is False
    assert child["has_descendants"] is False
    assert version_of(api, "base", "base-1")["parents"] is None

    assert set(statuses(api, "base", "app", "app-1").values()) == {"UP_TO_DATE"}
    assign(api, "base", "release", "base-2")
    assert set(statuses(api, "base", "app", "app-1").values()) == {"OUT_OF_DATE"}
    assign(api, "base", "release", "base-1")
    assert set(statuses(api, "base", "app", "app-1").values()) == {"UP_TO_DATE"}
    assign(api, "base", "release", None)
    assert set(statuses(api, "base", "app", "app-1").values()) == {"UNDETERMINED"}
    assign(api, "base", "release", "base-2")
    assert set(statuses(api, "base", "app", "app-1").values()) == {"OUT_OF_DATE"}
    api.ok(api.delete("/buckets/base/channels/release"))
    assert set(statuses(api, "base", "app", "app-1").values()) == {"UNDETERMINED"}
    # A new channel with the old name is a different channel: still undetermined.
    api.ok(api.post("/buckets/base/channels", {"name": "release", "version_fingerprint": "base-1"}))
    assert set(statuses(api, "base", "app", "app-1").values()) == {"UNDETERMINED"}


def test_parent_from_latest_moves_out_of_date_on_the_next_completion(api: Api) -> None:
    """The usual Packer set-up: the parent is resolved through `latest`."""
    api.create_bucket("base")
    api.create_bucket("app")
    p1 = api.complete_version("base", "base-1")
    latest = api.ok(api.get("/buckets/base/channels/latest"))["channel"]
    api.complete_version("app", "app-1", parent=(p1["id"], latest["id"]))
    assert set(statuses(api, "base", "app", "app-1").values()) == {"UP_TO_DATE"}
    api.complete_version("base", "base-2")
    assert set(statuses(api, "base", "app", "app-1").values()) == {"OUT_OF_DATE"}


def test_edge_without_channel_is_undetermined(api: Api) -> None:
    api.create_bucket("base")
    api.create_bucket("app")
    p1 = api.complete_version("base", "base-1")
    child = api.complete_version("app", "app-1", parent=(p1["id"], None))
    assert child["parents"]["status"] == "UNDETERMINED"
    assert set(statuses(api, "base", "app", "app-1").values()) == {"UNDETERMINED"}
    relation = ancestry(api, "app", type="ANCESTRY_TYPE_PARENTS")["relations"][0]
    assert relation["parent"]["channel_name"] == ""
    assert relation["parent"]["channel_version"] is None


def test_rollups_are_out_of_date_if_any_edge_is(api: Api) -> None:
    api.create_bucket("os")
    api.create_bucket("runtime")
    api.create_bucket("app")
    os1 = api.complete_version("os", "os-1")
    api.complete_version("os", "os-2")
    rt1 = api.complete_version("runtime", "rt-1")
    os_ch = api.ok(
        api.post("/buckets/os/channels", {"name": "prod", "version_fingerprint": "os-1"})
    )
    rt_ch = api.ok(
        api.post("/buckets/runtime/channels", {"name": "prod", "version_fingerprint": "rt-1"})
    )
    child = build_child(
        api,
        "app",
        [
            (os1["id"], os_ch["channel"]["id"]),
            (rt1["id"], rt_ch["channel"]["id"]),
            (os1["id"], None),
        ],
        fp="app-1",
    )
    assert child["parents"]["status"] == "UP_TO_DATE"
    relations = ancestry(api, "app", type="ANCESTRY_TYPE_PARENTS")
    # Two builds named os-1 as their parent: one edge per parent version.
    assert relations["total_count"] == 2
    assert {r["parent"]["bucket_name"] for r in relations["relations"]} == {"os", "runtime"}

    assign(api, "os", "prod", "os-2")
    assert version_of(api, "app", "app-1")["parents"]["status"] == "OUT_OF_DATE"
    assert bucket_of(api, "app")["parents"]["status"] == "OUT_OF_DATE"
    assert bucket_of(api, "os")["children"]["status"] == "OUT_OF_DATE"
    assert bucket_of(api, "runtime")["children"]["status"] == "UP_TO_DATE"
    by_bucket = {
        r["parent"]["bucket_name"]: r
        for r in ancestry(api, "app", type="ANCESTRY_TYPE_PARENTS")["relations"]
    }
    assert by_bucket["os"]["status"] == "OUT_OF_DATE"
    assert by_bucket["os"]["parent"]["channel_version"]["fingerprint"] == "os-2"
    assert by_bucket["runtime"]["status"] == "UP_TO_DATE"


def test_parent_ids_are_set_once(api: Api) -> None:
    api.create_bucket("base")
    api.create_bucket("app")
    p1 = api.complete_version("base", "base-1")
    p2 = api.complete_version("base", "base-2")
    ch = api.ok(api.post("/buckets/base/channels", {"name": "release"}))["channel"]
    other = api.ok(api.post("/buckets/base/channels", {"name": "other"}))["channel"]
    api.create_version("app", "app-1")
    build = api.create_build(
        "app", "app-1", "null.a", parent_version_id=p1["id"], parent_channel_id=ch["id"]
    )
    # Repeating the same values is fine (Packer repeats them on DONE).
    running = api.update_build(
        "app",
        "app-1",
        build["id"],
        status="BUILD_RUNNING",
        parent_version_id=p1["id"],
        parent_channel_id=ch["id"],
    )
    assert running.status_code == 200, running.text
    body = assert_status(
        api.update_build("app", "app-1", build["id"], parent_version_id=p2["id"]), 400, 6
    )
    assert (
        body["message"]
        == "You cannot override a build's parent_version_id if it has already been set."
    )
    body = assert_status(
        api.update_build("app", "app-1", build["id"], parent_channel_id=other["id"]), 400, 6
    )
    assert (
        body["message"]
        == "You cannot override a build's parent_channel_id if it has already been set."
    )
    api.finish_build("app", "app-1", build["id"])
    relations = ancestry(api, "app", type="ANCESTRY_TYPE_PARENTS", version_fingerprint="app-1")
    assert relations["total_count"] == 1
    assert relations["relations"][0]["parent"]["version_id"] == p1["id"]
    assert relations["relations"][0]["parent"]["channel_name"] == "release"


def test_parents_must_exist_in_the_same_project(api: Api, services: Services) -> None:
    api.create_bucket("base")
    api.create_bucket("app")
    p1 = api.complete_version("base", "base-1")
    app_latest = api.ok(api.get("/buckets/app/channels/latest"))["channel"]
    api.create_version("app", "app-1")
    build = api.create_build("app", "app-1", "null.a")

    # Another project's version is not a valid parent, even with a valid id.
    stranger = Api(api.base_url, make_tenant(services))
    try:
        stranger.create_bucket("base")
        foreign = stranger.complete_version("base", "base-1")
    finally:
        stranger.close()
    for fields in (
        {"parent_version_id": foreign["id"]},
        {"parent_version_id": "01HZZZZZZZZZZZZZZZZZZZZZZZ"},
        {"parent_channel_id": app_latest["id"]},
        {"parent_version_id": p1["id"], "parent_channel_id": app_latest["id"]},
    ):
        assert_status(api.update_build("app", "app-1", build["id"], **fields), 400, 3)
    assert version_of(api, "base", "base-1")["has_descendants"] is False


def test_list_bucket_ancestry_filters_and_pages(api: Api) -> None:
    api.create_bucket("base")
    p1 = api.complete_version("base", "base-1")
    p2 = api.complete_version("base", "base-2")
    stable = api.ok(
        api.post("/buckets/base/channels", {"name": "stable", "version_fingerprint": "base-1"})
    )["channel"]
    edge = api.ok(
        api.post("/buckets/base/channels", {"name": "edge", "version_fingerprint": "base-2"})
    )["channel"]
    children: list[tuple[str, str]] = []
    for i in range(5):
        bucket = f"app-{i}"
        api.create_bucket(bucket)
        parent, channel = (p1, stable) if i < 3 else (p2, edge)
        child = api.complete_version(bucket, f"{bucket}-v1", parent=(parent["id"], channel["id"]))
        children.append((bucket, child["id"]))

    # `base` has no parents, five children.
    both = ancestry(api, "base")
    assert both["total_count"] == 5
    assert all(r["child"]["bucket_name"].startswith("app-") for r in both["relations"])
    assert {r["child"]["version_id"] for r in both["relations"]} == {c[1] for c in children}
    first = both["relations"][0]
    assert first["child"]["version_name"] == "v1"
    assert first["parent"]["bucket_name"] == "base"

    # channel_name keeps the children built from a version taken from that channel.
    stable_kids = ancestry(api, "base", type="ANCESTRY_TYPE_CHILDREN", channel_name="stable")
    assert stable_kids["total_count"] == 3
    assert {r["child"]["bucket_name"] for r in stable_kids["relations"]} == {
        "app-0",
        "app-1",
        "app-2",
    }
    for r in stable_kids["relations"]:
        assert r["parent"]["channel_name"] == "stable"
        assert r["parent"]["channel_version"] == {
            "id": p1["id"],
            "name": "v1",
            "fingerprint": "base-1",
        }
        assert r["status"] == "UP_TO_DATE"
    assert (
        ancestry(api, "base", type="ANCESTRY_TYPE_CHILDREN", channel_name="latest")["total_count"]
        == 0
    )

    # Pages of two: newest edge first, total on every page, tokens both ways.
    pages = []
    token = ""
    while True:
        params = {"type": "ANCESTRY_TYPE_CHILDREN", "pagination.page_size": "2"}
        if token:
            params["pagination.next_page_token"] = token
        page = ancestry(api, "base", **params)
        assert page["total_count"] == 5
        pages.append(page)
        token = page["pagination"]["next_page_token"]
        if not token:
            break
    assert [len(p["relations"]) for p in pages] == [2, 2, 1]
    walked = [r["child"]["bucket_name"] for p in pages for r in p["relations"]]
    assert walked == [f"app-{i}" for i in reversed(range(5))]
    back = ancestry(
        api,
        "base",
        type="ANCESTRY_TYPE_CHILDREN",
        **{
            "pagination.page_size": "2",
            "pagination.previous_page_token": pages[2]["pagination"]["previous_page_token"],
        },
    )
    assert back["relations"] == pages[1]["relations"]

    # A child bucket: parents of its latest version by default, or of a given version.
    parents = ancestry(api, "app-4")
    assert parents["total_count"] == 1
    rel = parents["relations"][0]
    assert rel["parent"] == {
        "bucket_name": "base",
        "version_name": "v2",
        "version_id": p2["id"],
        "version_fingerprint": "base-2",
        "channel_name": "edge",
        "channel_version": {"id": p2["id"], "name": "v2", "fingerprint": "base-2"},
    }
    assert rel["child"]["bucket_name"] == "app-4"
    assert rel["child"]["version_fingerprint"] == "app-4-v1"
    api.create_version("app-4", "app-4-open")
    assert ancestry(api, "app-4", version_fingerprint="app-4-open")["total_count"] == 0
    assert ancestry(api, "app-4", type="ANCESTRY_TYPE_CHILDREN")["total_count"] == 0

    # Errors.
    path = "/buckets/base/ancestry"
    assert_status(api.get(path, params={"type": "SIBLINGS"}), 400, 3)
    assert_status(api.get(path, params={"version_fingerprint": "nope"}), 404, 5)
    assert_status(api.get(path, params={"channel_name": "nope"}), 404, 5)
    assert_status(api.get("/buckets/nope/ancestry"), 404, 5)
    assert_status(api.get(path, params={"pagination.next_page_token": "x"}), 400, 3)


def test_an_empty_bucket_has_no_relations(api: Api) -> None:
    api.create_bucket("lonely")
    body = ancestry(api, "lonely")
    assert body == {
        "relations": [],
        "total_count": 0,
        "pagination": {"next_page_token": "", "previous_page_token": ""},
    }


def test_viewers_cannot_filter_by_a_restricted_channel(api: Api) -> None:
    api.create_bucket("base")
    viewer = api.as_role(Role.VIEWER)
    try:
        assert ancestry(viewer, "base")["total_count"] == 0
        assert_status(
            viewer.get("/buckets/base/ancestry", params={"channel_name": "latest"}), 403, 7
        )
    finally:
        viewer.close()


def test_both_sides_are_listed_parents_first(api: Api) -> None:
    """A middle bucket: its latest version's parent, then the children built from it."""
    for name in ("base", "mid", "top"):
        api.create_bucket(name)
    base = api.complete_version("base", "base-1")
    base_latest = api.ok(api.get("/buckets/base/channels/latest"))["channel"]
    mid = api.complete_version("mid", "mid-1", parent=(base["id"], base_latest["id"]))
    mid_latest = api.ok(api.get("/buckets/mid/channels/latest"))["channel"]
    api.complete_version("top", "top-1", parent=(mid["id"], mid_latest["id"]))
    api.complete_version("top", "top-2", parent=(mid["id"], None))

    whole = ancestry(api, "mid")
    assert whole["total_count"] == 3
    sides = [(r["parent"]["bucket_name"], r["child"]["bucket_name"]) for r in whole["relations"]]
    assert sides == [("base", "mid"), ("mid", "top"), ("mid", "top")]
    assert [r["child"]["version_fingerprint"] for r in whole["relations"][1:]] == ["top-2", "top-1"]
    assert [r["status"] for r in whole["relations"]] == ["UP_TO_DATE", "UNDETERMINED", "UP_TO_DATE"]

    paged = []
    token = ""
    while True:
        params = {"pagination.page_size": "1"}
        if token:
            params["pagination.next_page_token"] = token
        page = ancestry(api, "mid", **params)
        assert page["total_count"] == 3
        paged.extend(page["relations"])
        token = page["pagination"]["next_page_token"]
        if not token:
            break
    assert paged == whole["relations"]
    mid_bucket = bucket_of(api, "mid")
    assert mid_bucket["parents"]["status"] == "UP_TO_DATE"
    assert mid_bucket["children"]["status"] == "UP_TO_DATE"
    # A token is bound to its query: it is refused by a different listing.
    first = ancestry(api, "mid", **{"pagination.page_size": "1"})
    assert_status(
        api.get(
            "/buckets/mid/ancestry",
            params={
                "type": "ANCESTRY_TYPE_CHILDREN",
                "pagination.next_page_token": first["pagination"]["next_page_token"],
            },
        ),
        400,
        3,
    )


def test_deleting_the_only_build_naming_a_parent_drops_the_edge(api: Api) -> None:
    api.create_bucket("base-del")
    parent = api.complete_version("base-del", "fp-base-del")
    api.create_bucket("app-del")
    api.create_version("app-del", "fp-app-del")
    kept = api.create_build("app-del", "fp-app-del", "amazon-ebs.kept")
    named = api.create_build("app-del", "fp-app-del", "amazon-ebs.named")
    api.ok(
        api.update_build(
            "app-del",
            "fp-app-del",
            named["id"],
            status="BUILD_RUNNING",
            parent_version_id=parent["id"],
        )
    )
    assert version_of(api, "base-del", "fp-base-del")["has_descendants"] is True

    api.ok(api.delete(f"/buckets/app-del/versions/fp-app-del/builds/{named['id']}"))

    assert version_of(api, "base-del", "fp-base-del")["has_descendants"] is False
    assert (
        ancestry(api, "app-del", type="ANCESTRY_TYPE_PARENTS", version_fingerprint="fp-app-del")[
            "total_count"
        ]
        == 0
    )
    assert kept["id"]

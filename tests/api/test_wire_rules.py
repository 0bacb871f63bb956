"""Wire rules every operation follows (api-2023-01-01 §1)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.factories import Api, assert_status
from tests.support.wire import ok

ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _walk(api: Api, path: str, operation: str, key: str, size: int) -> list[dict[str, Any]]:
    """Follow next_page_token to the end; fail on a token that never terminates."""
    seen: list[dict[str, Any]] = []
    token = ""
    sep = "&" if "?" in path else "?"
    for _ in range(100):
        url = f"{path}{sep}pagination.page_size={size}"
        if token:
            url += f"&pagination.next_page_token={token}"
        body = ok(api.get(url), operation)
        assert len(body[key]) <= size
        seen.extend(body[key])
        token = body["pagination"]["next_page_token"]
        if not token:
            return seen
    raise AssertionError("pagination did not terminate")


def test_ids_timestamps_and_numbers(api: Api) -> None:
    api.create_bucket("golden")
    version = api.complete_version("golden", "f")
    bucket = ok(api.get("/buckets/golden"), "PackerService_GetBucket")["bucket"]
    assert isinstance(bucket["version_count"], str)
    build = version["builds"][0]
    for obj in (bucket, version, build, build["artifacts"][0]):
        assert ULID.fullmatch(obj["id"]), obj["id"]
        assert RFC3339_UTC.fullmatch(obj["created_at"]), obj["created_at"]
    history = ok(
        api.get("/buckets/golden/channels/latest/history"),
        "PackerService_ListChannelAssignmentHistory",
    )
    assert isinstance(history["count"], int)


def test_status_fields_are_always_present(api: Api) -> None:
    api.create_bucket("golden")
    api.create_version("golden", "f")
    api.create_build("golden", "f", "null.a")
    ok(
        api.post("/buckets/golden/versions/f/builds", {"component_type": "null.b"}),
        "PackerService_CreateBuild",
    )
    version = ok(api.get("/buckets/golden/versions/f"), "PackerService_GetVersion")["version"]
    assert version["status"] == "VERSION_INCOMPLETE"
    for build in version["builds"]:
        assert build["status"] == "BUILD_UNSET"
        assert build["artifacts"] == []
    for body in (
        ok(api.get("/buckets/golden/versions/f/builds"), "PackerService_ListBuilds")["builds"],
        ok(api.get("/buckets/golden/versions"), "PackerService_ListVersions")["versions"],
    ):
        assert all(item["status"] for item in body)


@pytest.mark.parametrize(
    "revoke_at",
    [None, "0001-01-01T00:00:00.000Z", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000+02:00"],
)
def test_null_and_year_one_timestamps_mean_not_provided(api: Api, revoke_at: str | None) -> None:
    api.create_bucket("golden")
    api.create_version("golden", "f")
    build = api.create_build("golden", "f", "null.a")
    api.create_build("golden", "f", "null.b")
    api.finish_build("golden", "f", build["id"])
    body = ok(
        api.patch("/buckets/golden/versions/f", {"complete": True, "revoke_at": revoke_at}),
        "PackerService_UpdateVersion",
    )["version"]
    assert body["name"] == "v1"
    assert body["revoke_at"] is None
    assert body["status"] == "VERSION_ACTIVE"


def test_unknown_request_fields_are_ignored(api: Api) -> None:
    ok(
        api.put("/buckets", {"name": "golden", "bogus": {"nested": [1, 2]}, "labels": None}),
        "PackerService_CreateBucket",
    )
    ok(
        api.post(
            "/buckets/golden/versions",
            {"fingerprint": "f", "template_type": "HCL2", "iteration": 3, "complete": True},
        ),
        "PackerService_CreateVersion",
    )
    build = api.create_build("golden", "f", "null.a", bogus=True, images=[{"image_id": "x"}])
    path = f"/buckets/golden/versions/f/builds/{build['id']}"
    # a body wrapped in an unknown object is a 200 no-op, not a reset to BUILD_UNSET
    ok(api.patch(path, {"status": "BUILD_RUNNING"}), "PackerService_UpdateBuild")
    wrapped = ok(
        api.patch(path, {"build": {"status": "BUILD_FAILED", "platform": "x"}}),
        "PackerService_UpdateBuild",
    )["build"]
    assert wrapped["status"] == "BUILD_RUNNING"
    assert wrapped["platform"] == ""
    # null means "not provided" for artifacts, labels and metadata
    nulls = ok(
        api.patch(path, {"artifacts": None, "labels": None, "metadata": None, "status": None}),
        "PackerService_UpdateBuild",
    )["build"]
    assert nulls["status"] == "BUILD_RUNNING"


def test_region_query_parameters_and_client_headers_are_ignored(api: Api) -> None:
    api.create_bucket("golden")
    response = api.http.get(
        api.prefix
        + "/buckets/golden?location.region.provider=aws&location.region.region=us-east-1",
        headers={**api.headers(), "X-HCP-Source-Channel": "packer/1.16.0 hcp-go-sdk/0.23.0"},
    )
    ok(response, "PackerService_GetBucket")


def test_bucket_pagination_walks_every_bucket_once(api: Api) -> None:
    names = [f"b{i:02d}" for i in range(7)]
    for name in reversed(names):
        api.create_bucket(name)
    walked = _walk(api, "/buckets", "PackerService_ListBuckets", "buckets", 3)
    assert [b["name"] for b in walked] == names  # default order: name
    walked_desc = _walk(
        api, "/buckets?sorting.order_by=name%20desc", "PackerService_ListBuckets", "buckets", 2
    )
    assert [b["name"] for b in walked_desc] == list(reversed(names))
    by_created = _walk(
        api, "/buckets?sorting.order_by=created_at", "PackerService_ListBuckets", "buckets", 4
    )
    assert [b["name"] for b in by_created] == list(reversed(names))


def test_previous_page_token_returns_the_earlier_page(api: Api) -> None:
    for i in range(5):
        api.create_bucket(f"b{i}")
    first = ok(api.get("/buckets?pagination.page_size=2"), "PackerService_ListBuckets")
    assert first["pagination"]["previous_page_token"] == ""
    second = ok(
        api.get(
            "/buckets?pagination.page_size=2&pagination.next_page_token="
            + first["pagination"]["next_page_token"]
        ),
        "PackerService_ListBuckets",
    )
    assert [b["name"] for b in second["buckets"]] == ["b2", "b3"]
    back = ok(
        api.get(
            "/buckets?pagination.page_size=2&pagination.previous_page_token="
            + second["pagination"]["previous_page_token"]
        ),
        "PackerService_ListBuckets",
    )
    assert [b["name"] for b in back["buckets"]] == ["b0", "b1"]
    assert back["pagination"]["previous_page_token"] == ""
    assert back["pagination"]["next_page_token"]


def test_page_tokens_are_opaque(api: Api) -> None:
    for i in range(3):
        api.create_bucket(f"secret-name-{i}")
    token = ok(api.get("/buckets?pagination.page_size=1"), "PackerService_ListBuckets")[
        "pagination"
    ]["next_page_token"]
    assert "secret-name" not in token
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert_status(api.get(f"/buckets?pagination.next_page_token={tampered}"), 400, 3)


def test_page_size_zero_means_default(api: Api) -> None:
    for i in range(3):
        api.create_bucket(f"b{i}")
    body = ok(api.get("/buckets?pagination.page_size=0"), "PackerService_ListBuckets")
    assert len(body["buckets"]) == 3
    assert body["pagination"]["next_page_token"] == ""


def test_version_listing_sorts_and_pages(api: Api) -> None:
    api.create_bucket("golden")
    for i in range(5):
        api.complete_version("golden", f"f{i}")
    api.create_version("golden", "pending")
    newest_first = _walk(
        api, "/buckets/golden/versions", "PackerService_ListVersions", "versions", 2
    )
    assert [v["fingerprint"] for v in newest_first] == ["pending", "f4", "f3", "f2", "f1", "f0"]
    by_name = _walk(
        api,
        "/buckets/golden/versions?sorting.order_by=name%20desc",
        "PackerService_ListVersions",
        "versions",
        4,
    )
    assert [v["name"] for v in by_name] == ["v5", "v4", "v3", "v2", "v1", "v0"]
    assert all(v["builds"] for v in by_name if v["name"] != "v0")
    by_fp = _walk(
        api,
        "/buckets/golden/versions?sorting.order_by=fingerprint",
        "PackerService_ListVersions",
        "versions",
        5,
    )
    assert [v["fingerprint"] for v in by_fp] == ["f0", "f1", "f2", "f3", "f4", "pending"]


def test_build_listing_returns_all_builds_in_one_page_and_sorts(api: Api) -> None:
    api.create_bucket("golden")
    api.create_version("golden", "f")
    components = [f"c.{i:03d}" for i in range(120)]
    for component in components:
        api.create_build("golden", "f", component)
    body = ok(api.get("/buckets/golden/versions/f/builds"), "PackerService_ListBuilds")
    assert [b["component_type"] for b in body["builds"]] == components
    assert body["pagination"]["next_page_token"] == ""
    desc = ok(
        api.get("/buckets/golden/versions/f/builds?sorting.order_by=component_type%20desc"),
        "PackerService_ListBuilds",
    )
    assert [b["component_type"] for b in desc["builds"]] == list(reversed(components))
    paged = _walk(
        api, "/buckets/golden/versions/f/builds", "PackerService_ListBuilds", "builds", 50
    )
    assert [b["component_type"] for b in paged] == components

"""Restricted channels do not exist for viewers, in any read they can make.

One registry, read by an admin and by a viewer through every read endpoint (each
read repeated, so answers the read-response cache keeps for one are offered to
the other): the admin's answers show the restricted channels and what they
serve, the viewer's show neither — not by name or id, not through ancestry
edges recorded through them, not through `latest` (restricted, as on HCP) in
bucket summaries. Naming a restricted channel still answers 403/7, as HCP does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from packyard.domain.enums import Role
from tests.support import swagger
from tests.support.factories import Api, assert_status

SECRET = "hush-hush"  # a restricted user channel; its name must never reach a viewer
REPEAT = 3  # the read-response cache stores the second answer and serves the third


@dataclass
class Registry:
    secret_id: str
    base: list[dict[str, Any]]  # base-1, base-2 (base's `latest` serves base-2)
    app: dict[str, Any]  # app-1, built from base-1 taken from the restricted channel
    web: dict[str, Any]  # web-1, built from base-1 taken from the public channel


@pytest.fixture
def registry(api: Api) -> Registry:
    for name in ("base", "app", "web"):
        api.create_bucket(name)
    base = [api.complete_version("base", f"base-{i}") for i in (1, 2)]
    secret = api.ok(
        api.post(
            "/buckets/base/channels",
            {"name": SECRET, "restricted": True, "version_fingerprint": "base-1"},
        )
    )["channel"]
    public = api.ok(
        api.post("/buckets/base/channels", {"name": "open", "version_fingerprint": "base-1"})
    )["channel"]
    app = api.complete_version("app", "app-1", parent=(base[0]["id"], secret["id"]))
    web = api.complete_version("web", "web-1", parent=(base[0]["id"], public["id"]))
    api.ok(api.post("/buckets/app/channels", {"name": "stable", "version_fingerprint": "app-1"}))
    # The restricted channel moves on: app-1's parent is now out of date through it.
    api.ok(
        api.patch(
            f"/buckets/base/channels/{SECRET}",
            {"version_fingerprint": "base-2", "update_mask": "versionFingerprint"},
        )
    )
    return Registry(secret_id=secret["id"], base=base, app=app, web=web)


@pytest.fixture
def viewer(api: Api) -> Iterator[Api]:
    client = api.as_role(Role.VIEWER)
    yield client
    client.close()


def read(client: Api, operation: str, path: str, **params: str) -> dict[str, Any]:
    """The answer to ``path``, asked :data:`REPEAT` times; every answer must be the same."""
    bodies = []
    for _ in range(REPEAT):
        response = client.get(path, params=params)
        bodies.append(_checked(client, response, operation))
    assert all(b == bodies[0] for b in bodies), "a repeated read changed its answer"
    return bodies[0]


def _checked(client: Api, response: httpx.Response, operation: str) -> dict[str, Any]:
    body = client.ok(response)
    swagger.validate(operation, body)
    if client.role is Role.VIEWER:
        assert SECRET not in response.text, response.text
    return body


def by_child(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["child"]["version_fingerprint"]: r for r in body["relations"]}


def test_ancestry_hides_restricted_channels_and_latest(
    api: Api, viewer: Api, registry: Registry
) -> None:
    op = "PackerService_ListBucketAncestry"
    # The admin sees the restricted channel's name and the version it serves now.
    children = by_child(read(api, op, "/buckets/base/ancestry"))
    assert children["app-1"]["parent"]["channel_name"] == SECRET
    assert children["app-1"]["parent"]["channel_version"]["fingerprint"] == "base-2"
    assert children["app-1"]["status"] == "OUT_OF_DATE"
    parents = read(api, op, "/buckets/app/ancestry")  # parents of the version on `latest`
    assert [r["child"]["version_fingerprint"] for r in parents["relations"]] == ["app-1"]

    # The viewer sees the edge, recorded through no channel it can see.
    seen = read(viewer, op, "/buckets/base/ancestry")
    assert seen["total_count"] == 2
    children = by_child(seen)
    hidden = children["app-1"]
    assert hidden["parent"]["channel_name"] == ""
    assert hidden["parent"]["channel_version"] is None
    assert hidden["status"] == "UNDETERMINED"
    assert hidden["parent"]["version_fingerprint"] == "base-1"  # versions are not hidden
    shown = children["web-1"]
    assert shown["parent"]["channel_name"] == "open" and shown["status"] == "UP_TO_DATE"
    # `latest` is restricted: no default parents (they would name the version it serves).
    assert read(viewer, op, "/buckets/app/ancestry")["relations"] == []
    assert read(viewer, op, "/buckets/app/ancestry", type="ANCESTRY_TYPE_PARENTS") == {
        "relations": [],
        "total_count": 0,
        "pagination": {"next_page_token": "", "previous_page_token": ""},
    }
    # Asking for a version by fingerprint is fine; its parent channel stays hidden.
    asked = read(
        viewer,
        op,
        "/buckets/app/ancestry",
        type="ANCESTRY_TYPE_PARENTS",
        version_fingerprint="app-1",
    )
    assert [r["parent"]["channel_name"] for r in asked["relations"]] == [""]
    # Naming a restricted channel admits it exists, as GetChannel does.
    for name in (SECRET, "latest"):
        assert_status(viewer.get("/buckets/base/ancestry", params={"channel_name": name}), 403, 7)


def test_versions_and_channels_rate_parents_without_restricted_channels(
    api: Api, viewer: Api, registry: Registry
) -> None:
    reads = [
        ("PackerService_GetVersion", "/buckets/app/versions/app-1", lambda b: [b["version"]]),
        ("PackerService_ListVersions", "/buckets/app/versions", lambda b: b["versions"]),
        (
            "PackerService_GetChannel",
            "/buckets/app/channels/stable",
            lambda b: [b["channel"]["version"]],
        ),
        (
            "PackerService_ListChannels",
            "/buckets/app/channels",
            lambda b: [c["version"] for c in b["channels"] if c["name"] == "stable"],
        ),
        (
            "PackerService_ListChannelAssignmentHistory",
            "/buckets/app/channels/stable/history",
            lambda b: [e["version"] for e in b["history"]],
        ),
    ]
    for operation, path, versions in reads:
        assert [v["parents"]["status"] for v in versions(read(api, operation, path))] == [
            "OUT_OF_DATE"
        ], path
        assert [v["parents"]["status"] for v in versions(read(viewer, operation, path))] == [
            "UNDETERMINED"
        ], path
    # Builds never name their parent channel.
    for operation, path in (
        ("PackerService_ListBuilds", "/buckets/app/versions/app-1/builds"),
        (
            "PackerService_GetBuild",
            f"/buckets/app/versions/app-1/builds/{registry.app['builds'][0]['id']}",
        ),
    ):
        assert registry.secret_id not in viewer.get(path).text
        read(viewer, operation, path)


def test_buckets_show_no_latest_version_behind_a_restricted_latest(
    api: Api, viewer: Api, registry: Registry
) -> None:
    base = read(api, "PackerService_GetBucket", "/buckets/base")["bucket"]
    assert base["latest_version"]["id"] == registry.base[1]["id"]
    assert base["children"]["status"] == "OUT_OF_DATE"  # through the restricted channel
    app = read(api, "PackerService_GetBucket", "/buckets/app")["bucket"]
    assert app["latest_version"]["id"] == registry.app["id"]
    assert app["parents"]["status"] == "OUT_OF_DATE"

    listed = {
        b["name"]: b for b in read(viewer, "PackerService_ListBuckets", "/buckets")["buckets"]
    }
    for name in ("base", "app", "web"):
        got = read(viewer, "PackerService_GetBucket", f"/buckets/{name}")["bucket"]
        assert got == listed[name]
        assert got["latest_version"] is None, name
        assert got["platforms"] == []
        assert "parents" not in got  # the ancestry of the version on `latest`
        assert got["version_count"] == ("2" if name == "base" else "1")
    # Base's children: the edge through the restricted channel is undetermined for the viewer.
    assert listed["base"]["children"]["status"] == "UP_TO_DATE"

    # Lifting the restriction of `latest` (as the Terraform provider can) shows it again.
    api.ok(api.patch("/buckets/base/channels/latest", {"update_mask": "restricted"}))
    got = read(viewer, "PackerService_GetBucket", "/buckets/base")["bucket"]
    assert got["latest_version"]["id"] == registry.base[1]["id"]
    assert "latest" in {
        c["name"]
        for c in read(viewer, "PackerService_ListChannels", "/buckets/base/channels")["channels"]
    }


def test_channel_reads_and_search(api: Api, viewer: Api, registry: Registry) -> None:
    names = {
        c["name"]
        for c in read(api, "PackerService_ListChannels", "/buckets/base/channels")["channels"]
    }
    assert names == {"latest", SECRET, "open"}
    names = {
        c["name"]
        for c in read(viewer, "PackerService_ListChannels", "/buckets/base/channels")["channels"]
    }
    assert names == {"open"}
    for name in (SECRET, "latest"):
        for suffix in ("", "/history"):
            for _ in range(REPEAT):
                assert_status(viewer.get(f"/buckets/base/channels/{name}{suffix}"), 403, 7)
    artifact = registry.app["builds"][0]["artifacts"][0]["external_identifier"]
    for _ in range(REPEAT):
        response = viewer.post("/_search/external_artifact", {"external_identifier": artifact})
        body = _checked(viewer, response, "PackerService_SearchExternalArtifact")
        assert [hit["version"]["id"] for hit in body["artifacts"]] == [registry.app["id"]]
        assert registry.secret_id not in response.text


def test_lifting_the_restriction_shows_the_channel_everywhere(
    api: Api, viewer: Api, registry: Registry
) -> None:
    assert (
        by_child(read(viewer, "PackerService_ListBucketAncestry", "/buckets/base/ancestry"))[
            "app-1"
        ]["status"]
        == "UNDETERMINED"
    )
    api.ok(api.patch(f"/buckets/base/channels/{SECRET}", {"update_mask": "restricted"}))
    relations = viewer.ok(viewer.get("/buckets/base/ancestry"))
    edge = by_child(relations)["app-1"]
    assert edge["parent"]["channel_name"] == SECRET and edge["status"] == "OUT_OF_DATE"
    version = viewer.ok(viewer.get("/buckets/app/versions/app-1"))["version"]
    assert version["parents"]["status"] == "OUT_OF_DATE"

"""SearchExternalArtifact: reverse lookup from a cloud image id to bucket, version and build."""

from __future__ import annotations

from typing import Any

from packyard.domain.enums import Role
from packyard.services.container import Services
from tests.support import swagger
from tests.support.factories import Api, assert_status, make_tenant
from tests.support.store_state import set_revocation

SEARCH = "/_search/external_artifact"


def search(api: Api, body: dict[str, Any], **params: str) -> dict[str, Any]:
    out = api.ok(api.request("POST", SEARCH, body, params=params))
    swagger.validate("PackerService_SearchExternalArtifact", out)
    return out


def push(
    api: Api,
    bucket: str,
    fp: str,
    builds: dict[str, tuple[str, list[tuple[str, str]]]],
) -> dict[str, Any]:
    """A complete version: component → (platform, [(external_identifier, region)])."""
    api.create_version(bucket, fp)
    created = {c: api.create_build(bucket, fp, c) for c in builds}
    for component, (platform, arts) in builds.items():
        api.finish_build(
            bucket,
            fp,
            created[component]["id"],
            platform=platform,
            artifacts=[{"external_identifier": e, "region": r} for e, r in arts],
        )
    version: dict[str, Any] = api.ok(api.get(f"/buckets/{bucket}/versions/{fp}"))["version"]
    return version


def test_finds_the_producing_build_across_buckets_newest_first(
    api: Api, services: Services
) -> None:
    api.create_bucket("web", labels={"team": "web"})
    api.create_bucket("db")
    old = push(api, "web", "web-1", {"amazon-ebs.a": ("aws", [("ami-shared", "us-east-1")])})
    new = push(
        api,
        "db",
        "db-1",
        {
            "amazon-ebs.a": ("aws", [("ami-shared", "us-east-1"), ("ami-other", "eu-west-1")]),
            "docker.b": ("docker", [("sha256:abc", "docker")]),
        },
    )
    push(api, "web", "web-2", {"amazon-ebs.a": ("aws", [("ami-unrelated", "us-east-1")])})
    revoked_at = set_revocation(services.store, old["id"], message="CVE", author="sec")

    body = search(api, {"external_identifier": "ami-shared"})
    assert body["pagination"] == {"next_page_token": "", "previous_page_token": ""}
    hits = body["artifacts"]
    assert [h["version"]["fingerprint"] for h in hits] == ["db-1", "web-1"]

    db_hit, web_hit = hits
    assert db_hit["bucket"] == {"id": bucket_id(api, "db"), "name": "db", "labels": {}}
    assert web_hit["bucket"]["labels"] == {"team": "web"}
    db_build = next(b for b in new["builds"] if b["component_type"] == "amazon-ebs.a")
    assert db_hit["build"] == db_build, "the whole build, with all its artifacts"
    assert db_hit["version"] == {
        "id": new["id"],
        "name": "v1",
        "status": "VERSION_ACTIVE",
        "author_id": "admin-sp",
        "fingerprint": "db-1",
        "revoke_at": None,
        "revocation_message": "",
        "revocation_author": "",
        "revocation_type": "REVOCATION_TYPE_UNSET",
    }
    assert web_hit["version"]["status"] == "VERSION_REVOKED"
    assert web_hit["version"]["revoke_at"].startswith(revoked_at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert web_hit["version"]["revocation_message"] == "CVE"
    assert web_hit["version"]["revocation_author"] == "sec"
    assert web_hit["version"]["revocation_type"] == "MANUAL"

    # Exact-match filters.
    assert [
        h["version"]["fingerprint"]
        for h in search(
            api, {"external_identifier": "ami-shared", "region": "us-east-1", "platform": "aws"}
        )["artifacts"]
    ] == ["db-1", "web-1"]
    assert (
        search(api, {"external_identifier": "ami-shared", "region": "eu-west-1"})["artifacts"] == []
    )
    assert (
        search(api, {"external_identifier": "ami-shared", "platform": "docker"})["artifacts"] == []
    )
    assert search(api, {"external_identifier": "ami-SHARED"})["artifacts"] == []
    assert search(api, {"external_identifier": "ami-share"})["artifacts"] == []
    docker = search(api, {"external_identifier": "sha256:abc", "platform": "docker"})["artifacts"]
    assert [h["build"]["component_type"] for h in docker] == ["docker.b"]
    # Viewers may search.
    viewer = api.as_role(Role.VIEWER)
    try:
        assert len(search(viewer, {"external_identifier": "ami-shared"})["artifacts"]) == 2
    finally:
        viewer.close()


def bucket_id(api: Api, name: str) -> str:
    bid: str = api.ok(api.get(f"/buckets/{name}"))["bucket"]["id"]
    return bid


def test_incomplete_versions_are_found_with_their_status(api: Api) -> None:
    api.create_bucket("web")
    api.create_version("web", "web-open")
    done = api.create_build("web", "web-open", "null.a")
    api.create_build("web", "web-open", "null.b")
    api.finish_build(
        "web",
        "web-open",
        done["id"],
        artifacts=[{"external_identifier": "img-1", "region": "r"}],
    )
    (hit,) = search(api, {"external_identifier": "img-1"})["artifacts"]
    assert hit["version"]["name"] == "v0"
    assert hit["version"]["status"] == "VERSION_INCOMPLETE"
    assert hit["build"]["status"] == "BUILD_DONE"


def test_results_are_paginated(api: Api) -> None:
    api.create_bucket("web")
    fps = [f"fp-{i}" for i in range(5)]
    for fp in fps:
        push(api, "web", fp, {"null.a": ("null", [("Null", "null")])})
    pages = []
    token = ""
    while True:
        params = {"pagination.page_size": "2"}
        if token:
            params["pagination.next_page_token"] = token
        page = search(api, {"external_identifier": "Null"}, **params)
        pages.append(page)
        token = page["pagination"]["next_page_token"]
        if not token:
            break
    assert [len(p["artifacts"]) for p in pages] == [2, 2, 1]
    assert [h["version"]["fingerprint"] for p in pages for h in p["artifacts"]] == list(
        reversed(fps)
    )
    back = search(
        api,
        {"external_identifier": "Null"},
        **{
            "pagination.page_size": "2",
            "pagination.previous_page_token": pages[1]["pagination"]["previous_page_token"],
        },
    )
    assert back["artifacts"] == pages[0]["artifacts"]
    # A token belongs to its search: another identifier refuses it.
    assert_status(
        api.request(
            "POST",
            SEARCH,
            {"external_identifier": "other"},
            params={"pagination.next_page_token": pages[0]["pagination"]["next_page_token"]},
        ),
        400,
        3,
    )


def test_external_identifier_is_required(api: Api) -> None:
    for body in ({}, {"external_identifier": ""}, {"platform": "aws", "region": "us-east-1"}):
        err = assert_status(api.post(SEARCH, body), 400, 3)
        assert "external_identifier" in err["message"]
        assert err["details"][0]["field_violations"][0]["field"] == "external_identifier"


def test_other_projects_are_invisible(api: Api, services: Services) -> None:
    api.create_bucket("web")
    push(api, "web", "web-1", {"null.a": ("null", [("img-shared", "r")])})
    other = Api(api.base_url, make_tenant(services))
    try:
        other.create_bucket("web")
        push(other, "web", "web-1", {"null.a": ("null", [("img-shared", "r")])})
        mine = search(api, {"external_identifier": "img-shared"})["artifacts"]
        theirs = search(other, {"external_identifier": "img-shared"})["artifacts"]
    finally:
        other.close()
    assert len(mine) == 1 and len(theirs) == 1
    assert mine[0]["version"]["id"] != theirs[0]["version"]["id"]
    assert mine[0]["bucket"]["id"] == bucket_id(api, "web")


def test_deleted_versions_disappear_from_results(api: Api) -> None:
    api.create_bucket("web")
    push(api, "web", "web-1", {"null.a": ("null", [("img-1", "r")])})
    push(api, "web", "web-2", {"null.a": ("null", [("img-1", "r")])})
    api.ok(api.delete("/buckets/web/versions/web-1"))
    hits = search(api, {"external_identifier": "img-1"})["artifacts"]
    assert [h["version"]["fingerprint"] for h in hits] == ["web-2"]

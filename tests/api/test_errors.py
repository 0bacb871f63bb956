"""Every error code the core answers, with the grpc-gateway HTTP status and a Status body."""

from __future__ import annotations

import uuid

import pytest

from tests.support.factories import Api, assert_status
from tests.support.wire import ok

MISSING_VERSION_ROUTES = [
    ("GET", "/buckets/b/versions/nope", None),
    ("PATCH", "/buckets/b/versions/nope", {"complete": True}),
    ("GET", "/buckets/b/versions/nope/builds", None),
    ("POST", "/buckets/b/versions/nope/builds", {"component_type": "null.a"}),
    ("GET", "/buckets/b/versions/nope/builds/01HZZZZZZZZZZZZZZZZZZZZZZZ", None),
    (
        "PATCH",
        "/buckets/b/versions/nope/builds/01HZZZZZZZZZZZZZZZZZZZZZZZ",
        {"status": "BUILD_RUNNING"},
    ),
    ("DELETE", "/buckets/b/versions/nope/builds/01HZZZZZZZZZZZZZZZZZZZZZZZ", None),
]

MISSING_BUCKET_ROUTES = [
    ("GET", "/buckets/nope", None),
    ("PATCH", "/buckets/nope", {"description": "x"}),
    ("DELETE", "/buckets/nope", None),
    ("GET", "/buckets/nope/versions", None),
    ("POST", "/buckets/nope/versions", {"fingerprint": "f", "template_type": "HCL2"}),
    ("GET", "/buckets/nope/versions/f", None),
    ("DELETE", "/buckets/nope/versions/f", None),
    ("GET", "/buckets/nope/versions/f/builds", None),
    ("POST", "/buckets/nope/versions/f/builds", {"component_type": "null.a"}),
]


@pytest.mark.parametrize(("method", "path", "body"), MISSING_BUCKET_ROUTES)
def test_missing_bucket_is_404_code_5(api: Api, method: str, path: str, body: object) -> None:
    body_out = assert_status(api.request(method, path, body), 404, 5)
    assert "nope" in body_out["message"]


@pytest.mark.parametrize(("method", "path", "body"), MISSING_VERSION_ROUTES)
def test_missing_version_is_409_code_10(api: Api, method: str, path: str, body: object) -> None:
    api.create_bucket("b")
    assert_status(api.request(method, path, body), 409, 10)


def test_get_version_message_names_fingerprint(api: Api) -> None:
    api.create_bucket("b")
    body = assert_status(api.get("/buckets/b/versions/fp-x"), 409, 10)
    assert body["message"] == "Version with fingerprint fp-x not found"
    assert body["details"] == []


def test_delete_missing_version_is_404_code_5(api: Api) -> None:
    api.create_bucket("b")
    body = assert_status(api.delete("/buckets/b/versions/fp-x"), 404, 5)
    assert "fp-x" in body["message"]


def test_missing_build_is_404_code_5(api: Api) -> None:
    api.create_bucket("b")
    api.create_version("b", "f")
    missing = "/buckets/b/versions/f/builds/01HZZZZZZZZZZZZZZZZZZZZZZZ"
    for method, body in (("GET", None), ("PATCH", {"status": "BUILD_RUNNING"}), ("DELETE", None)):
        out = assert_status(api.request(method, missing, body), 404, 5)
        assert "01HZZZZZZZZZZZZZZZZZZZZZZZ" in out["message"]


def test_build_of_another_version_is_not_found(api: Api) -> None:
    api.create_bucket("b")
    api.create_version("b", "f1")
    api.create_version("b", "f2")
    build = api.create_build("b", "f1", "null.a")
    assert_status(api.get(f"/buckets/b/versions/f2/builds/{build['id']}"), 404, 5)
    ok(api.get(f"/buckets/b/versions/f1/builds/{build['id']}"), "PackerService_GetBuild")


def test_already_exists_is_409_code_6(api: Api) -> None:
    api.create_bucket("b")
    assert_status(api.put("/buckets", {"name": "b"}), 409, 6)
    api.create_version("b", "f")
    assert_status(
        api.post("/buckets/b/versions", {"fingerprint": "f", "template_type": "HCL2"}), 409, 6
    )
    api.create_build("b", "f", "null.a")
    assert_status(api.post("/buckets/b/versions/f/builds", {"component_type": "null.a"}), 409, 6)
    assert_status(api.put("/registry", {}), 409, 6)


def test_template_type_is_immutable(api: Api) -> None:
    api.create_bucket("b")
    api.create_version("b", "f", "HCL2")
    assert_status(
        api.post("/buckets/b/versions", {"fingerprint": "f", "template_type": "JSON"}), 409, 6
    )
    # UpdateVersion has no template_type: one sent along with `complete` is ignored
    build = api.create_build("b", "f", "null.a")
    api.create_build("b", "f", "null.b")
    api.finish_build("b", "f", build["id"])
    forced = ok(
        api.patch("/buckets/b/versions/f", {"complete": True, "template_type": "JSON"}),
        "PackerService_UpdateVersion",
    )
    assert forced["version"]["name"] == "v1"
    got = ok(api.get("/buckets/b/versions/f"), "PackerService_GetVersion")
    assert got["version"]["template_type"] == "HCL2"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/buckets", {}),
        ("PUT", "/buckets", {"name": ""}),
        ("PUT", "/buckets", {"name": "bad name!"}),
        ("PUT", "/buckets", {"name": "ok", "labels": {"k": 1}}),
        ("PUT", "/buckets", {"name": "ok", "labels": ["x"]}),
        ("PUT", "/buckets", [1, 2]),
        ("PUT", "/buckets", "text"),
        ("POST", "/buckets/b/versions", {"template_type": "HCL2"}),
        ("POST", "/buckets/b/versions", {"fingerprint": "f"}),
        (
            "POST",
            "/buckets/b/versions",
            {"fingerprint": "f", "template_type": "TEMPLATE_TYPE_UNSET"},
        ),
        ("POST", "/buckets/b/versions", {"fingerprint": "f", "template_type": "YAML"}),
        ("POST", "/buckets/b/versions", {"fingerprint": "bad fp", "template_type": "HCL2"}),
        ("POST", "/buckets/b/versions/v/builds", {}),
        ("POST", "/buckets/b/versions/v/builds", {"component_type": "x", "status": "DONE"}),
        ("PATCH", "/registry", {"update_mask": "nope", "activated": True}),
        ("PATCH", "/buckets/b/versions/v", {"complete": True, "revoke_in": "1d"}),
    ],
)
def test_invalid_argument_is_400_code_3(api: Api, method: str, path: str, body: object) -> None:
    api.create_bucket("b")
    api.create_version("b", "v")
    assert_status(api.request(method, path, body), 400, 3)


def test_malformed_json_is_400_code_3(api: Api) -> None:
    response = api.http.put(
        api.prefix + "/buckets",
        content=b'{"name": "x"',
        headers={**api.headers(), "Content-Type": "application/json"},
    )
    body = assert_status(response, 400, 3)
    assert "JSON" in body["message"]


def test_field_violation_detail_has_no_code_key(api: Api) -> None:
    body = assert_status(api.put("/buckets", {"name": "bad name!"}), 400, 3)
    assert body["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert body["details"][0]["field_violations"][0]["field"] == "name"
    assert "code" not in str(body["details"])


@pytest.mark.parametrize(
    "query",
    [
        "pagination.page_size=abc",
        "pagination.page_size=-1",
        "pagination.page_size=100000",
        "pagination.next_page_token=garbage",
        "pagination.previous_page_token=%00%01",
        "sorting.order_by=nope",
        "sorting.order_by=name%20sideways",
        "sorting.order_by=name%20asc%20desc",
        "pagination.next_page_token=a&pagination.previous_page_token=b",
    ],
)
def test_bad_listing_parameters_are_400_code_3(api: Api, query: str) -> None:
    api.create_bucket("b")
    assert_status(api.get(f"/buckets?{query}"), 400, 3)


def test_page_token_from_another_listing_is_refused(api: Api) -> None:
    for name in ("a1", "a2", "a3"):
        api.create_bucket(name)
    token = ok(api.get("/buckets?pagination.page_size=1"), "PackerService_ListBuckets")[
        "pagination"
    ]["next_page_token"]
    assert token
    api.create_version("a1", "f")
    assert_status(api.get(f"/buckets/a1/versions?pagination.next_page_token={token}"), 400, 3)
    # same listing, other sort order: also refused
    assert_status(
        api.get(f"/buckets?sorting.order_by=name%20desc&pagination.next_page_token={token}"),
        400,
        3,
    )


def test_failed_precondition_is_400_code_9(api: Api) -> None:
    api.create_bucket("b")
    api.create_version("b", "f")
    build = api.create_build("b", "f", "null.a")
    other = api.create_build("b", "f", "null.b")
    path = f"/buckets/b/versions/f/builds/{build['id']}"
    # DONE needs at least one artifact
    assert_status(api.patch(path, {"status": "BUILD_DONE", "artifacts": None}), 400, 9)
    assert_status(api.patch(path, {"status": "BUILD_DONE", "artifacts": []}), 400, 9)
    # artifacts only with DONE
    assert_status(
        api.patch(
            path,
            {"status": "BUILD_RUNNING", "artifacts": [{"external_identifier": "a", "region": "r"}]},
        ),
        400,
        9,
    )
    # forcing completion needs a DONE build
    assert_status(api.patch("/buckets/b/versions/f", {"complete": True}), 400, 9)
    api.finish_build("b", "f", build["id"])
    # a DONE build cannot change any more
    assert_status(api.patch(path, {"status": "BUILD_RUNNING"}), 400, 9)
    assert_status(api.patch(path, {"status": "BUILD_FAILED"}), 400, 9)
    api.finish_build("b", "f", other["id"])
    # complete version: no new builds
    body = assert_status(
        api.post("/buckets/b/versions/f/builds", {"component_type": "null.c"}), 400, 9
    )
    assert "complete" in body["message"]


def test_invalid_artifacts_are_400_code_3(api: Api) -> None:
    api.create_bucket("b")
    api.create_version("b", "f")
    build = api.create_build("b", "f", "null.a")
    path = f"/buckets/b/versions/f/builds/{build['id']}"
    assert_status(api.patch(path, {"status": "BUILD_DONE", "artifacts": [{"region": "r"}]}), 400, 3)
    assert_status(
        api.patch(path, {"status": "BUILD_DONE", "artifacts": [{"external_identifier": "a\x00"}]}),
        400,
        3,
    )
    # nothing was recorded by the refused updates
    got = ok(api.get(path), "PackerService_GetBuild")["build"]
    assert got["status"] == "BUILD_UNSET"
    assert got["artifacts"] == []


def test_enforced_blocks_of_a_missing_bucket_are_code_5(api: Api) -> None:
    """Packer tolerates code 5 (and 12) on its one enforced-block call; nothing else."""
    assert_status(api.get("/enforced_blocks/bucket/missing"), 404, 5)
    api.create_bucket("b")
    assert ok(api.get("/enforced_blocks/bucket/b"), "PackerService_GetEnforcedBlocksByBucket") == {
        "enforced_block_detail": []
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/runtasks"),
        ("POST", "/buckets"),
        # the 2021-04-30 API is served (tests/api/test_api_20210430.py), not paths beyond it
        ("GET", "/packer/2021-04-30/organizations/o/projects/p/enforced_blocks"),
    ],
)
def test_unserved_packer_routes_are_code_12(api: Api, method: str, path: str) -> None:
    assert_status(api.request(method, path, None), 501, 12)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        # Project IAM policies (bucket policies are served: tests/api/test_iam.py).
        ("GET", "/resource-manager/2019-12-10/projects/p/iam-policy"),
        ("GET", "/resource-manager/2019-12-10/projects/count"),  # not ProjectService_Get
        ("GET", "/nope"),
        ("POST", "/"),  # GET / is the console
    ],
)
def test_unknown_routes_anywhere_are_code_12(api: Api, method: str, path: str) -> None:
    body = {"resource_name": "packer/project/p/bucket/b", "policy": {}} if method != "GET" else None
    for headers in (api.headers(), {}):  # with or without a token: nothing there either way
        response = api.http.request(method, path, json=body, headers=headers)
        assert_status(response, 501, 12)


def test_known_routes_keep_their_answers(api: Api) -> None:
    """Only unmatched routes changed: a missing object of a known route is still 404/5."""
    assert_status(api.get("/buckets/missing"), 404, 5)
    assert_status(api.get(f"/resource-manager/2019-12-10/projects/{uuid.uuid4()}"), 404, 5)
    assert api.http.get("/openapi.json").status_code == 200
    assert api.http.get("/docs").status_code == 200


def test_oversized_body_is_refused_with_status(api: Api) -> None:
    big = {"name": "b", "description": "x" * (5 * 1024 * 1024)}
    response = api.put("/buckets", big)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["code"] == 8


def test_builds_of_a_complete_version_never_change(api: Api) -> None:
    """A force-completed version keeps its never-run build as it is (no reopening)."""
    api.create_bucket("b")
    api.create_version("b", "f")
    ran = api.create_build("b", "f", "null.a")
    skipped = api.create_build("b", "f", "null.b")
    api.finish_build("b", "f", ran["id"])
    ok(api.patch("/buckets/b/versions/f", {"complete": True}), "PackerService_UpdateVersion")
    path = f"/buckets/b/versions/f/builds/{skipped['id']}"
    assert_status(api.patch(path, {"status": "BUILD_RUNNING"}), 400, 9)
    assert_status(
        api.patch(
            path,
            {"status": "BUILD_DONE", "artifacts": [{"external_identifier": "a", "region": "r"}]},
        ),
        400,
        9,
    )
    version = ok(api.get("/buckets/b/versions/f"), "PackerService_GetVersion")["version"]
    assert version["name"] == "v1"
    assert {b["component_type"]: b["status"] for b in version["builds"]} == {
        "null.a": "BUILD_DONE",
        "null.b": "BUILD_UNSET",
    }

"""Nothing a caller sends can break a read.

Values the response renderer (orjson) cannot write — integers beyond 64 bits, nesting
deeper than its recursion limit, lone surrogates, non-finite numbers — are refused with
400/3 naming the field before anything is stored, so every read of the project keeps
answering. Lone surrogates in any text field of any JSON body are refused the same way,
without an error (or traceback) in the log.

Bodies are hand-encoded: ``json.dumps`` (``ensure_ascii``) writes a lone surrogate as a
``\\ud800`` escape, which is how a client puts one on the wire.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import zstandard

from packyard.domain.enums import Role
from tests.support.factories import Api, assert_status, small_registry

INVALID = 3
LONE = "\ud800"
LOW = "\udfff"


def send(api: Api, method: str, path: str, body: Any) -> httpx.Response:
    """``body`` as JSON with lone surrogates escaped (``allow_nan``: NaN, Infinity)."""
    content = json.dumps(body).encode()
    headers = {**api.headers(), "content-type": "application/json"}
    return api.http.request(method, api.prefix + path, content=content, headers=headers)


def field_of(body: dict[str, Any]) -> str:
    details = body["details"]
    assert details and details[0]["@type"].endswith("google.rpc.BadRequest"), body
    return str(details[0]["field_violations"][0]["field"])


@pytest.fixture
def world(api: Api) -> dict[str, Any]:
    return small_registry(api)


def reads(api: Api) -> dict[str, Any]:
    """Every read of the project that renders what writes stored; each must answer 200."""
    viewer = api.as_role(Role.VIEWER)
    try:
        search = viewer.ok(
            viewer.post("/_search/external_artifact", {"external_identifier": "ami-none"})
        )
    finally:
        viewer.close()
    return {
        "registry": api.ok(api.get("/registry")),
        "buckets": api.ok(api.get("/buckets")),
        "bucket": api.ok(api.get("/buckets/golden")),
        "versions": api.ok(api.get("/buckets/golden/versions")),
        "v1": api.ok(api.get("/buckets/golden/versions/fp-1")),
        "open": api.ok(api.get("/buckets/golden/versions/fp-open")),
        "builds": api.ok(api.get("/buckets/golden/versions/fp-open/builds")),
        "channels": api.ok(api.get("/buckets/golden/channels")),
        "latest": api.ok(api.get("/buckets/golden/channels/latest")),
        "prod": api.ok(api.get("/buckets/golden/channels/prod")),
        "history": api.ok(api.get("/buckets/golden/channels/prod/history")),
        "ancestry": api.ok(api.get("/buckets/golden/ancestry")),
        "search": search,
    }


@pytest.fixture
def unchanged(api: Api, world: dict[str, Any], caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    before = reads(api)
    caplog.set_level(logging.INFO)
    caplog.clear()
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    assert reads(api) == before


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


# --- build metadata: free-form JSON -------------------------------------------------------

UNRENDERABLE_METADATA = [
    {"packer": {"n": 2**64}},
    {"packer": {"n": -(2**63) - 1}},
    {"packer": {"n": [1, 2, 10**30]}},
    {"vcs": {"deep": nested(300)}},
    {"cicd": {"deep": nested(120)}},
    {"packer": {"s": "a" + LONE}},
    {"packer": {"list": ["ok", LOW]}},
    {"packer": {"key" + LONE: 1}},
    {"cicd": {"details": {LONE: "v"}}},
    {"packer": {"f": float("nan")}},
    {"packer": {"f": float("inf")}},
    {"packer": {"f": float("-inf")}},
    {"packer": {"big": "x" * (70 * 1024)}},
    {"packer": {"many": [0] * 40_000}},
]


@pytest.mark.parametrize("metadata", UNRENDERABLE_METADATA, ids=range(len(UNRENDERABLE_METADATA)))
def test_unrenderable_metadata_is_refused(
    api: Api, world: dict[str, Any], unchanged: None, metadata: dict[str, Any]
) -> None:
    build_id = world["open_build"]["id"]
    body = {"status": "BUILD_RUNNING", "metadata": metadata}
    path = f"/buckets/golden/versions/fp-open/builds/{build_id}"
    got = assert_status(send(api, "PATCH", path, body), 400, INVALID)
    assert field_of(got).startswith("metadata"), got
    create = {"component_type": "b.new", "status": "BUILD_RUNNING", "metadata": metadata}
    got = assert_status(
        send(api, "POST", "/buckets/golden/versions/fp-open/builds", create), 400, INVALID
    )
    assert field_of(got).startswith("metadata"), got


def test_metadata_at_the_limits_is_stored_and_read_back(api: Api, world: dict[str, Any]) -> None:
    metadata = {
        "packer": {
            "max": 2**64 - 1,
            "min": -(2**63),
            "float": 1.5e308,
            "deep": nested(60),
            "emoji": "\U0001f600 and \u00e9",
            "\U0001f511": "non-BMP key",
        },
        "cicd": None,
        "vcs": {"details": {"author": "A <a@example.com>"}},
    }
    build_id = world["open_build"]["id"]
    path = f"/buckets/golden/versions/fp-open/builds/{build_id}"
    got = api.ok(send(api, "PATCH", path, {"status": "BUILD_RUNNING", "metadata": metadata}))
    assert got["build"]["metadata"] == metadata
    again = api.ok(api.get(path))["build"]
    assert again["metadata"] == metadata
    reads(api)


# --- lone surrogates in text fields ---------------------------------------------------------


def _sbom() -> str:
    doc = json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5"}).encode()
    return base64.b64encode(zstandard.ZstdCompressor().compress(doc)).decode()


def text_fields(open_build: str) -> list[tuple[str, str, dict[str, Any], str]]:
    """(method, path, body, field) with a lone surrogate in ``field``."""
    builds = "/buckets/golden/versions/fp-open/builds"
    build = f"{builds}/{open_build}"
    x = "x" + LONE
    return [
        ("PUT", "/buckets", {"name": x}, "name"),
        ("PUT", "/buckets", {"name": "new", "description": x}, "description"),
        ("PUT", "/buckets", {"name": "new", "labels": {"k": x}}, "labels"),
        ("PUT", "/buckets", {"name": "new", "labels": {x: "v"}}, "labels"),
        ("PATCH", "/buckets/golden", {"description": x}, "description"),
        ("PATCH", "/buckets/golden", {"labels": {"os": x}}, "labels"),
        ("PATCH", "/buckets/golden", {"labels": {x: "linux"}}, "labels"),
        ("PATCH", "/buckets/golden", {"platforms": [x]}, "platforms"),
        (
            "POST",
            "/buckets/golden/versions",
            {"fingerprint": x, "template_type": "HCL2"},
            "fingerprint",
        ),
        (
            "PATCH",
            "/buckets/golden/versions/fp-1",
            {"revoke_in": "1h", "revocation_message": x},
            "revocation_message",
        ),
        ("PATCH", "/buckets/golden/versions/fp-1", {"revoke_in": x}, "revoke_in"),
        ("POST", builds, {"component_type": x}, "component_type"),
        ("POST", builds, {"component_type": "c.new", "platform": x}, "platform"),
        ("POST", builds, {"component_type": "c.new", "packer_run_uuid": x}, "packer_run_uuid"),
        ("POST", builds, {"component_type": "c.new", "labels": {x: "v"}}, "labels"),
        ("POST", builds, {"component_type": "c.new", "parent_version_id": x}, "parent_version_id"),
        ("PATCH", build, {"status": "BUILD_RUNNING", "platform": x}, "platform"),
        ("PATCH", build, {"source_external_identifier": x}, "source_external_identifier"),
        ("PATCH", build, {"parent_channel_id": x}, "parent_channel_id"),
        ("PATCH", build, {"labels": {"git_sha": x}}, "labels"),
        (
            "PATCH",
            build,
            {"status": "BUILD_DONE", "artifacts": [{"external_identifier": x, "region": "r"}]},
            "artifacts",
        ),
        (
            "PATCH",
            build,
            {"status": "BUILD_DONE", "artifacts": [{"external_identifier": "ami", "region": x}]},
            "artifacts",
        ),
        ("POST", "/buckets/golden/channels", {"name": x}, "name"),
        (
            "POST",
            "/buckets/golden/channels",
            {"name": "c", "version_fingerprint": x},
            "version_fingerprint",
        ),
        (
            "PATCH",
            "/buckets/golden/channels/prod",
            {"version_fingerprint": x, "update_mask": "versionFingerprint"},
            "version_fingerprint",
        ),
        ("PATCH", "/buckets/golden/channels/prod", {"update_mask": x}, "update_mask"),
        (
            "POST",
            "/buckets/golden/channels/assign",
            {"source_channel": x, "target_channel": "prod"},
            "source_channel",
        ),
        (
            "PUT",
            f"{build}/sboms",
            {"compressed_sbom": _sbom(), "format": "CYCLONEDX", "name": x},
            "name",
        ),
        ("PATCH", "/registry", {"update_mask": x, "activated": True}, "update_mask"),
        ("POST", "/_search/external_artifact", {"external_identifier": x}, "external_identifier"),
        (
            "POST",
            "/_search/external_artifact",
            {"external_identifier": "a", "platform": x},
            "platform",
        ),
        ("POST", "/_search/external_artifact", {"external_identifier": "a", "region": x}, "region"),
        # Ignored fields carry text too: the whole body must be valid Unicode.
        ("PUT", "/buckets", {"name": "new", "unknown": {"k": [x]}}, "unknown"),
    ]


def test_lone_surrogates_in_text_fields_are_refused(
    api: Api, world: dict[str, Any], unchanged: None
) -> None:
    for method, path, body, field in text_fields(world["open_build"]["id"]):
        response = send(api, method, path, body)
        got = assert_status(response, 400, INVALID)
        assert field_of(got).startswith(field), (method, path, body, got)


def test_a_viewer_search_with_a_lone_surrogate_is_refused(
    api: Api, world: dict[str, Any], unchanged: None
) -> None:
    viewer = api.as_role(Role.VIEWER)
    try:
        body = {"external_identifier": "ami-" + LONE}
        got = assert_status(send(viewer, "POST", "/_search/external_artifact", body), 400, INVALID)
        assert field_of(got) == "external_identifier"
    finally:
        viewer.close()


def test_raw_utf8_encoded_surrogates_are_refused(
    api: Api, world: dict[str, Any], unchanged: None
) -> None:
    """A surrogate encoded straight into the bytes (CESU-8 style): JSON decoding lets it in."""
    content = b'{"description": "x\xed\xa0\x80"}'
    headers = {**api.headers(), "content-type": "application/json"}
    response = api.http.patch(api.prefix + "/buckets/golden", content=content, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == INVALID


def test_surrogate_pairs_are_fine(api: Api, world: dict[str, Any]) -> None:
    """An escaped pair is one non-BMP character: stored and read back as such."""
    labels = {"emoji": "\U0001f600", "\U0001f511": "key"}
    got = api.ok(
        send(api, "PATCH", "/buckets/golden", {"description": "\U0001f4e6", "labels": labels})
    )
    assert got["bucket"]["labels"] == labels
    assert api.ok(api.get("/buckets/golden"))["bucket"]["description"] == "\U0001f4e6"
    reads(api)

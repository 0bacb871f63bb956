"""Channels over real HTTP: the managed `latest`, user channels, masks, visibility, history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from packyard.domain.enums import Role
from packyard.domain.rules import utcnow
from packyard.services.container import Services
from tests.support import swagger
from tests.support.factories import Api, assert_status, unique
from tests.support.store_state import set_revocation

MASK_MISSING_MESSAGE = "body: (update_mask: field mask: must be set.)."


def channels_path(bucket: str) -> str:
    return f"/buckets/{bucket}/channels"


def channel_path(bucket: str, name: str) -> str:
    return f"/buckets/{bucket}/channels/{name}"


def get_channel(api: Api, bucket: str, name: str) -> dict[str, Any]:
    body = api.ok(api.get(channel_path(bucket, name)))
    swagger.validate("PackerService_GetChannel", body)
    channel: dict[str, Any] = body["channel"]
    return channel


def list_channels(api: Api, bucket: str) -> dict[str, dict[str, Any]]:
    body = api.ok(api.get(channels_path(bucket)))
    swagger.validate("PackerService_ListChannels", body)
    return {c["name"]: c for c in body["channels"]}


def create_channel(api: Api, bucket: str, name: str, **fields: Any) -> dict[str, Any]:
    body = api.ok(api.post(channels_path(bucket), {"name": name, **fields}))
    swagger.validate("PackerService_CreateChannel", body)
    assert body["channel"] is not None
    channel: dict[str, Any] = body["channel"]
    return channel


def update_channel(api: Api, bucket: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    out = api.ok(api.patch(channel_path(bucket, name), body))
    swagger.validate("PackerService_UpdateChannel", out)
    assert out["channel"] is not None and out["channel"]["id"]
    channel: dict[str, Any] = out["channel"]
    return channel


def history(api: Api, bucket: str, name: str, **params: str) -> dict[str, Any]:
    body = api.ok(api.get(channel_path(bucket, name) + "/history", params=params))
    swagger.validate("PackerService_ListChannelAssignmentHistory", body)
    return body


def incomplete_version(api: Api, bucket: str) -> str:
    fp = unique("fp-open")
    api.create_version(bucket, fp)
    api.create_build(bucket, fp, "null.a")
    return fp


def assert_full_version(embedded: dict[str, Any], expected: dict[str, Any]) -> None:
    """The embedded version carries everything GetVersion does, builds and artifacts included."""
    assert embedded["id"] == expected["id"]
    assert embedded["fingerprint"] == expected["fingerprint"]
    assert embedded["name"] == expected["name"]
    assert embedded["status"] == expected["status"]
    assert embedded["builds"], "builds are embedded"
    assert embedded["builds"] == expected["builds"]
    for build in embedded["builds"]:
        assert build["version_id"] == expected["id"]
        assert build["status"]
        assert build["artifacts"], "artifacts are embedded"


# --- the managed `latest` channel ---------------------------------------------------------


def test_latest_exists_restricted_and_follows_completion(api: Api) -> None:
    api.create_bucket("golden")
    latest = list_channels(api, "golden")["latest"]
    assert latest["managed"] is True
    assert latest["restricted"] is True
    assert latest["author_id"] == "HCP Packer"
    assert "version" in latest and latest["version"] is None
    assert history(api, "golden", "latest")["count"] == 0

    v1 = api.complete_version("golden", "fp-1")
    got = get_channel(api, "golden", "latest")
    assert_full_version(got["version"], v1)
    assert got["author_id"] == "HCP Packer"
    h = history(api, "golden", "latest")
    assert h["count"] == 1
    assert h["history"][0]["author_id"] == "HCP Packer"
    assert h["history"][0]["version"]["id"] == v1["id"]


def test_latest_refusals_have_the_live_texts(api: Api) -> None:
    api.create_bucket("golden")
    v1 = api.complete_version("golden", "fp-1")
    create_channel(api, "golden", "release", version_fingerprint="fp-1")

    body = assert_status(
        api.patch(
            channel_path("golden", "latest"),
            {"version_fingerprint": "fp-1", "update_mask": "versionFingerprint"},
        ),
        400,
        9,
    )
    assert body["message"] == (
        'Can\'t update channel assignment on channel "latest". This channel is managed by '
        "HCP Packer"
    )
    assert body["details"] == []
    # Any assignment of the managed channel is refused, with `restricted` or without.
    for body in (
        {"update_mask": "versionFingerprint"},
        {
            "version_fingerprint": "fp-1",
            "restricted": True,
            "update_mask": "restricted,versionFingerprint",
        },
        {"version_fingerprint": "fp-1", "update_mask": "version_fingerprint"},
    ):
        assert_status(api.patch(channel_path("golden", "latest"), body), 400, 9)

    body = assert_status(api.delete(channel_path("golden", "latest")), 400, 3)
    assert body["message"] == "Can't delete managed channel latest, it's controlled by HCP Packer"
    assert body["details"] == []

    body = assert_status(
        api.post(
            channels_path("golden") + "/assign",
            {"source_channel": "release", "target_channel": "latest"},
        ),
        400,
        9,
    )
    assert body["message"] == "Cannot assign to managed channel 'latest'"
    assert body["details"] == []

    # Creating `latest` answers 409/6, which is how the Terraform provider adopts it.
    assert_status(api.post(channels_path("golden"), {"name": "latest"}), 409, 6)
    latest = get_channel(api, "golden", "latest")
    assert latest["version"]["id"] == v1["id"]
    assert latest["managed"] is True


def test_terraform_adopts_latest_and_sets_its_restriction(api: Api) -> None:
    """`resource "hcp_packer_channel" { name = "latest", restricted = ... }`, call for call.

    The provider creates, gets 409/6, lists, adopts the managed entry and then sends
    UpdateChannel with mask `restricted` (Go omits `restricted: false`); it stores the
    returned channel, so the answer must be the whole channel, restriction applied.
    """
    api.create_bucket("golden")
    v1 = api.complete_version("golden", "fp-1")
    before = get_channel(api, "golden", "latest")
    go_client = {"Content-Type": "application/json", "Accept": "application/json"}

    def provider(method: str, path: str, raw: bytes | None) -> Any:
        return api.http.request(
            method, api.prefix + path, content=raw, headers={**api.headers(), **go_client}
        )

    assert_status(
        provider("POST", channels_path("golden"), b'{"name":"latest","restricted":true}'), 409, 6
    )
    listed = api.ok(provider("GET", channels_path("golden"), None))
    adopted = next(c for c in listed["channels"] if c["name"] == "latest")
    assert adopted["managed"] is True

    viewer = api.as_role(Role.VIEWER)
    try:
        for raw, restricted in (
            (b'{"update_mask":"restricted"}', False),  # restricted = false
            (b'{"restricted":true,"update_mask":"restricted"}', True),
            (b'{"update_mask":"restricted"}', False),
        ):
            body = api.ok(provider("PATCH", channel_path("golden", "latest"), raw))
            swagger.validate("PackerService_UpdateChannel", body)
            channel = body["channel"]
            assert channel["id"] == adopted["id"]
            assert channel["name"] == "latest" and channel["managed"] is True
            assert channel["restricted"] is restricted
            assert channel["author_id"] == "HCP Packer", "a restriction is not an assignment"
            assert_full_version(channel["version"], v1)
            assert get_channel(api, "golden", "latest")["restricted"] is restricted
            # What viewers see follows the restriction.
            assert ("latest" in list_channels(viewer, "golden")) is not restricted
            if restricted:
                assert_status(viewer.get(channel_path("golden", "latest")), 403, 7)
            else:
                assert get_channel(viewer, "golden", "latest")["version"]["id"] == v1["id"]
    finally:
        viewer.close()

    # Restricting is not an assignment: no history, and `latest` still follows completion.
    assert history(api, "golden", "latest")["count"] == 1
    v2 = api.complete_version("golden", "fp-2")
    after = get_channel(api, "golden", "latest")
    assert after["version"]["id"] == v2["id"] and after["restricted"] is False
    assert after["id"] == before["id"]


# --- user channels ----------------------------------------------------------------------


def test_create_empty_and_with_version(api: Api) -> None:
    api.create_bucket("golden")
    v1 = api.complete_version("golden", "fp-1", components=("null.a", "file.b"))

    empty = create_channel(api, "golden", "dev")
    assert empty["id"] and empty["managed"] is False and empty["restricted"] is False
    assert empty["version"] is None
    assert empty["author_id"] == "admin-sp"
    assert history(api, "golden", "dev")["count"] == 0

    release = create_channel(api, "golden", "release", version_fingerprint="fp-1")
    assert_full_version(release["version"], v1)
    h = history(api, "golden", "release")
    assert h["count"] == 1
    assert h["history"][0]["author_id"] == "admin-sp"
    assert h["history"][0]["version"]["fingerprint"] == "fp-1"

    restricted = create_channel(api, "golden", "staging", restricted=True)
    assert restricted["restricted"] is True

    assert_status(api.post(channels_path("golden"), {"name": "release"}), 409, 6)
    assert_status(api.post(channels_path("golden"), {}), 400, 3)
    assert_status(api.post(channels_path("nope"), {"name": "x"}), 404, 5)


def test_only_complete_unrevoked_versions_are_assignable(api: Api, services: Services) -> None:
    api.create_bucket("golden")
    open_fp = incomplete_version(api, "golden")
    revoked = api.complete_version("golden", "fp-revoked")
    set_revocation(services.store, revoked["id"])
    scheduled = api.complete_version("golden", "fp-scheduled")
    set_revocation(services.store, scheduled["id"], at=utcnow() + timedelta(days=30))

    for fp in (open_fp, "fp-revoked"):
        body = assert_status(
            api.post(channels_path("golden"), {"name": "release", "version_fingerprint": fp}),
            400,
            9,
        )
        assert fp in body["message"]
        # Nothing was created by the refused request.
        assert_status(api.get(channel_path("golden", "release")), 404, 5)

    create_channel(api, "golden", "release")
    for fp in (open_fp, "fp-revoked"):
        body = assert_status(
            api.patch(
                channel_path("golden", "release"),
                {"version_fingerprint": fp, "update_mask": "versionFingerprint"},
            ),
            400,
            9,
        )
        assert "assigned" in body["message"]
    assert_status(
        api.patch(
            channel_path("golden", "release"),
            {"version_fingerprint": "no-such-fp", "update_mask": "versionFingerprint"},
        ),
        404,
        5,
    )
    assert history(api, "golden", "release")["count"] == 0

    # A revocation that has not taken effect yet does not block assignment.
    got = update_channel(
        api,
        "golden",
        "release",
        {"version_fingerprint": "fp-scheduled", "update_mask": "versionFingerprint"},
    )
    assert got["version"]["id"] == scheduled["id"]
    assert got["version"]["status"] == "VERSION_REVOCATION_SCHEDULED"


def test_update_mask_semantics(api: Api) -> None:
    api.create_bucket("golden")
    v1 = api.complete_version("golden", "fp-1")
    v2 = api.complete_version("golden", "fp-2")
    create_channel(api, "golden", "release")
    path = channel_path("golden", "release")

    # Assign, as Packer and the Terraform assignment resource do.
    got = update_channel(
        api,
        "golden",
        "release",
        {"version_fingerprint": "fp-1", "update_mask": "versionFingerprint"},
    )
    assert_full_version(got["version"], v1)
    assert got["author_id"] == "admin-sp"

    # snake_case paths are accepted too; both fields at once.
    got = update_channel(
        api,
        "golden",
        "release",
        {
            "version_fingerprint": "fp-2",
            "restricted": True,
            "update_mask": "version_fingerprint,restricted",
        },
    )
    assert got["version"]["id"] == v2["id"] and got["restricted"] is True

    # Mask `restricted` with the field absent (Go omits false) means false.
    got = update_channel(api, "golden", "release", {"update_mask": "restricted"})
    assert got["restricted"] is False
    assert got["version"]["id"] == v2["id"], "restricted-only mask leaves the assignment"

    # The fingerprint is ignored when the mask does not name it.
    got = update_channel(
        api, "golden", "release", {"version_fingerprint": "fp-1", "update_mask": "restricted"}
    )
    assert got["version"]["id"] == v2["id"]

    # Mask versionFingerprint with no fingerprint unassigns (Terraform's `none`).
    got = update_channel(api, "golden", "release", {"update_mask": "versionFingerprint"})
    assert "version" in got and got["version"] is None
    got = update_channel(
        api, "golden", "release", {"version_fingerprint": "", "update_mask": "versionFingerprint"}
    )
    assert got["version"] is None

    h = history(api, "golden", "release")
    assert [e["version"]["fingerprint"] if e["version"] else None for e in h["history"]] == [
        None,
        "fp-2",
        "fp-1",
    ]
    assert h["count"] == 3

    # No mask: the exact live error, with one BadRequest detail and no `code` in it.
    for body in ({"version_fingerprint": "fp-1"}, {"update_mask": ""}, {"update_mask": " , "}):
        err = assert_status(api.patch(path, body), 400, 3)
        assert err["message"] == MASK_MISSING_MESSAGE
        assert err["details"] == [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "field_violations": [
                    {
                        "field": "body.update_mask",
                        "description": "field mask: must be set",
                        "reason": "",
                        "localized_message": None,
                    }
                ],
            }
        ]
        swagger.validate_status(err)
    # The mask is checked before the channel (and bucket) lookup.
    err = assert_status(api.patch(channel_path("golden", "missing"), {}), 400, 3)
    assert err["message"] == MASK_MISSING_MESSAGE
    assert_status(api.patch(channel_path("no-bucket", "missing"), {}), 400, 3)
    # Unknown paths are refused.
    err = assert_status(api.patch(path, {"update_mask": "versionFingerprint,name"}), 400, 3)
    assert "unknown path" in err["message"]
    assert err["details"][0]["field_violations"][0]["field"] == "body.update_mask"
    # UpdateChannel never creates a channel.
    assert_status(
        api.patch(channel_path("golden", "missing"), {"update_mask": "versionFingerprint"}),
        404,
        5,
    )


def test_delete_channel_drops_it_and_its_history(api: Api) -> None:
    api.create_bucket("golden")
    api.complete_version("golden", "fp-1")
    create_channel(api, "golden", "release", version_fingerprint="fp-1")
    assert api.ok(api.delete(channel_path("golden", "release"))) == {}
    assert_status(api.get(channel_path("golden", "release")), 404, 5)
    assert_status(api.get(channel_path("golden", "release") + "/history"), 404, 5)
    assert_status(api.delete(channel_path("golden", "release")), 404, 5)
    assert "release" not in list_channels(api, "golden")
    recreated = create_channel(api, "golden", "release")
    assert recreated["version"] is None
    assert history(api, "golden", "release")["count"] == 0


def test_assign_channel_version_copies_the_source_assignment(api: Api) -> None:
    api.create_bucket("golden")
    v1 = api.complete_version("golden", "fp-1")
    create_channel(api, "golden", "staging", version_fingerprint="fp-1")
    create_channel(api, "golden", "prod")
    create_channel(api, "golden", "empty")

    promote = channels_path("golden") + "/assign"
    body = api.ok(api.post(promote, {"source_channel": "staging", "target_channel": "prod"}))
    swagger.validate("PackerService_AssignChannelVersion", body)
    assert body["fingerprint"] == "fp-1"
    assert body["version"]["id"] == v1["id"]
    assert body["source_channel"]["name"] == "staging"
    assert body["target_channel"]["name"] == "prod"
    assert_full_version(body["target_channel"]["version"], v1)
    h = history(api, "golden", "prod")
    assert h["count"] == 1 and h["history"][0]["author_id"] == "admin-sp"

    # `latest` can be a source.
    v2 = api.complete_version("golden", "fp-2")
    body = api.ok(api.post(promote, {"source_channel": "latest", "target_channel": "prod"}))
    assert body["target_channel"]["version"]["id"] == v2["id"]

    assert_status(api.post(promote, {"source_channel": "empty", "target_channel": "prod"}), 400, 9)
    assert_status(api.post(promote, {"source_channel": "nope", "target_channel": "prod"}), 404, 5)
    assert_status(
        api.post(promote, {"source_channel": "staging", "target_channel": "nope"}), 404, 5
    )
    assert_status(api.post(promote, {"target_channel": "prod"}), 400, 3)
    assert_status(api.post(promote, {"source_channel": "staging"}), 400, 3)


def test_history_is_paginated_newest_first_with_total_count(api: Api) -> None:
    api.create_bucket("golden")
    fps = [api.complete_version("golden", f"fp-{i}")["fingerprint"] for i in range(1, 4)]
    create_channel(api, "golden", "release")
    # 7 assignments: fp-1, fp-2, fp-3, none, fp-1, fp-2, fp-3
    sequence: list[str | None] = [*fps, None, *fps]
    for fp in sequence:
        body: dict[str, Any] = {"update_mask": "versionFingerprint"}
        if fp:
            body["version_fingerprint"] = fp
        update_channel(api, "golden", "release", body)
    newest_first = list(reversed(sequence))

    pages: list[dict[str, Any]] = []
    token = ""
    while True:
        params = {"pagination.page_size": "3"}
        if token:
            params["pagination.next_page_token"] = token
        page = history(api, "golden", "release", **params)
        assert page["count"] == 7 and isinstance(page["count"], int)
        pages.append(page)
        token = page["pagination"]["next_page_token"]
        if not token:
            break
    assert [len(p["history"]) for p in pages] == [3, 3, 1]
    seen = [
        e["version"]["fingerprint"] if e["version"] else None for p in pages for e in p["history"]
    ]
    assert seen == newest_first
    stamps = [e["assigned_at"] for p in pages for e in p["history"]]
    assert stamps == sorted(stamps, reverse=True)
    assert pages[0]["pagination"]["previous_page_token"] == ""
    # previous_page_token on a later page returns the page before it.
    back = history(
        api,
        "golden",
        "release",
        **{
            "pagination.page_size": "3",
            "pagination.previous_page_token": pages[2]["pagination"]["previous_page_token"],
        },
    )
    assert back["history"] == pages[1]["history"]
    assert_status(
        api.get(
            channel_path("golden", "release") + "/history",
            params={"pagination.next_page_token": "garbage"},
        ),
        400,
        3,
    )


@pytest.mark.parametrize("role", [Role.CONTRIBUTOR, Role.ADMIN])
def test_writers_see_and_use_restricted_channels(api: Api, role: Role) -> None:
    api.create_bucket("golden")
    api.complete_version("golden", "fp-1")
    writer = api.as_role(role)
    try:
        create_channel(writer, "golden", "staging", restricted=True, version_fingerprint="fp-1")
        assert {"latest", "staging"} <= set(list_channels(writer, "golden"))
        assert get_channel(writer, "golden", "staging")["version"]["fingerprint"] == "fp-1"
        assert get_channel(writer, "golden", "latest")["version"]["fingerprint"] == "fp-1"
        update_channel(writer, "golden", "staging", {"update_mask": "versionFingerprint"})
        assert history(writer, "golden", "staging")["count"] == 2
        assert writer.ok(writer.delete(channel_path("golden", "staging"))) == {}
    finally:
        writer.close()


def test_viewers_cannot_see_restricted_channels(api: Api) -> None:
    api.create_bucket("golden")
    api.complete_version("golden", "fp-1")
    create_channel(api, "golden", "staging", restricted=True, version_fingerprint="fp-1")
    create_channel(api, "golden", "public", version_fingerprint="fp-1")
    viewer = api.as_role(Role.VIEWER)
    try:
        assert set(list_channels(viewer, "golden")) == {"public"}
        assert get_channel(viewer, "golden", "public")["version"]["fingerprint"] == "fp-1"
        for name in ("staging", "latest"):
            body = assert_status(viewer.get(channel_path("golden", name)), 403, 7)
            assert name in body["message"] and "restricted" in body["message"]
            assert_status(viewer.get(channel_path("golden", name) + "/history"), 403, 7)
        # Viewers cannot change anything, restricted or not.
        assert_status(viewer.post(channels_path("golden"), {"name": "mine"}), 403, 7)
        assert_status(
            viewer.patch(channel_path("golden", "public"), {"update_mask": "restricted"}), 403, 7
        )
        assert_status(viewer.delete(channel_path("golden", "public")), 403, 7)
        # Lifting the restriction makes the channel visible to viewers.
        update_channel(api, "golden", "staging", {"update_mask": "restricted"})
        assert set(list_channels(viewer, "golden")) == {"public", "staging"}
    finally:
        viewer.close()


def test_get_and_list_embed_the_full_version(api: Api) -> None:
    api.create_bucket("golden")
    v1 = api.complete_version(
        "golden",
        "fp-1",
        components=("amazon-ebs.a", "amazon-ebs.b"),
        regions=("us-east-1", "eu-west-1"),
    )
    create_channel(api, "golden", "release", version_fingerprint="fp-1")
    assert_full_version(get_channel(api, "golden", "release")["version"], v1)
    listed = list_channels(api, "golden")
    assert_full_version(listed["release"]["version"], v1)
    assert_full_version(listed["latest"]["version"], v1)
    assert all(len(b["artifacts"]) == 2 for b in v1["builds"])


def test_packer_channels_attribute_waits_for_the_last_build(api: Api) -> None:
    """`hcp_packer_registry { channels = ["dev"] }` with two sources, call for call."""
    api.create_bucket("golden")
    create_channel(api, "golden", "dev")
    fp = unique("fp")
    api.create_version("golden", fp)
    first = api.create_build("golden", fp, "null.a")
    second = api.create_build("golden", fp, "file.b")
    assign = {"version_fingerprint": fp, "update_mask": "versionFingerprint"}
    for build in (first, second):
        assert (
            api.update_build("golden", fp, build["id"], status="BUILD_RUNNING").status_code == 200
        )

    # Build 1 is DONE: the version is still v0, so Packer's channel PATCH is refused.
    api.finish_build("golden", fp, first["id"])
    refused = assert_status(api.patch(channel_path("golden", "dev"), assign), 400, 9)
    assert fp in refused["message"]
    assert get_channel(api, "golden", "dev")["version"] is None
    assert history(api, "golden", "dev")["count"] == 0

    # Build 2 is DONE: the version completed inside that request; the PATCH now succeeds.
    api.finish_build("golden", fp, second["id"])
    got = update_channel(api, "golden", "dev", assign)
    assert got["version"]["fingerprint"] == fp
    assert got["version"]["name"] == "v1"
    assert got["version"]["status"] == "VERSION_ACTIVE"
    assert {b["component_type"] for b in got["version"]["builds"]} == {"null.a", "file.b"}
    h = history(api, "golden", "dev")
    assert h["count"] == 1 and h["history"][0]["author_id"] == "admin-sp"
    # Repeating the assignment (Packer's N-th round) changes nothing.
    update_channel(api, "golden", "dev", assign)
    assert history(api, "golden", "dev")["count"] == 1

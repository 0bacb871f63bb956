"""DeleteVersion, DeleteBuild, DeleteBucket and DeleteChannel over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from packyard.domain.enums import Role
from packyard.services.container import Services
from packyard.store.schema import builds, channel_assignments, channels, version_edges, versions
from tests.support.factories import Api, assert_status
from tests.support.revocation import (
    assign,
    create_channel,
    get_channel,
    get_version,
    history,
    new_bucket,
    push,
    revoke,
    serving,
    version_path,
)


def delete_version(api: Api, b: str, fp: str, *, rollback: bool | None = None) -> Any:
    params = {} if rollback is None else {"rollback_channels": str(rollback).lower()}
    return api.delete(version_path(b, fp), params=params)


def bucket_body(api: Api, b: str) -> dict[str, Any]:
    body: dict[str, Any] = api.ok(api.get(f"/buckets/{b}"))["bucket"]
    return body


# --- DeleteVersion -------------------------------------------------------------------------


def test_delete_missing_version_or_bucket_is_404(api: Api) -> None:
    b = new_bucket(api)
    body = assert_status(delete_version(api, b, "nope"), 404, 5)
    assert body["message"] == "Error: The version with identifier nope does not exist."
    body = assert_status(delete_version(api, "no-bucket", "nope"), 404, 5)
    assert body["message"] == "Error: The bucket with identifier no-bucket does not exist."


def test_delete_version_assigned_to_user_channels_is_refused(api: Api) -> None:
    b = new_bucket(api)
    v1, v2 = push(api, b), push(api, b)
    create_channel(api, b, "zeta", v2["fingerprint"])
    body = assert_status(delete_version(api, b, v2["fingerprint"]), 400, 9)
    assert body["message"] == (
        "Version is assigned by channels: zeta. Please, remove the channels assignment before "
        "deleting the version."
    )
    create_channel(api, b, "alpha", v1["fingerprint"])
    api.ok(assign(api, b, "alpha", v2["fingerprint"]))
    body = assert_status(delete_version(api, b, v2["fingerprint"], rollback=False), 400, 9)
    assert body["message"].startswith("Version is assigned by channels: alpha, zeta. ")
    # Nothing changed.
    assert get_version(api, b, v2["fingerprint"])["name"] == "v2"
    assert serving(api, b, "latest") == v2["fingerprint"]
    assert bucket_body(api, b)["version_count"] == "2"


def test_delete_version_with_rollback_channels(api: Api) -> None:
    b = new_bucket(api)
    v1, v2 = push(api, b), push(api, b)
    create_channel(api, b, "prod", v1["fingerprint"])
    api.ok(assign(api, b, "prod", v2["fingerprint"]))
    create_channel(api, b, "edge", v2["fingerprint"])
    assert api.ok(delete_version(api, b, v2["fingerprint"], rollback=True)) == {}
    assert_status(api.get(version_path(b, v2["fingerprint"])), 409, 10)
    assert serving(api, b, "prod") == v1["fingerprint"]
    assert serving(api, b, "edge") is None
    assert serving(api, b, "latest") == v1["fingerprint"]
    prod = history(api, b, "prod")
    assert prod[0]["version"]["fingerprint"] == v1["fingerprint"]
    assert prod[0]["author_id"] == api.tenant.identities[Role.ADMIN].name
    # The deleted version's history rows stay, without the version.
    assert prod[1]["version"] is None
    got = bucket_body(api, b)
    assert got["version_count"] == "1"
    assert got["latest_version"]["fingerprint"] == v1["fingerprint"]


def test_latest_always_rolls_back_to_the_newest_survivor(api: Api) -> None:
    b = new_bucket(api)
    v1, v2, v3 = push(api, b), push(api, b), push(api, b)
    revoke(api, b, v2["fingerprint"], revoke_in="0s")
    api.ok(delete_version(api, b, v3["fingerprint"]))
    assert serving(api, b, "latest") == v1["fingerprint"]  # v2 is revoked
    assert history(api, b, "latest")[0]["author_id"] == "HCP Packer"
    api.ok(delete_version(api, b, v1["fingerprint"]))
    assert serving(api, b, "latest") is None
    assert bucket_body(api, b)["latest_version"] is None
    api.ok(delete_version(api, b, v2["fingerprint"]))
    assert bucket_body(api, b)["version_count"] == "0"
    assert api.ok(api.get(f"/buckets/{b}/versions"))["versions"] == []


def test_revoked_and_incomplete_versions_are_deletable_and_fingerprints_reusable(
    api: Api,
) -> None:
    b = new_bucket(api)
    push(api, b, "one")
    push(api, b, "two")
    revoke(api, b, "two", revoke_in="0s")
    api.create_version(b, "running")
    api.ok(delete_version(api, b, "running"))
    api.ok(delete_version(api, b, "two"))
    again = push(api, b, "two")
    assert again["name"] == "v2"  # max(surviving) + 1
    assert again["status"] == "VERSION_ACTIVE"
    assert again["revoke_at"] is None
    assert serving(api, b, "latest") == "two"


def test_descendants_keep_a_revocation_whose_origin_is_deleted(api: Api) -> None:
    b0, b1 = new_bucket(api), new_bucket(api)
    parent = push(api, b0)
    child = push(api, b1, parent=parent)
    assert get_version(api, b0, parent["fingerprint"])["has_descendants"] is True
    revoke(api, b0, parent["fingerprint"], revoke_in="0s", revocation_message="bad")
    api.ok(delete_version(api, b0, parent["fingerprint"]))
    got = get_version(api, b1, child["fingerprint"])
    assert got["status"] == "VERSION_REVOKED"
    assert got["revocation_message"] == "bad"
    assert got["revocation_type"] == "MANUAL"  # now its own, and so restorable
    assert got["revocation_inherited_from"] is None
    restored = revoke(api, b1, child["fingerprint"], restore=True)
    assert restored["status"] == "VERSION_ACTIVE"


def test_viewers_cannot_delete(api: Api) -> None:
    b = new_bucket(api)
    v = push(api, b)
    create_channel(api, b, "prod", v["fingerprint"])
    build_id = v["builds"][0]["id"]
    viewer = api.as_role(Role.VIEWER)
    try:
        assert_status(delete_version(viewer, b, v["fingerprint"], rollback=True), 403, 7)
        assert_status(
            viewer.delete(f"{version_path(b, v['fingerprint'])}/builds/{build_id}"), 403, 7
        )
        assert_status(viewer.delete(f"/buckets/{b}/channels/prod"), 403, 7)
        assert_status(viewer.delete(f"/buckets/{b}"), 403, 7)
    finally:
        viewer.close()
    assert get_version(api, b, v["fingerprint"])["builds"][0]["id"] == build_id


# --- DeleteBuild ---------------------------------------------------------------------------


def test_delete_build(api: Api) -> None:
    b = new_bucket(api)
    v = api.complete_version(b, components=("a.one", "a.two"))
    fp = v["fingerprint"]
    first, second = (x["id"] for x in v["builds"])
    builds_path = f"{version_path(b, fp)}/builds"
    assert api.ok(api.delete(f"{builds_path}/{first}")) == {}
    body = assert_status(api.get(f"{builds_path}/{first}"), 404, 5)
    assert body["message"] == f"The build with identifier {first} does not exist."
    body = assert_status(api.delete(f"{builds_path}/{first}"), 404, 5)
    assert body["message"] == f"The build with identifier {first} does not exist."
    got = get_version(api, b, fp)
    assert [x["id"] for x in got["builds"]] == [second]
    assert (got["name"], got["status"]) == ("v1", "VERSION_ACTIVE")
    # Even with zero builds, the version keeps its name and status.
    api.ok(api.delete(f"{builds_path}/{second}"))
    got = get_version(api, b, fp)
    assert (got["name"], got["status"], got["builds"]) == ("v1", "VERSION_ACTIVE", [])
    assert_status(api.delete(f"/buckets/nope/versions/{fp}/builds/{second}"), 404, 5)


# --- DeleteChannel ---------------------------------------------------------------------------


def test_delete_channel(api: Api) -> None:
    b = new_bucket(api)
    v = push(api, b)
    create_channel(api, b, "prod", v["fingerprint"])
    assert api.ok(api.delete(f"/buckets/{b}/channels/prod")) == {}
    body = assert_status(api.get(f"/buckets/{b}/channels/prod"), 404, 5)
    assert body["message"] == "Error: The channel with identifier prod does not exist."
    assert_status(api.delete(f"/buckets/{b}/channels/prod"), 404, 5)
    assert_status(api.delete("/buckets/nope/channels/prod"), 404, 5)
    body = assert_status(api.delete(f"/buckets/{b}/channels/latest"), 400, 3)
    assert body["message"] == "Can't delete managed channel latest, it's controlled by HCP Packer"
    assert serving(api, b, "latest") == v["fingerprint"]
    # The version is free to go now (only `latest` served it).
    api.ok(delete_version(api, b, v["fingerprint"]))
    # Recreating the channel starts a fresh history.
    v2 = push(api, b)
    create_channel(api, b, "prod", v2["fingerprint"])
    assert len(history(api, b, "prod")) == 1


# --- DeleteBucket ----------------------------------------------------------------------------


def test_delete_bucket_removes_everything_under_it(api: Api, services: Services) -> None:
    b0, b1 = new_bucket(api), new_bucket(api)
    parent = push(api, b0)
    child = push(api, b1, parent=parent, parent_channel=get_channel(api, b0, "latest"))
    prod_id = create_channel(api, b0, "prod", parent["fingerprint"])["id"]
    old_id = bucket_body(api, b0)["id"]
    revoke(api, b0, parent["fingerprint"], revoke_in="1h", disable_rollback_channels=True)
    assert api.ok(api.delete(f"/buckets/{b0}")) == {}
    body = assert_status(api.get(f"/buckets/{b0}"), 404, 5)
    assert body["message"] == f"Error: The bucket with identifier {b0} does not exist."
    assert_status(api.delete(f"/buckets/{b0}"), 404, 5)
    assert_status(api.get(version_path(b0, parent["fingerprint"])), 404, 5)
    assert_status(api.get(f"/buckets/{b0}/channels/prod"), 404, 5)
    # The child in another bucket survives, keeps the scheduled revocation, loses the edge.
    got = get_version(api, b1, child["fingerprint"])
    assert got["status"] == "VERSION_REVOCATION_SCHEDULED"
    assert got["revocation_type"] == "MANUAL"
    assert got["parents"] is None
    # The name can be used again, from scratch.
    fresh = api.create_bucket(b0)
    assert fresh["version_count"] == "0"
    assert api.ok(api.get(f"/buckets/{b0}/versions"))["versions"] == []
    # Nothing of the old bucket is left in the store.
    with services.store.read() as conn:
        for table, column, value in (
            (versions, versions.c.bucket_id, old_id),
            (builds, builds.c.version_id, parent["id"]),
            (version_edges, version_edges.c.parent_version_id, parent["id"]),
            (channels, channels.c.bucket_id, old_id),
            (channel_assignments, channel_assignments.c.channel_id, prod_id),
        ):
            n = conn.execute(select(func.count()).select_from(table).where(column == value))
            assert n.scalar_one() == 0, table.name


def test_deleting_a_scheduled_origin_keeps_the_childrens_pending_rollback(
    api: Api, services: Services
) -> None:
    b0, b1 = new_bucket(api), new_bucket(api)
    parent = push(api, b0)
    base = push(api, b1)
    child = push(api, b1, parent=parent)
    create_channel(api, b1, "prod", base["fingerprint"])
    api.ok(assign(api, b1, "prod", child["fingerprint"]))
    revoke(api, b0, parent["fingerprint"], revoke_in="1h")
    api.ok(delete_version(api, b0, parent["fingerprint"]))
    assert serving(api, b1, "prod") == child["fingerprint"]
    assert services.scheduler.apply_due(datetime.now(UTC) + timedelta(hours=2)) == 1
    assert serving(api, b1, "prod") == base["fingerprint"]

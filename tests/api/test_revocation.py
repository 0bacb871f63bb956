"""UpdateVersion revoke / restore over real HTTP: timing, cascade, rollback, consumers."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from packyard.domain.enums import Role
from packyard.services.revocation import INHERITED_RESTORE, NOT_REVOKED
from tests.support import consumers
from tests.support.factories import Api, assert_status, unique
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
    update_version,
)

YEAR_ONE = "0001-01-01T00:00:00.000Z"


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- revoking one version ------------------------------------------------------------


def test_revoke_at_in_the_past_means_now(api: Api) -> None:
    b = new_bucket(api)
    v = push(api, b)
    before = datetime.now(UTC)
    got = revoke(
        api, b, v["fingerprint"], revoke_at="2020-01-01T00:00:00Z", revocation_message="CVE"
    )
    after = datetime.now(UTC)
    assert got["status"] == "VERSION_REVOKED"
    assert before - timedelta(seconds=1) <= parse_ts(got["revoke_at"]) <= after
    assert got["revocation_message"] == "CVE"
    assert got["revocation_author"] == api.tenant.identities[Role.ADMIN].name
    assert got["revocation_type"] == "MANUAL"
    assert got["revocation_inherited_from"] is None
    assert get_version(api, b, v["fingerprint"])["revoke_at"] == got["revoke_at"]


def test_revoke_at_any_offset_is_stored_in_utc_and_scheduled(api: Api) -> None:
    b = new_bucket(api)
    v = push(api, b)
    got = revoke(api, b, v["fingerprint"], revoke_at="2099-06-01T12:00:00+02:00")
    assert got["revoke_at"] == "2099-06-01T10:00:00.000000Z"
    assert got["status"] == "VERSION_REVOCATION_SCHEDULED"
    assert got["revocation_type"] == "MANUAL"


DURATIONS = [("2h45m", 2 * 3600 + 45 * 60), ("30d", 30 * 86400), ("1d2h3m4s", 93784), ("90s", 90)]


def test_revoke_in_durations(api: Api) -> None:
    b = new_bucket(api)
    for revoke_in, seconds in DURATIONS:
        v = push(api, b)
        before = datetime.now(UTC)
        got = revoke(api, b, v["fingerprint"], revoke_in=revoke_in)
        after = datetime.now(UTC)
        at = parse_ts(got["revoke_at"])
        assert before + timedelta(seconds=seconds) - timedelta(seconds=1) <= at, revoke_in
        assert at <= after + timedelta(seconds=seconds), revoke_in
        assert got["status"] == "VERSION_REVOCATION_SCHEDULED"


def test_revoke_in_zero_is_immediate_and_year_one_revoke_at_is_unset(api: Api) -> None:
    b = new_bucket(api)
    v = push(api, b)
    got = revoke(api, b, v["fingerprint"], revoke_in="0s", revoke_at=YEAR_ONE)
    assert got["status"] == "VERSION_REVOKED"


INVALID_BODIES: list[dict[str, Any]] = [
    {},
    {"revocation_message": "why"},
    {"revoke_at": YEAR_ONE},
    {"revoke_at": "2099-01-01T00:00:00Z", "revoke_in": "1h"},
    {"revoke_in": "5y"},
    {"revoke_in": "1.5h"},
    {"revoke_in": "-1h"},
    {"revoke_in": "99999999d"},
    {"revoke_at": "9999-12-31T23:59:59Z"},
    {"revoke_in": "1h", "revocation_message": "bad\x00byte"},
    {"revoke_in": "1h", "revocation_message": "x" * 5000},
]


def test_revoke_needs_exactly_one_valid_time(api: Api) -> None:
    b = new_bucket(api)
    v = push(api, b)
    for body in INVALID_BODIES:
        assert_status(update_version(api, b, v["fingerprint"], **body), 400, 3)
    assert get_version(api, b, v["fingerprint"])["status"] == "VERSION_ACTIVE"


def test_revoking_a_revoked_version_is_refused_but_a_schedule_can_change(api: Api) -> None:
    b = new_bucket(api)
    v = push(api, b)
    fp = v["fingerprint"]
    first = revoke(api, b, fp, revoke_in="2h", revocation_message="later")
    second = revoke(api, b, fp, revoke_in="1h", revocation_message="sooner")
    assert parse_ts(second["revoke_at"]) < parse_ts(first["revoke_at"])
    assert second["revocation_message"] == "sooner"
    revoke(api, b, fp, revoke_in="0s")
    body = assert_status(update_version(api, b, fp, revoke_in="0s"), 400, 9)
    assert "already revoked" in body["message"]
    assert_status(update_version(api, b, fp, revoke_in="1h"), 400, 9)


def test_incomplete_versions_can_be_revoked(api: Api) -> None:
    """Decision: like HCP, any version can be revoked, complete or not."""
    b = new_bucket(api)
    api.create_version(b, "running")
    got = revoke(api, b, "running", revoke_in="0s")
    assert got["name"] == "v0"
    assert got["status"] == "VERSION_REVOKED"


def test_revocation_errors_for_missing_things_and_viewers(api: Api) -> None:
    b = new_bucket(api)
    v = push(api, b)
    assert_status(update_version(api, "no-such-bucket", "fp", revoke_in="0s"), 404, 5)
    assert_status(update_version(api, b, "no-such-fp", revoke_in="0s"), 409, 10)
    viewer = api.as_role(Role.VIEWER)
    try:
        assert_status(update_version(viewer, b, v["fingerprint"], revoke_in="0s"), 403, 7)
        assert_status(update_version(viewer, b, v["fingerprint"], restore=True), 403, 7)
    finally:
        viewer.close()


# --- descendants -----------------------------------------------------------------------


def family(api: Api) -> dict[str, Any]:
    """root (b0) → child (b1) → grandchild (b2), plus a diamond: b1/other → grandchild."""
    b0, b1, b2 = new_bucket(api), new_bucket(api), new_bucket(api)
    root = push(api, b0)
    child = push(api, b1, parent=root, parent_channel=get_channel(api, b0, "latest"))
    other = push(api, b1, parent=root)
    # Two builds: one from `child`, one from `other` (a diamond).
    fp = unique("fp")
    api.create_version(b2, fp)
    pairs = [(api.create_build(b2, fp, c), p) for c, p in (("a.one", child), ("a.two", other))]
    for build, parent in pairs:
        api.finish_build(b2, fp, build["id"], parent_version_id=parent["id"])
    grandchild = get_version(api, b2, fp)
    assert grandchild["name"] == "v1"
    return {
        "buckets": (b0, b1, b2),
        "root": root,
        "child": child,
        "other": other,
        "grandchild": grandchild,
    }


def test_revocation_cascades_to_every_descendant(api: Api) -> None:
    f = family(api)
    b0, b1, b2 = f["buckets"]
    root = revoke(api, b0, f["root"]["fingerprint"], revoke_in="0s", revocation_message="CVE-1")
    assert root["has_descendants"] is True
    for b, key in ((b1, "child"), (b1, "other"), (b2, "grandchild")):
        got = get_version(api, b, f[key]["fingerprint"])
        assert got["status"] == "VERSION_REVOKED", key
        assert got["revocation_type"] == "INHERITED"
        assert got["revoke_at"] == root["revoke_at"]
        assert got["revocation_message"] == "CVE-1"
        assert got["revocation_author"] == root["revocation_author"]
        inherited = got["revocation_inherited_from"]
        assert inherited["version_id"] == f["root"]["id"]
        assert inherited["version_fingerprint"] == f["root"]["fingerprint"]
        assert inherited["version_name"] == "v1"
        assert inherited["bucket_name"] == b0
        assert inherited["href"].endswith(f"/buckets/{b0}/versions/{f['root']['fingerprint']}")


def test_skip_descendants_revocation(api: Api) -> None:
    f = family(api)
    b0, b1, b2 = f["buckets"]
    revoke(api, b0, f["root"]["fingerprint"], revoke_in="0s", skip_descendants_revocation=True)
    assert get_version(api, b1, f["child"]["fingerprint"])["status"] == "VERSION_ACTIVE"
    assert get_version(api, b2, f["grandchild"]["fingerprint"])["revoke_at"] is None


def test_explicit_revocation_wins_and_the_earliest_inherited_one_wins(api: Api) -> None:
    f = family(api)
    b0, b1, b2 = f["buckets"]
    # The grandchild has its own (later) revocation: it keeps it.
    own = revoke(api, b2, f["grandchild"]["fingerprint"], revoke_in="3d", revocation_message="own")
    revoke(api, b1, f["other"]["fingerprint"], revoke_in="2d")
    revoke(api, b0, f["root"]["fingerprint"], revoke_in="1d")
    gc = get_version(api, b2, f["grandchild"]["fingerprint"])
    assert (gc["revocation_type"], gc["revoke_at"]) == ("MANUAL", own["revoke_at"])
    # `other` had its own too; `child` inherits the root's.
    assert get_version(api, b1, f["other"]["fingerprint"])["revocation_type"] == "MANUAL"
    child = get_version(api, b1, f["child"]["fingerprint"])
    assert child["revocation_inherited_from"]["version_id"] == f["root"]["id"]

    # Among inherited revocations the earliest wins: restore the grandchild's own, then
    # a later one from `child` does not replace the earlier one from `other`.
    revoke(api, b2, f["grandchild"]["fingerprint"], restore=True)
    revoke(api, b1, f["other"]["fingerprint"], revoke_in="4h")
    gc = get_version(api, b2, f["grandchild"]["fingerprint"])
    assert gc["revocation_inherited_from"]["version_id"] == f["other"]["id"]
    revoke(api, b1, f["child"]["fingerprint"], revoke_in="8h")
    gc = get_version(api, b2, f["grandchild"]["fingerprint"])
    assert gc["revocation_inherited_from"]["version_id"] == f["other"]["id"]
    # ... but an earlier one does.
    revoke(api, b1, f["child"]["fingerprint"], revoke_in="1h")
    gc = get_version(api, b2, f["grandchild"]["fingerprint"])
    assert gc["revocation_inherited_from"]["version_id"] == f["child"]["id"]
    # A child can be given an earlier revocation directly.
    direct = revoke(api, b2, f["grandchild"]["fingerprint"], revoke_in="10m")
    assert direct["revocation_type"] == "MANUAL"


def test_rescheduling_moves_the_inherited_copies_too(api: Api) -> None:
    f = family(api)
    b0, b1, _ = f["buckets"]
    fp = f["root"]["fingerprint"]
    revoke(api, b0, fp, revoke_in="2d")
    sooner = revoke(api, b0, fp, revoke_in="1d")
    assert get_version(api, b1, f["child"]["fingerprint"])["revoke_at"] == sooner["revoke_at"]
    later = revoke(api, b0, fp, revoke_in="3d")
    assert get_version(api, b1, f["child"]["fingerprint"])["revoke_at"] == later["revoke_at"]
    # Re-scheduling without descendants withdraws the earlier copies.
    revoke(api, b0, fp, revoke_in="4d", skip_descendants_revocation=True)
    assert get_version(api, b1, f["child"]["fingerprint"])["revoke_at"] is None


# --- channel rollback ---------------------------------------------------------------------


def test_rollback_moves_user_channels_and_latest(api: Api) -> None:
    b = new_bucket(api)
    v1, v2, v3 = push(api, b), push(api, b), push(api, b)
    create_channel(api, b, "prod", v1["fingerprint"])
    api.ok(assign(api, b, "prod", v2["fingerprint"]))
    assert serving(api, b, "latest") == v3["fingerprint"]

    revoke(api, b, v3["fingerprint"], revoke_in="0s")
    assert serving(api, b, "latest") == v2["fingerprint"]
    assert serving(api, b, "prod") == v2["fingerprint"]  # never served v3
    latest_history = history(api, b, "latest")
    assert latest_history[0]["version"]["fingerprint"] == v2["fingerprint"]
    assert latest_history[0]["author_id"] == "HCP Packer"
    bkt = api.ok(api.get(f"/buckets/{b}"))["bucket"]
    assert bkt["latest_version"]["fingerprint"] == v2["fingerprint"]

    revoke(api, b, v2["fingerprint"], revoke_at="2000-01-01T00:00:00Z")
    assert serving(api, b, "latest") == v1["fingerprint"]
    assert serving(api, b, "prod") == v1["fingerprint"]
    prod_history = history(api, b, "prod")
    assert [h["version"]["fingerprint"] for h in prod_history] == [
        v1["fingerprint"],
        v2["fingerprint"],
        v1["fingerprint"],
    ]
    assert prod_history[0]["author_id"] == api.tenant.identities[Role.ADMIN].name

    # Nothing valid left: the channels are unassigned, with a history entry.
    revoke(api, b, v1["fingerprint"], revoke_in="0s")
    assert serving(api, b, "prod") is None
    assert serving(api, b, "latest") is None
    assert history(api, b, "prod")[0]["version"] is None
    assert api.ok(api.get(f"/buckets/{b}"))["bucket"]["latest_version"] is None


def test_rollback_reaches_channels_in_descendant_buckets(api: Api) -> None:
    f = family(api)
    b0, b1, b2 = f["buckets"]
    base = push(api, b2)  # newer than the grandchild: `latest` serves it already
    older = push(api, b1)
    create_channel(api, b1, "prod", older["fingerprint"])
    api.ok(assign(api, b1, "prod", f["child"]["fingerprint"]))
    create_channel(api, b2, "prod", f["grandchild"]["fingerprint"])
    assert serving(api, b1, "latest") == older["fingerprint"]

    revoke(api, b0, f["root"]["fingerprint"], revoke_in="0s")
    assert serving(api, b0, "latest") is None
    assert serving(api, b1, "prod") == older["fingerprint"]
    assert serving(api, b1, "latest") == older["fingerprint"]
    assert serving(api, b2, "prod") is None
    assert serving(api, b2, "latest") == base["fingerprint"]


def test_disable_rollback_channels(api: Api) -> None:
    b = new_bucket(api)
    v1, v2 = push(api, b), push(api, b)
    create_channel(api, b, "prod", v2["fingerprint"])
    revoke(api, b, v2["fingerprint"], revoke_in="0s", disable_rollback_channels=True)
    assert serving(api, b, "latest") == v2["fingerprint"]
    assert serving(api, b, "prod") == v2["fingerprint"]
    assert len(history(api, b, "prod")) == 1
    assert v1["fingerprint"] != v2["fingerprint"]


def test_revoked_versions_cannot_be_assigned(api: Api) -> None:
    b = new_bucket(api)
    v1, v2 = push(api, b), push(api, b)
    create_channel(api, b, "prod", v1["fingerprint"])
    create_channel(api, b, "stale", v2["fingerprint"])
    revoke(api, b, v2["fingerprint"], revoke_in="0s", disable_rollback_channels=True)
    assert_status(assign(api, b, "prod", v2["fingerprint"]), 400, 9)
    assert_status(
        api.post(
            f"/buckets/{b}/channels", {"name": "new", "version_fingerprint": v2["fingerprint"]}
        ),
        400,
        9,
    )
    promote = {"source_channel": "stale", "target_channel": "prod"}
    assert_status(api.post(f"/buckets/{b}/channels/assign", promote), 400, 9)
    assert serving(api, b, "prod") == v1["fingerprint"]
    # A scheduled revocation does not block assignment yet.
    revoke(api, b, v1["fingerprint"], revoke_in="1h")
    api.ok(assign(api, b, "stale", v1["fingerprint"]))


# --- restore -----------------------------------------------------------------------------


def test_restore_clears_the_revocation_and_its_copies(api: Api) -> None:
    f = family(api)
    b0, b1, b2 = f["buckets"]
    root_fp = f["root"]["fingerprint"]
    revoke(api, b0, root_fp, revoke_in="0s")
    assert serving(api, b0, "latest") is None
    restored = revoke(api, b0, root_fp, restore=True)
    assert restored["status"] == "VERSION_ACTIVE"
    assert restored["revoke_at"] is None
    assert restored["revocation_type"] == "REVOCATION_TYPE_UNSET"
    assert restored["revocation_message"] == ""
    for b, key in ((b1, "child"), (b1, "other"), (b2, "grandchild")):
        got = get_version(api, b, f[key]["fingerprint"])
        assert got["status"] == "VERSION_ACTIVE", key
        assert got["revocation_inherited_from"] is None
    # Channels are not rolled forward.
    assert serving(api, b0, "latest") is None


def test_restore_only_clears_copies_of_that_revocation(api: Api) -> None:
    f = family(api)
    b0, b1, b2 = f["buckets"]
    revoke(api, b1, f["other"]["fingerprint"], revoke_in="1h")  # grandchild inherits from other
    revoke(api, b0, f["root"]["fingerprint"], revoke_in="2h")  # child inherits from root
    revoke(api, b0, f["root"]["fingerprint"], restore=True)
    assert get_version(api, b1, f["child"]["fingerprint"])["revoke_at"] is None
    gc = get_version(api, b2, f["grandchild"]["fingerprint"])
    assert gc["revocation_inherited_from"]["version_id"] == f["other"]["id"]
    assert gc["status"] == "VERSION_REVOCATION_SCHEDULED"


def test_restore_cancels_a_schedule(api: Api) -> None:
    b = new_bucket(api)
    v = push(api, b)
    revoke(api, b, v["fingerprint"], revoke_in="1h")
    got = revoke(api, b, v["fingerprint"], restore=True)
    assert got["status"] == "VERSION_ACTIVE"
    assert got["revoke_at"] is None


def test_restore_refusals(api: Api) -> None:
    f = family(api)
    b0, b1, _ = f["buckets"]
    root_fp = f["root"]["fingerprint"]
    body = assert_status(update_version(api, b0, root_fp, restore=True), 400, 9)
    assert body["message"] == NOT_REVOKED
    assert body["message"].endswith("revoked. ")
    assert body["details"] == []
    revoke(api, b0, root_fp, revoke_in="1h")
    body = assert_status(update_version(api, b1, f["child"]["fingerprint"], restore=True), 400, 9)
    assert body["message"] == INHERITED_RESTORE
    assert_status(update_version(api, b0, root_fp, restore=True, revoke_in="1h"), 400, 3)
    both = update_version(api, b0, root_fp, restore=True, revoke_at="2099-01-01T00:00:00Z")
    assert_status(both, 400, 3)
    # With a year-1 revoke_at (Go's unset value) restore works.
    assert revoke(api, b0, root_fp, restore=True, revoke_at=YEAR_ONE)["revoke_at"] is None


def test_exact_refusal_texts() -> None:
    assert NOT_REVOKED == (
        "Restoring does not apply. This version is valid and it is not scheduled to be revoked. "
    )
    assert INHERITED_RESTORE == (
        "Directly restoring this version does not apply. The revocation status is inherited "
        "from an ancestor version. To restore this version, the revoked ancestor should be "
        "restored."
    )


# --- record-time inheritance --------------------------------------------------------------


def test_child_recorded_from_a_revoked_parent_inherits_at_record_time(api: Api) -> None:
    b0, b1, b2 = new_bucket(api), new_bucket(api), new_bucket(api)
    parent = push(api, b0)
    keep = push(api, b0)
    assert keep["name"] == "v2"
    revoke(api, b0, parent["fingerprint"], revoke_in="0s", revocation_message="bad base")
    child = push(api, b1, parent=parent)
    assert child["status"] == "VERSION_REVOKED"
    assert child["revocation_type"] == "INHERITED"
    assert child["revocation_message"] == "bad base"
    assert child["revocation_inherited_from"]["version_id"] == parent["id"]
    # Complete but revoked: `latest` is not pointed at it.
    assert child["name"] == "v1"
    assert serving(api, b1, "latest") is None
    # A grandchild names the origin of the revocation.
    grandchild = push(api, b2, parent=child)
    assert grandchild["revocation_inherited_from"]["version_id"] == parent["id"]
    # Restoring the parent clears both.
    revoke(api, b0, parent["fingerprint"], restore=True)
    assert get_version(api, b1, child["fingerprint"])["status"] == "VERSION_ACTIVE"
    assert get_version(api, b2, grandchild["fingerprint"])["status"] == "VERSION_ACTIVE"


def test_child_of_a_scheduled_parent_inherits_the_schedule(api: Api) -> None:
    b0, b1 = new_bucket(api), new_bucket(api)
    parent = push(api, b0)
    scheduled = revoke(api, b0, parent["fingerprint"], revoke_in="1d")
    child = push(api, b1, parent=parent)
    assert child["status"] == "VERSION_REVOCATION_SCHEDULED"
    assert child["revoke_at"] == scheduled["revoke_at"]
    assert serving(api, b1, "latest") == child["fingerprint"]


# --- consumers -----------------------------------------------------------------------------


def test_packer_and_terraform_data_sources(api: Api) -> None:
    b = new_bucket(api)
    push(api, b)
    v2 = push(api, b)
    create_channel(api, b, "prod", v2["fingerprint"])

    revoke(api, b, v2["fingerprint"], revoke_in="1h")
    # Scheduled: still usable by Packer; Terraform exposes revoke_at.
    assert consumers.packer_version(api, b, "prod")["fingerprint"] == v2["fingerprint"]
    consumers.packer_artifact(api, b, platform="aws", region="us-east-1", channel="prod")
    tf = consumers.tf_version(api, b, "prod")
    assert tf["revoke_at"] and parse_ts(tf["revoke_at"]) > datetime.now(UTC)

    # Revoked but kept on the channel (no rollback): Packer refuses, Terraform reports.
    revoke(api, b, v2["fingerprint"], restore=True)
    revoke(api, b, v2["fingerprint"], revoke_in="0s", disable_rollback_channels=True)
    with pytest.raises(consumers.ConsumerError, match="revoked"):
        consumers.packer_version(api, b, "prod")
    with pytest.raises(consumers.ConsumerError, match="revoked"):
        consumers.packer_artifact(
            api, b, platform="aws", region="us-east-1", fingerprint=v2["fingerprint"]
        )
    tf = consumers.tf_version(api, b, "prod")
    assert tf["fingerprint"] == v2["fingerprint"]
    assert parse_ts(tf["revoke_at"]) <= datetime.now(UTC)


# --- the scheduler in a running server -------------------------------------------------------


@pytest.mark.slow
def test_a_short_schedule_rolls_back_in_a_running_server(api: Api) -> None:
    b = new_bucket(api)
    v1, v2 = push(api, b), push(api, b)
    create_channel(api, b, "prod", v1["fingerprint"])
    api.ok(assign(api, b, "prod", v2["fingerprint"]))
    got = revoke(api, b, v2["fingerprint"], revoke_in="2s")
    assert got["status"] == "VERSION_REVOCATION_SCHEDULED"
    assert serving(api, b, "prod") == v2["fingerprint"]
    assert serving(api, b, "latest") == v2["fingerprint"]
    deadline = time.monotonic() + 20
    while serving(api, b, "prod") != v1["fingerprint"]:
        assert time.monotonic() < deadline, "the scheduler did not roll the channel back"
        time.sleep(0.2)
    assert parse_ts(got["revoke_at"]) <= datetime.now(UTC)
    assert serving(api, b, "latest") == v1["fingerprint"]
    assert get_version(api, b, v2["fingerprint"])["status"] == "VERSION_REVOKED"
    assert [h["author_id"] for h in history(api, b, "prod")][:1] == ["HCP Packer"]


def test_schedules_far_ahead_are_fine(api: Api) -> None:
    b = new_bucket(api)
    v = push(api, b)
    at = datetime.now(UTC) + timedelta(days=3650)
    got = revoke(api, b, v["fingerprint"], revoke_at=rfc3339(at))
    assert got["status"] == "VERSION_REVOCATION_SCHEDULED"

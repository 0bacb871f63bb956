"""Consumers: Packer and Terraform data sources, re-enacted on the real responses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from packyard.domain.enums import Role
from packyard.domain.rules import utcnow
from packyard.services.container import Services
from tests.support import consumers
from tests.support.consumers import ULID_RE, ConsumerError
from tests.support.factories import Api
from tests.support.store_state import set_revocation

RUN_UUID = "3c9d7b0e-6f1a-4d2b-9a51-0c8e2f4b7a10"


def push(
    api: Api,
    bucket: str,
    fp: str,
    builds: list[tuple[str, str, list[str], dict[str, str]]],
    **done: Any,
) -> dict[str, Any]:
    """A complete version: (component, platform, [regions], labels) per build, in order."""
    api.create_version(bucket, fp)
    created = [api.create_build(bucket, fp, b[0], packer_run_uuid=RUN_UUID) for b in builds]
    for build, (component, platform, regions, labels) in zip(created, builds, strict=True):
        api.finish_build(
            bucket,
            fp,
            build["id"],
            platform=platform,
            artifacts=[
                {"external_identifier": f"{fp}-{component}-{r}", "region": r} for r in regions
            ],
            labels=labels,
            packer_run_uuid=RUN_UUID,
            **done,
        )
    version: dict[str, Any] = api.ok(api.get(f"/buckets/{bucket}/versions/{fp}"))["version"]
    return version


@pytest.fixture
def golden(api: Api) -> dict[str, Any]:
    """Bucket `golden`: v1 on `release`, v2 (two aws builds, one docker) on `latest`."""
    api.create_bucket("golden")
    v1 = push(api, "golden", "fp-1", [("amazon-ebs.a", "aws", ["us-east-1"], {})])
    v2 = push(
        api,
        "golden",
        "fp-2",
        [
            ("amazon-ebs.east", "aws", ["us-east-1", "eu-west-1"], {"os": "ubuntu"}),
            ("amazon-ebs.west", "aws", ["us-west-2", "us-east-1"], {"os": "debian"}),
            ("docker.app", "docker", ["docker"], {"os": "alpine"}),
        ],
    )
    release = api.ok(
        api.post("/buckets/golden/channels", {"name": "release", "version_fingerprint": "fp-1"})
    )["channel"]
    api.ok(api.post("/buckets/golden/channels", {"name": "empty"}))
    return {"v1": v1, "v2": v2, "release": release}


# --- Packer -------------------------------------------------------------------------------


def test_packer_version_data_source(api: Api, golden: dict[str, Any]) -> None:
    out = consumers.packer_version(api, "golden", "latest")
    v2 = golden["v2"]
    latest = api.ok(api.get("/buckets/golden/channels/latest"))["channel"]
    assert out == {
        "id": v2["id"],
        "name": "v2",
        "fingerprint": "fp-2",
        "status": "VERSION_ACTIVE",
        "bucket_name": "golden",
        "author_id": "admin-sp",
        "created_at": v2["created_at"],
        "updated_at": v2["updated_at"],
        "channel_id": latest["id"],
    }
    assert consumers.packer_version(api, "golden", "release")["fingerprint"] == "fp-1"
    with pytest.raises(ConsumerError, match="no HCP Packer Version associated with the channel"):
        consumers.packer_version(api, "golden", "empty")
    with pytest.raises(ConsumerError) as missing:
        consumers.packer_version(api, "golden", "nope")
    assert missing.value.code == 5


def test_packer_data_sources_refuse_revoked_but_not_scheduled(
    api: Api, services: Services, golden: dict[str, Any]
) -> None:
    set_revocation(services.store, golden["v1"]["id"], at=utcnow() + timedelta(days=7))
    assert consumers.packer_version(api, "golden", "release")["status"] == (
        "VERSION_REVOCATION_SCHEDULED"
    )
    consumers.packer_artifact(api, "golden", channel="release", platform="aws", region="us-east-1")

    set_revocation(services.store, golden["v1"]["id"])
    with pytest.raises(ConsumerError, match="is revoked and can not be used on Packer builds"):
        consumers.packer_version(api, "golden", "release")
    with pytest.raises(ConsumerError, match="is revoked"):
        consumers.packer_artifact(
            api, "golden", channel="release", platform="aws", region="us-east-1"
        )
    with pytest.raises(ConsumerError, match="is revoked"):
        consumers.packer_artifact(
            api, "golden", fingerprint="fp-1", platform="aws", region="us-east-1"
        )


def test_packer_artifact_data_source_selection(api: Api, golden: dict[str, Any]) -> None:
    v2 = golden["v2"]
    east, west, docker = v2["builds"]
    assert [b["component_type"] for b in v2["builds"]] == [
        "amazon-ebs.east",
        "amazon-ebs.west",
        "docker.app",
    ], "builds come in creation order"
    latest_id = api.ok(api.get("/buckets/golden/channels/latest"))["channel"]["id"]

    # The first build (server order) with an artifact in the region wins.
    out = consumers.packer_artifact(
        api, "golden", channel="latest", platform="aws", region="us-east-1"
    )
    art = next(a for a in east["artifacts"] if a["region"] == "us-east-1")
    assert out == {
        "platform": "aws",
        "component_type": "amazon-ebs.east",
        "created_at": art["created_at"],
        "build_id": east["id"],
        "version_id": v2["id"],
        "channel_id": latest_id,
        "packer_run_uuid": RUN_UUID,
        "external_identifier": "fp-2-amazon-ebs.east-us-east-1",
        "region": "us-east-1",
        "labels": {"os": "ubuntu"},
    }
    # component_type narrows the choice; fingerprint mode has no channel id.
    out = consumers.packer_artifact(
        api,
        "golden",
        fingerprint="fp-2",
        platform="aws",
        region="us-east-1",
        component_type="amazon-ebs.west",
    )
    assert out["build_id"] == west["id"]
    assert out["external_identifier"] == "fp-2-amazon-ebs.west-us-east-1"
    assert out["channel_id"] == ""
    assert (
        consumers.packer_artifact(
            api, "golden", channel="latest", platform="aws", region="us-west-2"
        )["build_id"]
        == west["id"]
    )
    out = consumers.packer_artifact(
        api, "golden", channel="latest", platform="docker", region="docker"
    )
    assert out["build_id"] == docker["id"] and out["labels"] == {"os": "alpine"}

    with pytest.raises(ConsumerError, match=r"could not find a build result matching") as err:
        consumers.packer_artifact(
            api, "golden", channel="latest", platform="aws", region="ap-south-1"
        )
    assert "us-west-2" in str(err.value)
    with pytest.raises(ConsumerError, match="could not find"):
        consumers.packer_artifact(
            api,
            "golden",
            channel="latest",
            platform="aws",
            region="eu-west-1",
            component_type="amazon-ebs.west",
        )
    with pytest.raises(ConsumerError, match="no version associated with the channel"):
        consumers.packer_artifact(api, "golden", channel="empty", platform="aws", region="x")
    with pytest.raises(ConsumerError) as missing:
        consumers.packer_artifact(api, "golden", fingerprint="nope", platform="aws", region="x")
    assert missing.value.code == 10


def test_packer_child_build_records_ancestry_from_data_sources(
    api: Api, golden: dict[str, Any]
) -> None:
    """A child template: version data source on `release`, artifact by fingerprint."""
    version = consumers.packer_version(api, "golden", "release")
    artifact = consumers.packer_artifact(
        api, "golden", fingerprint=version["fingerprint"], platform="aws", region="us-east-1"
    )
    parent_ids = consumers.packer_parent_ids(artifact, [version])
    assert parent_ids == {
        "parent_version_id": golden["v1"]["id"],
        "parent_channel_id": golden["release"]["id"],
    }
    api.create_bucket("app")
    child = push(
        api,
        "app",
        "app-1",
        [("amazon-ebs.app", "aws", ["us-east-1"], {})],
        source_external_identifier=artifact["external_identifier"],
        **parent_ids,
    )
    assert child["parents"]["status"] == "UP_TO_DATE"
    relations = api.ok(
        api.get("/buckets/golden/ancestry", params={"type": "ANCESTRY_TYPE_CHILDREN"})
    )
    assert relations["relations"][0]["child"]["version_id"] == child["id"]
    assert relations["relations"][0]["parent"]["channel_name"] == "release"


def test_viewers_cannot_read_latest_through_data_sources(api: Api, golden: dict[str, Any]) -> None:
    viewer = api.as_role(Role.VIEWER)
    try:
        with pytest.raises(ConsumerError) as denied:
            consumers.packer_version(viewer, "golden", "latest")
        assert denied.value.code == 7 and denied.value.http_status == 403
        with pytest.raises(ConsumerError) as denied:
            consumers.tf_version(viewer, "golden", "latest")
        assert denied.value.http_status == 403
        # Unrestricted channels and fingerprints still work for viewers.
        assert consumers.packer_version(viewer, "golden", "release")["fingerprint"] == "fp-1"
        consumers.tf_artifact(
            viewer, "golden", version_fingerprint="fp-2", platform="docker", region="docker"
        )
    finally:
        viewer.close()


# --- Terraform provider -------------------------------------------------------------------


def test_tf_version_data_source(api: Api, services: Services, golden: dict[str, Any]) -> None:
    v2 = golden["v2"]
    out = consumers.tf_version(api, "golden", "latest")
    assert out == {
        "organization_id": api.tenant.organization_id,
        "project_id": api.tenant.project_id,
        "bucket_name": "golden",
        "channel_name": "latest",
        "fingerprint": "fp-2",
        "id": v2["id"],
        "name": "v2",
        "author_id": "admin-sp",
        "created_at": v2["created_at"],
        "updated_at": v2["updated_at"],
        "revoke_at": "",
    }
    with pytest.raises(ConsumerError, match="does not have an assigned Version"):
        consumers.tf_version(api, "golden", "empty")
    # The provider does not refuse revoked versions: it exposes revoke_at.
    revoked_at = set_revocation(services.store, golden["v1"]["id"])
    out = consumers.tf_version(api, "golden", "release")
    assert out["revoke_at"].startswith(revoked_at.strftime("%Y-%m-%dT%H:%M:%S"))


def test_tf_artifact_data_source(api: Api, golden: dict[str, Any]) -> None:
    v2 = golden["v2"]
    east, west, _ = v2["builds"]
    out = consumers.tf_artifact(
        api, "golden", channel_name="latest", platform="aws", region="us-east-1"
    )
    art = next(a for a in east["artifacts"] if a["region"] == "us-east-1")
    assert out == {
        "bucket_name": "golden",
        "version_fingerprint": "fp-2",
        "revoke_at": None,
        "platform": "aws",
        "component_type": "amazon-ebs.east",
        "build_id": east["id"],
        "packer_run_uuid": RUN_UUID,
        "labels": {"os": "ubuntu"},
        "region": "us-east-1",
        "id": art["id"],
        "external_identifier": "fp-2-amazon-ebs.east-us-east-1",
        "created_at": art["created_at"],
    }
    by_fp = consumers.tf_artifact(
        api,
        "golden",
        version_fingerprint="fp-2",
        platform="aws",
        region="us-east-1",
        component_type="amazon-ebs.west",
    )
    assert by_fp["build_id"] == west["id"]
    # Label matching (provider v0.113+): the build's labels must contain every pair.
    by_label = consumers.tf_artifact(
        api,
        "golden",
        channel_name="latest",
        platform="aws",
        region="us-east-1",
        labels={"os": "debian"},
    )
    assert by_label["build_id"] == west["id"]
    assert by_label["external_identifier"] == "fp-2-amazon-ebs.west-us-east-1"
    with pytest.raises(ConsumerError, match="Could not find an Artifact"):
        consumers.tf_artifact(
            api,
            "golden",
            channel_name="latest",
            platform="aws",
            region="us-east-1",
            labels={"os": "arch"},
        )
    with pytest.raises(ConsumerError, match="Could not find an Artifact"):
        consumers.tf_artifact(
            api, "golden", channel_name="release", platform="docker", region="docker"
        )
    with pytest.raises(ConsumerError, match="does not have an assigned Version"):
        consumers.tf_artifact(api, "golden", channel_name="empty", platform="aws", region="x")
    assert ULID_RE.match(out["id"])


def test_tf_bucket_names_walks_every_page_in_name_order(api: Api) -> None:
    names = {f"bucket-{c}" for c in "qwertyuiopas"}
    for name in sorted(names, reverse=True):
        api.create_bucket(name)
    # As the provider sends it: no page size, one terminating page.
    assert consumers.tf_bucket_names(api) == names
    # Forced small pages: the loop still ends, in order, with every name once.
    for size in (1, 5, 12, 13):
        assert consumers.tf_bucket_names(api, page_size=size) == names


def test_tf_bucket_names_on_an_empty_project(api: Api) -> None:
    assert consumers.tf_bucket_names(api) == set()

"""The verdicts, with a dict-backed lookup (no server, no database)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from packyard.imagecheck import (
    ChannelArtifact,
    ChannelVersion,
    KnownImage,
    Level,
    PlanError,
    PlanReport,
    Untracked,
    evaluate,
)
from tests.imagecheck.plans import (
    API_AMI,
    NEW_AMI,
    QUEUE_AMI,
    SPOT_AMI,
    data_source_plan,
    fixture,
)

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
REVOKED_AT = datetime(2026, 12, 1, tzinfo=UTC)
SOON = datetime(2026, 12, 24, tzinfo=UTC)


class DictLookup:
    """The registry as two dicts; counts the calls (each must be one batch)."""

    def __init__(
        self,
        images: dict[str, list[KnownImage]] | None = None,
        channels: dict[str, list[ChannelVersion]] | None = None,
    ) -> None:
        self.images = images or {}
        self.served = channels or {}
        self.calls: list[tuple[str, list[str]]] = []

    def find(self, image_ids: Iterable[str]) -> Mapping[str, list[KnownImage]]:
        ids = list(image_ids)
        self.calls.append(("find", ids))
        return {i: self.images[i] for i in ids if i in self.images}

    def channels(self, buckets: Iterable[str]) -> Mapping[str, list[ChannelVersion]]:
        names = list(buckets)
        self.calls.append(("channels", names))
        return {b: self.served[b] for b in names if b in self.served}


def image(
    bucket: str,
    number: int,
    *,
    revoke_at: datetime | None = None,
    message: str = "",
    region: str = "us-west-2",
) -> KnownImage:
    return KnownImage(
        bucket=bucket,
        version_name=f"v{number}",
        fingerprint=f"{bucket}-{number}",
        version_id=f"id-{bucket}-{number}",
        revoke_at=revoke_at,
        revocation_message=message,
        platform="aws",
        region=region,
        version_number=number,
        build_id=f"b-{bucket}-{number}",
        component_type="amazon-ebs.main",
    )


def served(
    channel: str, bucket: str, number: int, ami: str, revoke_at: datetime | None = None
) -> ChannelVersion:
    return ChannelVersion(
        channel=channel,
        version_name=f"v{number}",
        version_number=number,
        fingerprint=f"{bucket}-{number}",
        revoke_at=revoke_at,
        artifacts=(
            ChannelArtifact("azure", "azure-arm.main", "us-west-2", "not-this-one"),
            ChannelArtifact("aws", "amazon-ebs.main", "eu-west-1", "ami-elsewhere"),
            ChannelArtifact("aws", "amazon-ebs.main", "us-west-2", ami),
        ),
    )


def by_address(report: PlanReport) -> dict[str, Any]:
    return {f.address: f for f in report.findings}


def registry() -> DictLookup:
    """The fixture plans' images: the change plan's new AMI is golden v3, revoked."""
    return DictLookup(
        images={
            API_AMI: [image("golden", 1)],
            QUEUE_AMI: [image("queue", 1)],
            SPOT_AMI: [image("spot", 1)],
            NEW_AMI: [image("golden", 3, revoke_at=REVOKED_AT, message="CVE-2026-1")],
        }
    )


def test_replace_onto_revoked_fails_update_warns() -> None:
    lookup = registry()
    report = evaluate(fixture("plan-change.json"), lookup, untracked=Untracked.warn, now=NOW)
    rows = by_address(report)
    api, queue, spot = (
        rows["aws_instance.api"],
        rows["aws_launch_template.queue"],
        rows["aws_spot_instance_request.spot"],
    )
    assert (api.action, api.level, api.image.version_name) == ("replace", Level.fail, "v3")
    assert (queue.action, queue.level) == ("update", Level.warn)
    assert (spot.action, spot.level) == ("create", Level.ok)
    assert (report.scanned, report.checked, report.failed, report.warned) == (4, 3, 1, 1)
    assert not report.ok
    for f in report.findings:
        assert f.reason and "\n" not in f.reason
    assert api.image.revoke_at == REVOKED_AT and "2026-12-01" in api.reason
    # One batch per kind, whatever the number of images.
    assert [kind for kind, _ in lookup.calls] == ["find", "channels"]
    assert sorted(lookup.calls[0][1]) == sorted({NEW_AMI, SPOT_AMI})
    assert sorted(lookup.calls[1][1]) == ["golden", "spot"]


def test_create_onto_revoked_fails_and_unchanged_is_info() -> None:
    lookup = registry()
    lookup.images[API_AMI] = [image("golden", 1, revoke_at=REVOKED_AT)]
    report = evaluate(fixture("plan-create.json"), lookup, untracked=Untracked.warn, now=NOW)
    assert by_address(report)["aws_instance.api"].level is Level.fail
    assert (report.failed, report.warned) == (1, 0)

    noop = {
        "format_version": "1.2",
        "resource_changes": [
            {
                "address": "aws_instance.old",
                "mode": "managed",
                "type": "aws_instance",
                "change": {"actions": ["no-op"], "after": {"ami": API_AMI}},
            }
        ],
    }
    unchanged = evaluate(noop, lookup, untracked=Untracked.warn, now=NOW)
    assert [f.level for f in unchanged.findings] == [Level.info]
    assert unchanged.ok and (unchanged.failed, unchanged.warned) == (0, 0)


def test_scheduled_revocation_warns_with_the_date() -> None:
    lookup = registry()
    lookup.images[SPOT_AMI] = [image("spot", 1, revoke_at=SOON, message="EOL")]
    report = evaluate(fixture("plan-create.json"), lookup, untracked=Untracked.warn, now=NOW)
    spot = by_address(report)["aws_spot_instance_request.spot"]
    assert spot.level is Level.warn and spot.image.revoke_at == SOON
    assert "2026-12-24" in spot.reason
    assert report.ok and report.warned == 1
    # Once the date has passed, the same image fails a create.
    later = evaluate(
        fixture("plan-create.json"), lookup, untracked=Untracked.warn, now=SOON + timedelta(1)
    )
    assert by_address(later)["aws_spot_instance_request.spot"].level is Level.fail


@pytest.mark.parametrize(
    ("policy", "level", "ok"),
    [(Untracked.warn, Level.warn, True), (Untracked.fail, Level.fail, False)],
)
def test_untracked_images_follow_the_policy(policy: Untracked, level: Level, ok: bool) -> None:
    lookup = DictLookup()
    report = evaluate(fixture("plan-create.json"), lookup, untracked=policy, now=NOW)
    assert {f.level for f in report.findings} == {level}
    assert all(f.image is None for f in report.findings)
    assert report.ok is ok
    assert (report.failed, report.warned) == ((0, 3) if ok else (3, 0))
    assert [kind for kind, _ in lookup.calls] == ["find"]  # no bucket: no channel lookup


def test_behaviour_maps_to_policy() -> None:
    assert Untracked.from_behaviour("FAIL") is Untracked.fail
    assert Untracked.from_behaviour("WARN") is Untracked.warn
    assert Untracked.from_behaviour("UNSET") is Untracked.warn
    assert Untracked.from_behaviour(None) is Untracked.warn


def test_newer_version_on_a_channel() -> None:
    lookup = registry()
    lookup.served = {
        "queue": [
            served("prod", "queue", 2, "ami-0e55555555555555e"),
            served("canary", "queue", 3, "ami-revoked", revoke_at=REVOKED_AT),
            served("old", "queue", 1, QUEUE_AMI),
        ]
    }
    report = evaluate(fixture("plan-create.json"), lookup, untracked=Untracked.warn, now=NOW)
    queue = by_address(report)["aws_launch_template.queue"]
    assert queue.level is Level.info
    assert queue.newer == [("prod", "v2")]  # a revoked version on a channel is not offered
    assert [(n.channel, n.image_id) for n in queue.newer_images] == [
        ("prod", "ami-0e55555555555555e")
    ]
    assert queue.channels == ["old"]
    assert report.newer_available == 1 and report.ok


def test_data_sources_and_unknown_images() -> None:
    lookup = DictLookup(
        images={
            NEW_AMI: [image("golden", 3, revoke_at=REVOKED_AT, message="CVE-2026-1")],
            "golden-gce-1": [image("gce", 1)],
            API_AMI: [image("golden", 1)],
        },
        channels={"golden": [served("production", "golden", 4, "ami-0f66666666666666f")]},
    )
    report = evaluate(data_source_plan(), lookup, untracked=Untracked.fail, now=NOW)
    rows = by_address(report)
    web = rows["aws_instance.web"]
    assert (web.source, web.level, web.newer) == ("data_source", Level.fail, [("production", "v4")])
    assert rows['module.fleet["a"].aws_launch_template.lt'].level is Level.warn  # update
    assert rows["aws_ssm_parameter.golden"].level is Level.fail  # created from a revoked image
    assert rows["google_compute_instance.vm"].level is Level.ok
    later = rows["aws_instance.later"]
    assert (later.image_id, later.level, later.image) == (None, Level.warn, None)
    assert "data.hcp_packer_artifact.later" in later.reason
    assert rows["aws_instance.pinned"].source == "literal"
    assert (report.scanned, report.failed, report.warned) == (6, 2, 2)


def test_gce_self_links_match_bare_image_names() -> None:
    plan = {
        "format_version": "1.2",
        "resource_changes": [
            {
                "address": "google_compute_disk.d",
                "mode": "managed",
                "type": "google_compute_disk",
                "change": {
                    "actions": ["create"],
                    "after": {
                        "image": "https://www.googleapis.com/compute/v1/projects/p/global/images/gimg"
                    },
                },
            }
        ],
    }
    lookup = DictLookup(images={"gimg": [image("gce", 2, revoke_at=REVOKED_AT)]})
    report = evaluate(plan, lookup, untracked=Untracked.warn, now=NOW)
    assert [f.level for f in report.findings] == [Level.fail]


def test_the_most_favourable_hit_wins() -> None:
    lookup = registry()
    lookup.images[API_AMI] = [
        image("golden", 1, revoke_at=REVOKED_AT),
        image("copy", 7),
        image("copy", 5),
    ]
    report = evaluate(fixture("plan-create.json"), lookup, untracked=Untracked.warn, now=NOW)
    api = by_address(report)["aws_instance.api"].image
    assert (api.bucket, api.version_name) == ("copy", "v7")


def test_empty_plan_asks_nothing_and_bad_input_raises() -> None:
    lookup = DictLookup()
    report = evaluate({"format_version": "1.2"}, lookup, untracked=Untracked.fail, now=NOW)
    assert (report.findings, report.scanned, report.ok) == ([], 0, True)
    assert lookup.calls == []
    with pytest.raises(PlanError):
        evaluate({"hello": 1}, lookup, untracked=Untracked.warn, now=NOW)

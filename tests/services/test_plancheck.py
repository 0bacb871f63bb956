"""The run task's image check over a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from packyard.domain.rules import utcnow
from packyard.imagecheck import Level, PlanError, PlanReport, Untracked
from packyard.services.container import Services
from tests.imagecheck.plans import API_AMI, NEW_AMI, QUEUE_AMI, SPOT_AMI, fixture
from tests.support.factories import Api, make_tenant
from tests.support.querycount import count_statements
from tests.support.revocation import revoke


def push(api: Api, bucket: str, fingerprint: str, amis: dict[str, str]) -> None:
    """One complete version of ``bucket`` holding ``{region: ami}``."""
    api.create_version(bucket, fingerprint)
    build = api.create_build(bucket, fingerprint, "amazon-ebs.main")
    api.finish_build(
        bucket,
        fingerprint,
        build["id"],
        artifacts=[{"external_identifier": a, "region": r} for r, a in amis.items()],
    )


def channel(api: Api, bucket: str, name: str, fingerprint: str, **kw: Any) -> None:
    api.ok(
        api.post(
            f"/buckets/{bucket}/channels", {"name": name, "version_fingerprint": fingerprint, **kw}
        )
    )


def by_address(report: PlanReport) -> dict[str, Any]:
    return {f.address: f for f in report.findings}


@pytest.fixture
def seeded(api: Api) -> Api:
    """The fixture plans' AMIs: golden v1 (api), queue v1 and v2 (v2 on prod, v3 only on a
    restricted channel), spot v1 (revocation scheduled), golden v2 = the new AMI, revoked."""
    api.create_bucket("golden")
    push(api, "golden", "golden-1", {"us-west-2": API_AMI})
    push(api, "golden", "golden-2", {"us-west-2": NEW_AMI})
    revoke(api, "golden", "golden-2", revoke_in="0s", revocation_message="CVE-2026-1")
    api.create_bucket("queue")
    push(api, "queue", "queue-1", {"us-west-2": QUEUE_AMI})
    push(api, "queue", "queue-2", {"us-west-2": "ami-0e55555555555555e", "eu-west-1": "ami-eu"})
    push(api, "queue", "queue-3", {"us-west-2": "ami-restricted"})
    channel(api, "queue", "prod", "queue-2")
    channel(api, "queue", "hidden", "queue-3", restricted=True)
    api.create_bucket("spot")
    push(api, "spot", "spot-1", {"us-west-2": SPOT_AMI})
    revoke(api, "spot", "spot-1", revoke_in="7d", revocation_message="EOL soon")
    return api


def test_change_plan_verdicts(services: Services, seeded: Api) -> None:
    project = seeded.tenant.project_id
    report = services.plancheck.evaluate(project, fixture("plan-change.json"), Untracked.warn)
    rows = by_address(report)
    api_row = rows["aws_instance.api"]
    assert (api_row.action, api_row.level) == ("replace", Level.fail)
    assert api_row.image is not None
    assert (api_row.image.bucket, api_row.image.version_name) == ("golden", "v2")
    assert api_row.image.revocation_message == "CVE-2026-1"
    assert rows["aws_launch_template.queue"].level is Level.warn  # update onto revoked
    spot = rows["aws_spot_instance_request.spot"]
    assert spot.level is Level.warn and spot.image is not None and spot.image.revoke_at
    assert (report.scanned, report.failed, report.warned) == (4, 1, 2)
    assert not report.ok


def test_newer_versions_and_restricted_channels(services: Services, seeded: Api) -> None:
    project = seeded.tenant.project_id
    report = services.plancheck.evaluate(project, fixture("plan-create.json"), Untracked.warn)
    queue = by_address(report)["aws_launch_template.queue"]
    assert queue.level is Level.info
    # The run task sees what a viewer sees: the restricted channel's v3 is not offered.
    assert queue.newer == [("prod", "v2")]
    assert [n.image_id for n in queue.newer_images] == ["ami-0e55555555555555e"]
    assert report.ok and (report.failed, report.warned) == (0, 1)


def test_untracked_policy_and_tenant_isolation(services: Services, seeded: Api) -> None:
    # The same AMIs tracked (and revoked) by another tenant change nothing here.
    other = make_tenant(services)
    other_api = Api(seeded.base_url, other)
    try:
        other_api.create_bucket("golden")
        push(other_api, "golden", "x-1", {"us-west-2": SPOT_AMI})
        revoke(other_api, "golden", "x-1", revoke_in="0s")
    finally:
        other_api.close()
    fresh = make_tenant(services)
    plan = fixture("plan-create.json")
    warned = services.plancheck.evaluate(fresh.project_id, plan, Untracked.warn)
    assert {f.level for f in warned.findings} == {Level.warn} and warned.ok
    assert all(f.image is None for f in warned.findings)
    failed = services.plancheck.evaluate(fresh.project_id, plan, Untracked.fail)
    assert (failed.failed, failed.ok) == (3, False)
    mine = services.plancheck.evaluate(seeded.tenant.project_id, plan, Untracked.fail)
    spot = by_address(mine)["aws_spot_instance_request.spot"]
    assert spot.image is not None and spot.image.bucket == "spot"
    assert spot.level is Level.warn  # scheduled here, not revoked as in the other tenant


def _many(n: int) -> dict[str, Any]:
    """``n`` instances: the four tracked AMIs, then untracked ones."""
    amis = [API_AMI, NEW_AMI, QUEUE_AMI, SPOT_AMI]
    return {
        "format_version": "1.2",
        "resource_changes": [
            {
                "address": f"aws_instance.i{i}",
                "mode": "managed",
                "type": "aws_instance",
                "change": {
                    "actions": ["create"],
                    "after": {"ami": amis[i] if i < len(amis) else f"ami-untracked-{i}"},
                },
            }
            for i in range(n)
        ],
    }


def test_query_count_does_not_grow_with_the_plan(services: Services, seeded: Api) -> None:
    project = seeded.tenant.project_id
    services.plancheck.evaluate(project, _many(5), Untracked.warn)  # warm up
    with count_statements(services.store.engine) as small:
        services.plancheck.evaluate(project, _many(5), Untracked.warn)
    with count_statements(services.store.engine) as large:
        report = services.plancheck.evaluate(project, _many(400), Untracked.warn)
    assert len(report.findings) == 400
    # One query for the images, one for the channels of their buckets.
    assert small.count == large.count and large.count <= 3, (small, large)
    with count_statements(services.store.engine) as empty:
        services.plancheck.evaluate(project, {"format_version": "1.2"}, Untracked.warn)
    assert empty.count == 0


def test_bad_plan_is_refused_before_any_query(services: Services, seeded: Api) -> None:
    with count_statements(services.store.engine) as log, pytest.raises(PlanError):
        services.plancheck.evaluate(seeded.tenant.project_id, {"hello": 1}, Untracked.warn)
    assert log.count == 0


def test_revocation_time_is_taken_at_evaluation(services: Services, seeded: Api) -> None:
    project = seeded.tenant.project_id
    later = utcnow() + timedelta(days=8)
    report = services.plancheck.evaluate(
        project, fixture("plan-create.json"), Untracked.warn, now=later
    )
    assert by_address(report)["aws_spot_instance_request.spot"].level is Level.fail

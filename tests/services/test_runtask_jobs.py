"""The run-task job queue driven directly, with explicit ``now`` values: claims, leases,
give-up and the access token's lifetime."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from packyard.domain.rules import utcnow
from packyard.services.container import Services
from packyard.services.runtask_jobs import RunTaskRequest, RunTaskSettings
from packyard.store.runtask_jobs import RunTaskJobRepo
from tests.support.factories import TenantFixture, unique
from tests.support.tfc import SimulatedTFC

SETTINGS = RunTaskSettings(
    hosts=frozenset({"127.0.0.1"}),
    http_hosts=frozenset({"127.0.0.1"}),
    timeout_s=2,
    backoff_base_s=0.01,
    backoff_max_s=0.02,
    lease_s=60,
)


@pytest.fixture
def tfc() -> Iterator[SimulatedTFC]:
    sim = SimulatedTFC()
    yield sim
    sim.close()


def queue(services: Services, tenant: TenantFixture, tfc: SimulatedTFC) -> RunTaskRequest:
    run = tfc.new_run("plan-create.json")
    payload = tfc.payload(run)
    request = RunTaskRequest(
        project_id=tenant.project_id,
        task_result_id=run.task_result_id,
        stage="post_plan",
        run_id=payload["run_id"],
        workspace_name="ws",
        plan_json_api_url=payload["plan_json_api_url"],
        callback_url=payload["task_result_callback_url"],
        access_token=run.token,
        outcomes=True,
        on_untracked_image="UNSET",
        link_base="https://registry.example.test",
    )
    assert services.runtask_jobs.enqueue(request)
    return request


def test_the_token_is_sealed_while_waiting_and_gone_when_done(
    services: Services, tenant: TenantFixture, tfc: SimulatedTFC
) -> None:
    services.runtask_jobs.settings = SETTINGS
    request = queue(services, tenant, tfc)
    job = services.runtask_jobs.get(request.task_result_id)
    assert job is not None and job.access_token_sealed is not None
    assert request.access_token.encode() not in job.access_token_sealed
    assert services.runtask_jobs.run_due() == 1
    done = services.runtask_jobs.get(request.task_result_id)
    assert done is not None and done.state == "done" and done.access_token_sealed is None
    assert done.result is not None and done.result["data"]["type"] == "task-results"
    assert len(tfc.callbacks(request.task_result_id)) == 1


def test_a_duplicate_is_not_queued_twice(
    services: Services, tenant: TenantFixture, tfc: SimulatedTFC
) -> None:
    request = queue(services, tenant, tfc)
    assert not services.runtask_jobs.enqueue(request)
    assert not services.runtask_jobs.enqueue(replace(request, access_token=unique("other")))


def test_a_lapsed_claim_is_taken_over_and_the_old_claim_changes_nothing(
    services: Services, tenant: TenantFixture, tfc: SimulatedTFC
) -> None:
    services.runtask_jobs.settings = SETTINGS
    request = queue(services, tenant, tfc)
    now = utcnow()
    with services.store.write(affects_reads=False) as conn:
        first = RunTaskJobRepo(conn).claim(now, now + timedelta(seconds=60))
    assert first is not None and first.attempts == 1
    with services.store.write(affects_reads=False) as conn:
        assert RunTaskJobRepo(conn).claim(now + timedelta(seconds=30), now) is None
    # The first server died; once its lease lapses another server runs the job.
    assert services.runtask_jobs.run_due(now + timedelta(seconds=61)) == 1
    done = services.runtask_jobs.get(request.task_result_id)
    assert done is not None and done.state == "done" and done.attempts == 2
    with services.store.write(affects_reads=False) as conn:
        assert not RunTaskJobRepo(conn).change(first, state="queued")
    assert len(tfc.callbacks(request.task_result_id)) == 1


def test_given_up_after_hcp_terraforms_limit_and_the_token_dropped(
    services: Services, tenant: TenantFixture, tfc: SimulatedTFC
) -> None:
    services.runtask_jobs.settings = replace(SETTINGS, give_up_after_s=0.5)
    request = queue(services, tenant, tfc)
    with tfc.down():
        deadline = utcnow() + timedelta(seconds=20)
        while (job := services.runtask_jobs.get(request.task_result_id)) is not None and (
            job.state != "failed"
        ):
            assert utcnow() < deadline
            services.runtask_jobs.run_due()
    assert job is not None
    assert job.access_token_sealed is None and job.finished_at is not None
    assert job.last_error


def test_outbound_guard() -> None:
    s = RunTaskSettings()
    assert s.refusal("https://app.terraform.io/api/v2/task-results/x/callback") is None
    assert s.refusal("http://app.terraform.io/api/v2/x") is not None
    assert s.refusal("https://evil.example/api") is not None
    assert s.refusal("file:///etc/passwd") is not None
    # The plan download's redirect may go to HCP Terraform's archive store, over https only.
    assert s.refusal("https://archivist.terraform.io/v1/object/x", redirect=True) is None
    assert s.refusal("http://169.254.169.254/latest", redirect=True) is not None

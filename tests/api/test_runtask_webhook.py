"""The image validation run task end to end: a simulated HCP Terraform (tests/support/tfc.py)
sends signed requests for the real Terraform plans to a real server, serves the plan JSON
behind the run's access token, and records the callbacks."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from packyard.api.app import create_app
from packyard.domain.enums import BuildStatus, Role, RunTaskBehaviour, TemplateType
from packyard.domain.models import Caller
from packyard.domain.rules import utcnow
from packyard.metrics import metrics
from packyard.server import prepare
from packyard.services.builds import ArtifactInput, BuildChanges
from packyard.services.container import Services
from packyard.services.runtask_jobs import PLAN_MAX_ENV, RunTaskSettings
from packyard.store.engine import Store, sqlite_url
from packyard.store.runtask_jobs import Job, RunTaskJobRepo
from tests.support.factories import TenantFixture, make_tenant, unique
from tests.support.revocation import request
from tests.support.serve_process import ServeProcess
from tests.support.server import serving_app
from tests.support.tfc import PLANS, Callback, SimulatedTFC

API_AMI, QUEUE_AMI, SPOT_AMI, NEW_AMI = (
    "ami-0a11111111111111a",
    "ami-0b22222222222222b",
    "ami-0c33333333333333c",
    "ami-0d44444444444444d",
)
COUNTS = re.compile(r"(\d+) resource\(s\): (\d+) failed, (\d+) warned")


def settings(**overrides: Any) -> RunTaskSettings:
    base = RunTaskSettings(
        hosts=frozenset({"127.0.0.1"}),
        http_hosts=frozenset({"127.0.0.1"}),  # the simulated HCP Terraform serves plain http
        timeout_s=5,
        backoff_base_s=0.05,
        backoff_max_s=0.3,
        poll_interval_s=0.05,
    )
    return replace(base, **overrides)


@pytest.fixture
def tfc() -> Iterator[SimulatedTFC]:
    sim = SimulatedTFC()
    yield sim
    sim.close()


class Registry:
    """A project with a run task and images in several states, served by a real server."""

    def __init__(self, services: Services, tenant: TenantFixture, url: str) -> None:
        self.services = services
        self.caller: Caller = tenant.caller(Role.ADMIN)
        access = services.runtasks.get_api(self.caller)
        self.hmac_key = access.hmac_key
        self.url = f"{url}/packyard/runtasks/{access.api_id}"
        self.bucket = unique("web")
        services.buckets.create(self.caller, self.bucket, None, None)

    def image(self, ami: str, state: str) -> str:
        """A version whose build made ``ami``: ``current``, ``revoked`` or ``scheduled``."""
        fp = unique("fp")
        self.services.versions.create(self.caller, self.bucket, fp, TemplateType.HCL2)
        build = self.services.builds.create(
            self.caller, self.bucket, fp, "amazon-ebs.a", BuildChanges()
        )
        self.services.builds.update(
            self.caller,
            self.bucket,
            fp,
            build.id,
            BuildChanges(
                status=BuildStatus.DONE,
                platform="aws",
                artifacts=[ArtifactInput(ami, "us-east-1")],
                metadata={"packer": {}},
            ),
        )
        if state != "current":
            at = utcnow() + (timedelta(days=7) if state == "scheduled" else timedelta(0))
            self.services.revocation.update(
                self.caller, self.bucket, fp, request(revoke_at=at, message=f"{state} in test")
            )
        return fp

    def job(self, task_result_id: str) -> Job | None:
        return self.services.runtask_jobs.get(task_result_id)


@pytest.fixture
def registry(services: Services, tenant: TenantFixture) -> Iterator[Registry]:
    services.runtask_jobs.settings = settings()
    with serving_app(create_app(services)) as url:
        yield Registry(services, tenant, url)


def wait_for(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def counts(callback: Callback) -> tuple[int, int, int]:
    found = COUNTS.search(callback.body["data"]["attributes"]["message"])
    assert found is not None, callback.body
    return int(found[1]), int(found[2]), int(found[3])


def outcomes_by_id(callback: Callback) -> dict[str, dict[str, Any]]:
    return {o["attributes"]["outcome-id"]: o["attributes"] for o in callback.outcomes}


def flagged(callback: Callback) -> dict[str, dict[str, Any]]:
    """The outcomes that fail or warn (others tell of a newer version, say)."""
    return {
        key: o
        for key, o in outcomes_by_id(callback).items()
        if o["tags"]["Status"][0]["label"] in ("Failed", "Warning")
    }


def tags(outcome: dict[str, Any]) -> tuple[str, str, str]:
    status = outcome["tags"]["Status"][0]
    severity = outcome["tags"]["Severity"][0]
    return status["label"], status["level"], severity["label"]


def check(registry: Registry, tfc: SimulatedTFC, plan: bytes | str, **payload: Any) -> Callback:
    run = tfc.new_run(plan)
    answer = tfc.deliver(registry.url, tfc.payload(run, **payload), registry.hmac_key)
    assert answer.status_code == 200, answer.text
    return tfc.wait_final(run.task_result_id)


# --- protocol --------------------------------------------------------------------------


def test_verification_request_is_answered_and_nothing_else(
    registry: Registry, tfc: SimulatedTFC
) -> None:
    run = tfc.new_run("plan-create.json")
    payload = tfc.payload(run) | {"access_token": "test-token"}
    answer = tfc.deliver(registry.url, payload, registry.hmac_key)
    assert answer.status_code == 200
    time.sleep(0.3)
    assert registry.job(run.task_result_id) is None
    assert tfc.callbacks() == [] and tfc.state.plan_gets == 0


@pytest.mark.parametrize("signature", ["", "0" * 128, "wrong-key"])
def test_unsigned_or_wrongly_signed_requests_are_refused(
    registry: Registry, tfc: SimulatedTFC, signature: str
) -> None:
    run = tfc.new_run("plan-create.json")
    payload = tfc.payload(run)
    if signature == "wrong-key":
        answer = tfc.deliver(registry.url, payload, "not-the-key")
    else:
        answer = tfc.deliver(registry.url, payload, None, signature=signature)
    assert answer.status_code == 401
    assert answer.json()["code"] == 16
    time.sleep(0.3)
    assert registry.job(run.task_result_id) is None
    assert tfc.callbacks() == [] and tfc.state.plan_gets == 0


def test_a_signature_over_other_bytes_is_refused(registry: Registry, tfc: SimulatedTFC) -> None:
    """The HMAC covers the raw body: the same JSON serialised differently does not verify."""
    from tests.support.tfc import sign

    run = tfc.new_run("plan-create.json")
    payload = tfc.payload(run)
    spaced = json.dumps(payload).encode()  # what was "signed"
    answer = tfc.deliver(registry.url, payload, None, signature=sign(spaced, registry.hmac_key))
    assert answer.status_code == 401
    assert registry.job(run.task_result_id) is None


def test_unknown_endpoint_is_404(registry: Registry, tfc: SimulatedTFC) -> None:
    run = tfc.new_run("plan-create.json")
    url = registry.url.rsplit("/", 1)[0] + "/no-such-id"
    answer = tfc.deliver(url, tfc.payload(run), registry.hmac_key)
    assert answer.status_code == 404
    assert answer.json()["code"] == 5


def test_signed_garbage_is_400(registry: Registry) -> None:
    import httpx

    from tests.support.tfc import sign

    body = b"not json"
    answer = httpx.post(
        registry.url,
        content=body,
        headers={"X-TFC-Task-Signature": sign(body, registry.hmac_key)},
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == 3


def test_callbacks_to_hosts_not_allowed_are_refused(registry: Registry, tfc: SimulatedTFC) -> None:
    run = tfc.new_run("plan-create.json")
    payload = tfc.payload(run)
    payload["task_result_callback_url"] = "https://169.254.169.254/latest/meta-data"
    answer = tfc.deliver(registry.url, payload, registry.hmac_key)
    assert answer.status_code == 400
    assert answer.json()["details"][0]["field_violations"][0]["field"] == (
        "task_result_callback_url"
    )
    assert registry.job(run.task_result_id) is None


def test_replayed_request_gives_one_callback(registry: Registry, tfc: SimulatedTFC) -> None:
    registry.image(NEW_AMI, "current")
    run = tfc.new_run("plan-change.json")
    payload = tfc.payload(run)
    for _ in range(3):
        assert tfc.deliver(registry.url, payload, registry.hmac_key).status_code == 200
    final = tfc.wait_final(run.task_result_id)
    assert final.authorization == f"Bearer {run.token}"
    assert final.content_type == "application/vnd.api+json"
    time.sleep(0.5)
    assert tfc.deliver(registry.url, payload, registry.hmac_key).status_code == 200
    time.sleep(0.5)
    assert len([c for c in tfc.callbacks(run.task_result_id) if c.status != "running"]) == 1
    assert tfc.state.plan_gets == 1
    job = registry.job(run.task_result_id)
    assert job is not None and job.state == "done" and job.access_token_sealed is None


def test_plan_is_fetched_through_the_redirect_without_leaking_the_token(
    registry: Registry, tfc: SimulatedTFC
) -> None:
    final = check(registry, tfc, "plan-create.json")
    assert tfc.state.archive_gets == 1
    assert tfc.state.leaked_authorization == []
    assert final.body["data"]["type"] == "task-results"
    assert final.body["data"]["attributes"]["url"].startswith(registry.url.split("/packyard")[0])


def test_pre_plan_stage_passes_and_says_where_to_attach(
    registry: Registry, tfc: SimulatedTFC
) -> None:
    final = check(registry, tfc, "plan-create.json", stage="pre_plan")
    assert final.status == "passed"
    assert final.outcomes == []
    assert tfc.state.plan_gets == 0


def test_plan_too_large_fails_with_the_reason(
    registry: Registry, tfc: SimulatedTFC, services: Services
) -> None:
    services.runtask_jobs.settings = settings(plan_max_bytes=2000)
    final = check(registry, tfc, "plan-create.json")
    assert final.status == "failed"
    assert "relationships" not in final.body["data"]
    assert PLAN_MAX_ENV in final.body["data"]["attributes"]["message"]


def test_a_plan_that_is_not_a_plan_fails_with_the_reason(
    registry: Registry, tfc: SimulatedTFC
) -> None:
    final = check(registry, tfc, b'{"hello": "world"}')
    assert final.status == "failed"
    assert "relationships" not in final.body["data"]


# --- verdicts --------------------------------------------------------------------------


def test_create_onto_revoked_scheduled_and_untracked_images(
    registry: Registry, tfc: SimulatedTFC
) -> None:
    registry.image(API_AMI, "revoked")
    registry.image(QUEUE_AMI, "scheduled")
    before = (
        metrics().registry.get_sample_value("packyard_run_task_jobs_total", {"event": "failed"})
        or 0.0
    )
    final = check(registry, tfc, "plan-create.json")  # SPOT_AMI is untracked
    assert final.status == "failed"
    assert counts(final)[1:] == (1, 2)
    got = flagged(final)
    assert set(got) == {
        "aws_instance.api",
        "aws_launch_template.queue",
        "aws_spot_instance_request.spot",
    }
    assert tags(got["aws_instance.api"]) == ("Failed", "error", "High")
    assert tags(got["aws_launch_template.queue"]) == ("Warning", "warning", "Medium")
    assert tags(got["aws_spot_instance_request.spot"]) == ("Warning", "warning", "Medium")
    assert f"/buckets/{registry.bucket}/versions/" in got["aws_instance.api"]["url"]
    assert API_AMI in got["aws_instance.api"]["body"]
    wait_for(
        lambda: (
            metrics().registry.get_sample_value("packyard_run_task_jobs_total", {"event": "failed"})
            == before + 1
        )
    )


def test_untracked_images_fail_when_the_registry_says_so(
    registry: Registry, tfc: SimulatedTFC
) -> None:
    registry.services.runtasks.update_config(registry.caller, RunTaskBehaviour.FAIL)
    registry.image(API_AMI, "current")
    registry.image(QUEUE_AMI, "current")
    final = check(registry, tfc, "plan-create.json")
    assert final.status == "failed"
    got = flagged(final)
    assert set(got) == {"aws_spot_instance_request.spot"}
    assert tags(got["aws_spot_instance_request.spot"])[0] == "Failed"


def test_replace_onto_revoked_fails_and_update_onto_revoked_warns(
    registry: Registry, tfc: SimulatedTFC
) -> None:
    registry.image(NEW_AMI, "revoked")
    registry.image(SPOT_AMI, "current")
    final = check(registry, tfc, "plan-change.json")
    assert final.status == "failed"
    assert counts(final)[1:] == (1, 1)
    got = flagged(final)
    assert set(got) == {"aws_instance.api", "aws_launch_template.queue"}
    assert tags(got["aws_instance.api"]) == ("Failed", "error", "High")
    assert tags(got["aws_launch_template.queue"]) == ("Warning", "warning", "Medium")
    assert got["aws_launch_template.queue"]["tags"]["Action"] == [{"label": "update"}]


def test_update_onto_revoked_alone_passes_with_a_warning(
    registry: Registry, tfc: SimulatedTFC
) -> None:
    registry.image(NEW_AMI, "revoked")
    registry.image(SPOT_AMI, "current")
    plan = json.loads((PLANS / "plan-change.json").read_text())
    plan["resource_changes"] = [
        rc for rc in plan["resource_changes"] if rc["address"] != "aws_instance.api"
    ]
    final = check(registry, tfc, json.dumps(plan).encode())
    assert final.status == "passed"
    assert counts(final)[1:] == (0, 1)
    assert set(flagged(final)) == {"aws_launch_template.queue"}


def test_current_images_pass_without_flags(registry: Registry, tfc: SimulatedTFC) -> None:
    for ami in (API_AMI, QUEUE_AMI, SPOT_AMI):
        registry.image(ami, "current")
    final = check(registry, tfc, "plan-create.json")
    assert final.status == "passed"
    assert counts(final)[1:] == (0, 0)
    assert flagged(final) == {}
    # api and queue run older versions than `latest` serves: told, not flagged.
    for outcome in outcomes_by_id(final).values():
        assert tags(outcome) == ("Info", "info", "Low")


def test_the_check_runs_over_verified_https(
    services: Services, tenant: TenantFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """https only (no host allowed plain http): the plan and the callback go over TLS to a
    server whose certificate the process trusts through SSL_CERT_FILE, as for a Terraform
    Enterprise with a private CA; an untrusted one is never sent the token."""
    sim = SimulatedTFC(tls_dir=tmp_path / "tls")
    assert sim.ca_file is not None
    services.runtask_jobs.settings = settings(http_hosts=frozenset())
    try:
        with serving_app(create_app(services)) as url:
            registry = Registry(services, tenant, url)
            registry.image(API_AMI, "revoked")
            monkeypatch.setenv("SSL_CERT_FILE", str(sim.ca_file))
            final = check(registry, sim, "plan-create.json")
            assert final.status == "failed"
            assert {k: tags(o)[0] for k, o in flagged(final).items()} == {
                "aws_instance.api": "Failed",  # revoked
                "aws_launch_template.queue": "Warning",  # untracked
                "aws_spot_instance_request.spot": "Warning",
            }
            assert sim.state.archive_gets == 1 and sim.state.leaked_authorization == []

            monkeypatch.delenv("SSL_CERT_FILE")
            services.runtask_jobs.settings = settings(http_hosts=frozenset(), give_up_after_s=0.5)
            run = sim.new_run("plan-create.json")
            answer = sim.deliver(registry.url, sim.payload(run), registry.hmac_key)
            assert answer.status_code == 200
            wait_for(lambda: _ended(services, run.task_result_id))
            assert sim.state.plan_gets == 1  # the untrusted server got no request
            assert [c for c in sim.state.callbacks if c.task_result_id == run.task_result_id] == []
    finally:
        sim.close()


def _ended(services: Services, task_result_id: str) -> bool:
    job = services.runtask_jobs.get(task_result_id)
    return job is not None and job.state == "failed"


def test_no_outcomes_unless_hcp_terraform_takes_them(registry: Registry, tfc: SimulatedTFC) -> None:
    registry.image(API_AMI, "revoked")
    final = check(registry, tfc, "plan-create.json", outcomes=False)
    assert final.status == "failed"
    assert "relationships" not in final.body["data"]


# --- reliability -----------------------------------------------------------------------


def test_failing_callback_is_retried_until_it_lands(registry: Registry, tfc: SimulatedTFC) -> None:
    registry.image(API_AMI, "revoked")
    tfc.fail_callbacks(3)
    final = check(registry, tfc, "plan-create.json")
    assert final.status == "failed"
    job = registry.job(final.task_result_id)
    assert job is not None
    wait_for(lambda: (registry.job(final.task_result_id) or job).state == "done")
    done = registry.job(final.task_result_id)
    assert done is not None and done.attempts >= 3 and done.access_token_sealed is None
    assert tfc.state.plan_gets == 1  # the decided result is re-sent, the plan not re-read


def test_unreachable_hcp_terraform_then_recovery(registry: Registry, tfc: SimulatedTFC) -> None:
    run = tfc.new_run("plan-create.json")
    with tfc.down():
        answer = tfc.deliver(registry.url, tfc.payload(run), registry.hmac_key)
        assert answer.status_code == 200
        wait_for(lambda: (j := registry.job(run.task_result_id)) is not None and j.attempts >= 2)
        job = registry.job(run.task_result_id)
        assert job is not None and job.state in ("queued", "running")
        assert job.last_error and run.token not in job.last_error
    final = tfc.wait_final(run.task_result_id)
    assert final.status == "passed"  # every image is untracked: warnings only
    assert len(tfc.callbacks(run.task_result_id)) >= 1


def test_restart_mid_job(
    services: Services, tenant: TenantFixture, tfc: SimulatedTFC, db_url: str
) -> None:
    """The job is in the database: a new server on the same database finishes it."""
    services.runtask_jobs.settings = settings()
    run = tfc.new_run("plan-create.json")
    with tfc.down():
        with serving_app(create_app(services)) as url:
            first = Registry(services, tenant, url)
            first.image(API_AMI, "revoked")
            answer = tfc.deliver(first.url, tfc.payload(run), first.hmac_key)
            assert answer.status_code == 200
            wait_for(lambda: (j := first.job(run.task_result_id)) is not None and j.attempts >= 1)
        job = first.job(run.task_result_id)
        assert job is not None and job.state != "done" and job.access_token_sealed is not None
    assert tfc.callbacks(run.task_result_id) == []
    # Another server process would read the same secret key file: same sealer here.
    store = Store(db_url)
    try:
        again = Services.create(store, services.runtasks.sealer)
        again.runtask_jobs.settings = settings()
        with serving_app(create_app(again)):
            final = tfc.wait_final(run.task_result_id)
            assert final.status == "failed"
            assert set(outcomes_by_id(final)) >= {"aws_instance.api"}
            wait_for(lambda: (again.runtask_jobs.get(run.task_result_id) or job).state == "done")
    finally:
        store.dispose()


@pytest.mark.slow
def test_a_killed_server_leaves_the_job_for_the_next_one(tmp_path: Path, tfc: SimulatedTFC) -> None:
    """Real `packyard serve` processes: the first is killed (kill -9) while the job waits for
    HCP Terraform; the next start on the same data directory sends the result."""
    data_dir = tmp_path / "data"
    services, _ = prepare(data_dir, None)
    try:
        tenant = make_tenant(services)
        access = services.runtasks.get_api(tenant.caller(Role.ADMIN))
    finally:
        services.store.dispose()
    env = {
        "PACKYARD_RUN_TASK_HOSTS": "127.0.0.1",
        "PACKYARD_RUN_TASK_HTTP_HOSTS": "127.0.0.1",
        "PACKYARD_RUN_TASK_TIMEOUT_S": "5",
    }
    run = tfc.new_run("plan-create.json")
    store = Store(sqlite_url(str(data_dir / "packyard.db")))
    try:

        def job() -> Job | None:
            with store.read() as conn:
                return RunTaskJobRepo(conn).by_task_result(run.task_result_id)

        with tfc.down():
            first = ServeProcess(data_dir, "--log-level", "debug", "--access-log", env=env)
            first.start()
            try:
                url = f"{first.base_url}/packyard/runtasks/{access.api_id}"
                answer = tfc.deliver(url, tfc.payload(run), access.hmac_key)
                assert answer.status_code == 200
                # Killed between two attempts (the next one is over a second away).
                wait_for(
                    lambda: (
                        (j := job()) is not None
                        and j.state == "queued"
                        and j.attempts >= 1
                        and j.next_attempt_at > utcnow() + timedelta(seconds=0.5)
                    )
                )
                # The retry is logged just after it is committed: kill only once it is.
                first.wait_for_stderr("run task job")
            finally:
                first.kill()
        # Retries are logged (debug level: every line httpx and the worker write), never the
        # run's access token nor the HMAC key.
        assert "run task job" in first.stderr
        assert run.token not in first.stderr and access.hmac_key not in first.stderr
        waiting = job()
        assert waiting is not None and waiting.access_token_sealed is not None
        assert tfc.callbacks(run.task_result_id) == []
        with ServeProcess(data_dir, "--log-level", "warning", env=env):
            final = tfc.wait_final(run.task_result_id, timeout=30)
            assert final.status == "passed"  # every image untracked: warnings only
            wait_for(lambda: (j := job()) is not None and j.state == "done")
        done = job()
        assert done is not None and done.access_token_sealed is None
        assert final.authorization == f"Bearer {run.token}"
    finally:
        store.dispose()

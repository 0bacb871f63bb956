"""HCP Terraform run-task jobs: a durable queue in the database, a worker in each server.

The webhook (:mod:`packyard.api.routes.runtask_webhook`) answers HCP Terraform at once and
leaves a row here; a worker thread in every server process claims due rows (``FOR UPDATE
SKIP LOCKED`` on PostgreSQL, serial write transactions on SQLite), fetches the plan JSON
with the run's access token, evaluates it (:mod:`packyard.services.plancheck`) and PATCHes
the ``task-results`` callback. Failures to reach HCP Terraform are retried with exponential
backoff and jitter until HCP Terraform's own limit (10 minutes without progress) has passed.

- A claimed job carries a lease (``next_attempt_at``): if its server dies, another server
  takes it over when the lease lapses. Every later write names the claim (``attempts``), so a
  server whose claim was taken over changes nothing.
- The decided result is stored before it is sent: a retried callback re-sends the same body
  without fetching the plan again (the plan's download link lasts one minute).
- The access token is sealed (:class:`packyard.services.secrets.Sealer`) while the job waits,
  opened only in memory to make a request, and set to NULL once the job is done or given up.
  It is never logged, and no error message can carry it (httpx errors name URLs only).
- Outbound requests go to the hosts of ``PACKYARD_RUN_TASK_HOSTS`` only, over https (plain
  http only for the hosts of ``PACKYARD_RUN_TASK_HTTP_HOSTS``), with timeouts; only the plan
  download follows redirects (HCP Terraform answers 307 to its archive store), and httpx drops
  the ``Authorization`` header when a redirect leaves the origin.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import httpx
import orjson
from sqlalchemy.exc import IntegrityError

from packyard import metrics
from packyard.config import env_number
from packyard.domain.rules import utcnow
from packyard.ids import new_id
from packyard.imagecheck import Finding, PlanError, PlanReport, Untracked
from packyard.services.background import LoopThread, QueueWorker, running
from packyard.store.engine import Store
from packyard.store.runtask_jobs import DONE, FAILED, QUEUED, Job, RunTaskJobRepo

log = logging.getLogger(__name__)

VERIFICATION_TOKEN = "test-token"  # noqa: S105 -- the access token of HCP Terraform's verification request
JSONAPI = "application/vnd.api+json"
HOSTS_ENV = "PACKYARD_RUN_TASK_HOSTS"
HTTP_HOSTS_ENV = "PACKYARD_RUN_TASK_HTTP_HOSTS"
PLAN_MAX_ENV = "PACKYARD_RUN_TASK_PLAN_MAX_MB"
TIMEOUT_ENV = "PACKYARD_RUN_TASK_TIMEOUT_S"
DEFAULT_HOSTS = "app.terraform.io"
# HCP Terraform errors a task that sends no progress for 10 minutes.
GIVE_UP_AFTER_S = 600.0
MAX_OUTCOMES = 100
# An idle worker looks for due jobs this often: a job queued by this process wakes it at
# once, so polling only finds retries that fell due and jobs whose server died (one read per
# pass, per process: kept rare so that an idle registry costs next to nothing).
POLL_INTERVAL_S = 5.0
# The queue gauges are read after a pass that worked, else at most this often.
_CHUNK = 64 * 1024


def _host_list(raw: str) -> frozenset[str]:
    return frozenset(h.strip().lower() for h in raw.split(",") if h.strip())


@dataclass(frozen=True, slots=True)
class RunTaskSettings:
    """Where and how the worker may call HCP Terraform."""

    hosts: frozenset[str] = frozenset({DEFAULT_HOSTS})
    http_hosts: frozenset[str] = frozenset()
    plan_max_bytes: int = 64 * 2**20
    timeout_s: float = 30.0
    give_up_after_s: float = GIVE_UP_AFTER_S
    backoff_base_s: float = 2.0
    backoff_max_s: float = 60.0
    # How long a claim holds: past it, another server takes the job over.
    lease_s: float = 300.0
    poll_interval_s: float = POLL_INTERVAL_S

    @classmethod
    def from_env(cls) -> RunTaskSettings:
        import os

        hosts = _host_list(os.environ.get(HOSTS_ENV, DEFAULT_HOSTS)) or frozenset({DEFAULT_HOSTS})
        timeout = env_number(TIMEOUT_ENV, 30, minimum=1)
        return cls(
            hosts=hosts,
            http_hosts=_host_list(os.environ.get(HTTP_HOSTS_ENV, "")),
            plan_max_bytes=int(env_number(PLAN_MAX_ENV, 64, minimum=1) * 2**20),
            timeout_s=timeout,
            lease_s=max(300.0, 8 * timeout),
        )

    def refusal(self, url: str, *, redirect: bool = False) -> str | None:
        """Why ``url`` may not be called, or ``None``. A redirect of the plan download may
        leave the allowed hosts (HCP Terraform's archive store) but not https."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            port = parts.port
        except ValueError:
            return "it is not a valid URL"
        if not host:
            return "it is not a valid URL"
        named = {host} if port is None else {host, f"{host}:{port}"}
        if parts.scheme == "http":
            if not named & self.http_hosts:
                return f"{host} is called over https only (see {HTTP_HOSTS_ENV})"
        elif parts.scheme != "https":
            return "it is neither https nor http"
        if not redirect and not named & self.hosts:
            return f"{host} is not one of the hosts in {HOSTS_ENV}"
        return None


class Sealing(Protocol):
    def seal(self, plaintext: bytes, *, context: bytes = b"") -> bytes: ...

    def open(
        self, sealed: bytes, *, context: bytes = b"", what: str = "stored secret"
    ) -> bytes: ...


Evaluate = Callable[[str, Mapping[str, Any], Untracked], PlanReport]


@dataclass(frozen=True, slots=True)
class RunTaskRequest:
    """The fields of a run-task request that a job needs (the request was verified)."""

    project_id: str
    task_result_id: str
    stage: str
    run_id: str
    workspace_name: str
    plan_json_api_url: str | None
    callback_url: str
    access_token: str = field(repr=False)
    outcomes: bool
    on_untracked_image: str
    link_base: str


class _Retry(Exception):
    """HCP Terraform could not be reached or asked us to come back: try again later."""


class _Refused(Exception):
    """HCP Terraform refused the request for good (or it may not be made)."""


def _token_context(task_result_id: str) -> bytes:
    return b"packyard:run-task-token:" + task_result_id.encode()


class RunTaskJobService:
    def __init__(
        self,
        store: Store,
        sealer: Sealing,
        evaluate: Evaluate,
        settings: RunTaskSettings | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.store = store
        self.sealer = sealer
        self.evaluate = evaluate
        self.settings = settings or RunTaskSettings.from_env()
        self._transport = transport
        self._wake = threading.Event()

    # --- receiving ------------------------------------------------------------------

    def enqueue(self, request: RunTaskRequest, *, result: dict[str, Any] | None = None) -> bool:
        """Queue ``request`` (with its final ``result`` when it is decided already); whether it
        is new. A re-delivered task result (same ``task_result_id``) changes nothing."""
        now = utcnow()
        values = {
            "id": new_id(),
            "project_id": request.project_id,
            "task_result_id": request.task_result_id,
            "stage": request.stage,
            "run_id": request.run_id,
            "workspace_name": request.workspace_name,
            "plan_json_api_url": request.plan_json_api_url,
            "callback_url": request.callback_url,
            "access_token_sealed": self.sealer.seal(
                request.access_token.encode(), context=_token_context(request.task_result_id)
            ),
            "outcomes": request.outcomes,
            "on_untracked_image": request.on_untracked_image,
            "link_base": request.link_base,
            "state": QUEUED,
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": "",
            "result": result,
            "created_at": now,
            "finished_at": None,
        }
        try:
            with self.store.write(affects_reads=False) as conn:
                repo = RunTaskJobRepo(conn)
                if repo.by_task_result(request.task_result_id) is not None:
                    return False
                repo.insert(values)
        except IntegrityError:  # the same delivery arrived twice at once
            return False
        metrics.metrics().run_task("received")
        self._wake.set()
        return True

    def get(self, task_result_id: str) -> Job | None:
        with self.store.read() as conn:
            return RunTaskJobRepo(conn).by_task_result(task_result_id)

    # --- working --------------------------------------------------------------------

    def run_due(self, now: datetime | None = None) -> int:
        """Work through every job due at ``now``; returns how many were attempted."""
        done = 0
        while self.run_one(now):
            done += 1
        return done

    def run_one(self, now: datetime | None = None) -> bool:
        at = now or utcnow()
        with self.store.read() as conn:  # idle servers poll with a read, not a write turn
            if not RunTaskJobRepo(conn).has_due(at):
                return False
        with self.store.write(affects_reads=False) as conn:
            job = RunTaskJobRepo(conn).claim(at, at + timedelta(seconds=self.settings.lease_s))
        if job is None:
            return False
        try:
            self._work(job, at)
        except Exception as exc:  # a bug must not stop the worker nor lose the job
            log.exception("run task job %s failed unexpectedly; retrying", job.id)
            self._retry(job, at, f"internal error ({type(exc).__name__})")
        return True

    def _work(self, job: Job, now: datetime) -> None:
        # Found long after HCP Terraform stopped waiting (every server was down meanwhile).
        late = job.created_at + timedelta(
            seconds=self.settings.give_up_after_s + self.settings.lease_s
        )
        if job.access_token_sealed is None or now > late:
            self._give_up(job, now, job.last_error or "HCP Terraform stopped waiting")
            return
        token = self.sealer.open(
            job.access_token_sealed,
            context=_token_context(job.task_result_id),
            what="run task access token",
        ).decode()
        with self._client(token) as client:
            result = job.result
            if result is None:
                try:
                    result = self._decide(job, client)
                except _Retry as exc:
                    if job.attempts == 1:  # HCP Terraform will wait: tell it we are on it
                        self._progress(job, client, f"Waiting to read the plan: {exc}")
                    self._retry(job, now, str(exc))
                    return
                with self.store.write(affects_reads=False) as conn:
                    if not RunTaskJobRepo(conn).change(job, result=result):
                        return  # another server took the job over
            try:
                self._send(client, job.callback_url, result)
            except _Retry as exc:
                self._retry(job, now, str(exc))
                return
            except _Refused as exc:
                self._finish(job, FAILED, now, str(exc))
                metrics.metrics().run_task("given_up")
                return
        self._finish(job, DONE, now, "")
        status = result["data"]["attributes"]["status"]
        metrics.metrics().run_task("passed" if status == "passed" else "failed")
        metrics.metrics().run_task_lag((utcnow() - job.created_at).total_seconds())

    def _decide(self, job: Job, client: httpx.Client) -> dict[str, Any]:
        """The callback body for ``job``: the verdict on its plan, or why there is none."""
        if job.plan_json_api_url is None:
            return task_result(
                "passed",
                "Packyard checks images in the plan: attach this run task at the post-plan "
                "or pre-apply stage.",
                url=console_url(job.link_base, job.project_id),
            )
        try:
            raw = self._fetch_plan(client, job.plan_json_api_url)
        except _Refused as exc:
            return task_result("failed", f"Packyard could not read the plan: {exc}.")
        try:
            plan = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return task_result("failed", "Packyard could not check the plan: it is not JSON.")
        del raw
        if not isinstance(plan, dict):
            return task_result("failed", "Packyard could not check the plan: it is not a plan.")
        try:
            report = self.evaluate(
                job.project_id, plan, Untracked.from_behaviour(job.on_untracked_image)
            )
        except PlanError as exc:
            return task_result("failed", f"Packyard could not check the plan: {exc}")
        return report_result(report, job, outcomes=job.outcomes)

    def _fetch_plan(self, client: httpx.Client, url: str) -> bytes:
        refusal = self.settings.refusal(url)
        if refusal is not None:
            raise _Refused(f"the plan URL may not be called ({refusal})")
        limit = self.settings.plan_max_bytes
        started = time.monotonic()
        try:
            with client.stream("GET", url, follow_redirects=True) as response:
                if response.status_code == 204:
                    raise _Retry("the plan is not ready yet (HTTP 204)")
                _raise_for(response, "reading the plan")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise _Refused(_too_large(limit))
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes(_CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise _Refused(_too_large(limit))
                    if time.monotonic() - started > self.settings.lease_s / 2:
                        raise _Retry("the plan download took too long")
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise _Retry(_network_error(exc)) from None
        return b"".join(chunks)

    def _send(self, client: httpx.Client, url: str, body: dict[str, Any]) -> None:
        refusal = self.settings.refusal(url)
        if refusal is not None:
            raise _Refused(f"the callback URL may not be called ({refusal})")
        try:
            response = client.patch(url, content=orjson.dumps(body))
        except httpx.HTTPError as exc:
            raise _Retry(_network_error(exc)) from None
        _raise_for(response, "sending the result")

    def _progress(self, job: Job, client: httpx.Client, message: str) -> None:
        """Best effort: a ``running`` update keeps HCP Terraform waiting for the result."""
        with suppress(_Retry, _Refused):
            self._send(client, job.callback_url, task_result("running", message[:500]))

    @contextmanager
    def _client(self, token: str) -> Iterator[httpx.Client]:
        settings = self.settings

        def guard(request: httpx.Request) -> None:
            # Every request, redirects included: https only (or an allowed http host).
            refusal = settings.refusal(str(request.url), redirect=True)
            if refusal is not None:
                raise _Refused(f"a redirect may not be followed ({refusal})")

        with httpx.Client(
            timeout=httpx.Timeout(settings.timeout_s),
            follow_redirects=False,
            max_redirects=3,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": JSONAPI,
                "Accept": "application/json, " + JSONAPI,
                "User-Agent": "packyard-run-task",
            },
            event_hooks={"request": [guard]},
            transport=self._transport,
        ) as client:
            yield client

    # --- bookkeeping ----------------------------------------------------------------

    def _retry(self, job: Job, now: datetime, error: str) -> None:
        delay = min(
            self.settings.backoff_max_s, self.settings.backoff_base_s * 2 ** (job.attempts - 1)
        )
        delay *= random.uniform(0.5, 1.0)  # jitter, not a secret
        # The attempt itself took time (timeouts): count from its end.
        due = max(now, utcnow()) + timedelta(seconds=delay)
        if due > job.created_at + timedelta(seconds=self.settings.give_up_after_s):
            # HCP Terraform will have stopped waiting before the next attempt.
            self._give_up(job, now, error)
            return
        with self.store.write(affects_reads=False) as conn:
            RunTaskJobRepo(conn).change(
                job, state=QUEUED, next_attempt_at=due, last_error=error[:1000]
            )
        metrics.metrics().run_task("retried")
        log.info(
            "run task job %s (run %s): attempt %d failed (%s); next in %.1f s",
            job.id,
            job.run_id,
            job.attempts,
            error,
            max(0.0, (due - now).total_seconds()),
        )

    def _give_up(self, job: Job, now: datetime, error: str) -> None:
        log.warning("run task job %s (run %s): given up: %s", job.id, job.run_id, error)
        self._finish(job, FAILED, now, error)
        metrics.metrics().run_task("given_up")

    def _finish(self, job: Job, state: str, now: datetime, error: str) -> None:
        with self.store.write(affects_reads=False) as conn:
            RunTaskJobRepo(conn).change(
                job,
                state=state,
                access_token_sealed=None,
                finished_at=now,
                last_error=error[:1000],
            )

    def report_backlog(self) -> None:
        metrics.metrics().run_task_backlog(*self.backlog())

    def housekeeping(self) -> None:
        """Nothing: finished jobs are kept (they answer re-delivered requests)."""

    def backlog(self) -> tuple[int, float]:
        """(unfinished jobs, age in seconds of the oldest one)."""
        with self.store.read() as conn:
            count, oldest = RunTaskJobRepo(conn).backlog()
        return count, (utcnow() - oldest).total_seconds() if oldest is not None else 0.0

    def wait(self, timeout: float) -> None:
        """Sleep until ``timeout`` passes or :meth:`wake` is called (a job was queued here)."""
        self._wake.wait(timeout)
        self._wake.clear()

    def wake(self) -> None:
        self._wake.set()


# --- the callback body ------------------------------------------------------------------


def task_result(
    status: str,
    message: str,
    *,
    url: str | None = None,
    outcomes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A JSON:API ``task-results`` body (HCP Terraform's run-task callback)."""
    attributes: dict[str, Any] = {"status": status, "message": message}
    if url:
        attributes["url"] = url
    data: dict[str, Any] = {"type": "task-results", "attributes": attributes}
    if outcomes is not None:
        data["relationships"] = {"outcomes": {"data": outcomes}}
    return {"data": data}


def console_url(link_base: str, project_id: str, bucket: str = "", fingerprint: str = "") -> str:
    url = f"{link_base}/p/{quote(project_id, safe='')}"
    if bucket:
        url += f"/buckets/{quote(bucket, safe='')}"
        if fingerprint:
            url += f"/versions/{quote(fingerprint, safe='')}"
    return url


_TAGS = {
    "fail": ("Failed", "error", "High"),
    "warn": ("Warning", "warning", "Medium"),
    "info": ("Info", "info", "Low"),
}


def _outcome(finding: Finding, link_base: str, project_id: str) -> dict[str, Any]:
    status, level, severity = _TAGS.get(finding.level, ("Passed", "none", "None"))
    image = finding.image
    lines = [
        f"**{finding.address}** ({finding.action}) uses image "
        f"`{finding.image_id or '(known after apply)'}`"
        + (" from an HCP Packer data source." if finding.source == "data_source" else "."),
        "",
        f"- Verdict: {finding.reason}",
    ]
    url = console_url(link_base, project_id)
    if image is not None:
        url = console_url(link_base, project_id, image.bucket, image.fingerprint)
        lines.append(
            f"- Bucket `{image.bucket}`, version {image.version_name} "
            f"(fingerprint `{image.fingerprint}`)"
            + (f", {image.platform} {image.region}".rstrip() if image.platform else "")
        )
        if image.revoke_at is not None:
            lines.append(
                f"- Revoked at {image.revoke_at.isoformat()}"
                + (f": {image.revocation_message}" if image.revocation_message else "")
            )
    lines += [f"- {note}" for note in finding.notes]
    if finding.newer:
        lines.append(
            "- Newer on channels: "
            + ", ".join(f"`{channel}` ({version})" for channel, version in finding.newer)
        )
    tags: dict[str, list[dict[str, str]]] = {
        "Status": [{"label": status, "level": level}],
        "Severity": [{"label": severity, "level": level}],
        "Action": [{"label": finding.action}],
    }
    return {
        "type": "task-result-outcomes",
        "attributes": {
            "outcome-id": finding.address,
            "description": finding.reason,
            "body": "\n".join(lines),
            "url": url,
            "tags": tags,
        },
    }


def report_result(report: PlanReport, job: Job, *, outcomes: bool) -> dict[str, Any]:
    """The callback body of an evaluated plan: failed iff a finding fails."""
    flagged = [f for f in report.findings if f.level in _TAGS]
    newer = report.newer_available
    message = (
        f"Packyard scanned {report.scanned} resource(s): {report.failed} failed, "
        f"{report.warned} warned"
    )
    if newer:
        message += f"; a newer version is on a channel for {newer}"
    if outcomes and len(flagged) > MAX_OUTCOMES:
        message += f"; the first {MAX_OUTCOMES} of {len(flagged)} findings are listed"
    return task_result(
        "passed" if report.ok else "failed",
        message + ".",
        url=console_url(job.link_base, job.project_id),
        outcomes=(
            [_outcome(f, job.link_base, job.project_id) for f in flagged[:MAX_OUTCOMES]]
            if outcomes
            else None
        ),
    )


def _raise_for(response: httpx.Response, doing: str) -> None:
    code = response.status_code
    if 200 <= code < 300:
        return
    if code in (408, 425, 429) or code >= 500:
        raise _Retry(f"HCP Terraform answered HTTP {code} {doing}")
    raise _Refused(f"HCP Terraform answered HTTP {code} {doing}")


def _network_error(exc: httpx.HTTPError) -> str:
    # The type only: a message could name a URL's query, never a header.
    return f"HCP Terraform could not be reached ({type(exc).__name__})"


def _too_large(limit: int) -> str:
    shown = f"{limit // 2**20} MiB" if limit >= 2**20 else f"{limit} bytes"
    return f"the plan JSON is larger than the limit of {shown} ({PLAN_MAX_ENV})"


# --- the worker thread ------------------------------------------------------------------

THREAD_NAME = "packyard-run-task-worker"


class RunTaskWorker(QueueWorker):
    """Runs due jobs until stopped; woken at once when this process queues one."""

    def __init__(self, jobs: RunTaskJobService) -> None:
        super().__init__(THREAD_NAME, jobs, interval=jobs.settings.poll_interval_s)
        self.jobs = jobs


def worker_running(jobs: RunTaskJobService) -> AbstractContextManager[LoopThread]:
    """Run ``jobs`` in a background thread for the duration of the block."""
    return running(RunTaskWorker(jobs))


__all__ = [
    "VERIFICATION_TOKEN",
    "RunTaskJobService",
    "RunTaskRequest",
    "RunTaskSettings",
    "RunTaskWorker",
    "report_result",
    "task_result",
    "worker_running",
]

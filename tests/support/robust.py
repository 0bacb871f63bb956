"""Helpers for the robustness tests: content pushed through the services, `packyard check`."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from packyard.domain.enums import BuildStatus, TemplateType
from packyard.domain.models import Caller, Version
from packyard.services.builds import ArtifactInput, BuildChanges
from packyard.services.check import CheckReport, check_store
from packyard.services.container import Services
from packyard.store.engine import Store
from tests.support.serve_process import run_cli


def push_version(
    services: Services,
    caller: Caller,
    bucket: str,
    fingerprint: str,
    components: tuple[str, ...] = ("amazon-ebs.a",),
    *,
    finish: tuple[str, ...] | None = None,
    parent_version_id: str | None = None,
) -> Version:
    """Create a version and its builds; finish ``finish`` of them (all by default)."""
    services.versions.create(caller, bucket, fingerprint, TemplateType.HCL2)
    done = components if finish is None else finish
    created = [
        services.builds.create(caller, bucket, fingerprint, component, BuildChanges())
        for component in components
    ]
    for component, build in zip(components, created, strict=True):
        if component in done:
            services.builds.update(
                caller,
                bucket,
                fingerprint,
                build.id,
                BuildChanges(
                    status=BuildStatus.DONE,
                    platform="aws",
                    artifacts=[ArtifactInput(f"ami-{fingerprint}-{component}", "us-east-1")],
                    metadata={"packer": {"version": "1.16.0"}},
                    parent_version_id=parent_version_id,
                ),
            )
    return services.versions.get(caller, bucket, fingerprint)


def rules_broken(report: CheckReport) -> set[str]:
    return {v.rule for v in report.violations}


def check(store: Store) -> CheckReport:
    return check_store(store)


def execute(store: Store, sql: str, **params: Any) -> None:
    """Corrupt the database on purpose (raw SQL, bypassing the services)."""
    with store.write() as conn:
        conn.execute(text(sql), params)


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_check_cli(
    *, database_url: str | None = None, data_dir: Path | None = None, as_json: bool = False
) -> CliResult:
    """Run the real ``packyard check`` in a subprocess."""
    args = ["check"]
    if data_dir is not None:
        args += ["--data-dir", str(data_dir)]
    if database_url is not None:
        args += ["--database-url", database_url]
    if as_json:
        args += ["--format", "json"]
    done = run_cli(*args, timeout=120)
    return CliResult(done.returncode, done.stdout, done.stderr)


# --- a real `packyard serve` (see tests.support.serve_process) --------------------------------


def admin_token(base_url: str, data_dir: Path) -> tuple[str, str, str]:
    """Exchange the bootstrap admin's credentials for a token: (token, org id, project id)."""
    creds = json.loads((data_dir / "credentials.json").read_text())
    response = httpx.post(
        base_url + "/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(creds["oauth"]["client_id"], creds["oauth"]["client_secret"]),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"], creds["organization_id"], creds["project_id"]


# --- Packer-style pushes that tolerate losing races --------------------------------------------


@dataclass
class Pusher:
    """One ``packer build``: the registry calls of packer-client §3.1, tolerant of races.

    A lost race (409 code 6 on a create, 400 code 9 on a build another run already finished)
    is what a concurrent push legitimately sees; anything else fails the push.
    """

    base_url: str
    token: str
    organization_id: str
    project_id: str

    def __post_init__(self) -> None:
        self.http = httpx.Client(
            base_url=self.base_url,
            timeout=60,
            headers={"Authorization": f"Bearer {self.token}"},
        )
        self.prefix = (
            f"/packer/2023-01-01/organizations/{self.organization_id}/projects/{self.project_id}"
        )

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, body: Any = None, *, allow: Any = ()) -> Any:
        response = self.http.request(method, self.prefix + path, json=body)
        if response.status_code == 200:
            return response.json()
        payload = response.json()
        assert (response.status_code, payload.get("code")) in allow, (
            method,
            path,
            response.status_code,
            payload,
        )
        return None

    def push(self, bucket: str, fingerprint: str, components: tuple[str, ...]) -> None:
        if self.call("GET", f"/buckets/{bucket}", allow={(404, 5)}) is None:
            self.call("PUT", "/buckets", {"name": bucket}, allow={(409, 6)})
        version = f"/buckets/{bucket}/versions/{fingerprint}"
        if self.call("GET", version, allow={(409, 10)}) is None:
            created = {"fingerprint": fingerprint, "template_type": "HCL2"}
            self.call("POST", f"/buckets/{bucket}/versions", created, allow={(409, 6)})
        existing = {b["component_type"] for b in self.call("GET", version + "/builds")["builds"]}
        for component in components:
            if component not in existing:
                build = {"component_type": component, "status": "BUILD_UNSET", "artifacts": None}
                self.call("POST", version + "/builds", build, allow={(409, 6), (400, 9)})
        builds = self.call("GET", version + "/builds")["builds"]
        finished = {(400, 9)}  # another run finished this build (or the whole version) first
        for build in builds:
            if build["component_type"] not in components or build["status"] == "BUILD_DONE":
                continue
            path = f"{version}/builds/{build['id']}"
            self.call("PATCH", path, {"status": "BUILD_RUNNING"}, allow=finished)
            done = {
                "status": "BUILD_DONE",
                "platform": "aws",
                "artifacts": [
                    {
                        "external_identifier": f"ami-{fingerprint}-{build['component_type']}",
                        "region": "us-east-1",
                    }
                ],
                "metadata": {"packer": {"version": "1.16.0"}},
            }
            self.call("PATCH", path, done, allow=finished)


def run_parallel(jobs: list[Any], *, timeout: float = 240) -> None:
    """Run callables at once (released together by a barrier); re-raise the first failure."""
    barrier = threading.Barrier(len(jobs))

    def released(job: Any) -> Any:
        barrier.wait(timeout=60)
        return job()

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [pool.submit(released, job) for job in jobs]
        for future in futures:
            future.result(timeout=timeout)

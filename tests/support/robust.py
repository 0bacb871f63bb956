"""Helpers for the robustness tests: content pushed through the services, `packyard check`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
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

PACKYARD = [str(Path(sys.executable).parent / "packyard")]


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
    args = [*PACKYARD, "check"]
    if data_dir is not None:
        args += ["--data-dir", str(data_dir)]
    if database_url is not None:
        args += ["--database-url", database_url]
    if as_json:
        args += ["--format", "json"]
    env = {k: v for k, v in os.environ.items() if k != "PACKYARD_DATABASE_URL"}
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, check=False)
    return CliResult(done.returncode, done.stdout, done.stderr)


# --- real `packyard serve` processes --------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    """A real ``packyard serve --no-tls`` subprocess on a free loopback port."""

    def __init__(
        self, data_dir: Path, database_url: str | None = None, *, log_level: str = "warning"
    ) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.log_level = log_level
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / f"serve-{self.port}.log"  # stderr: the server's logging
        self.out = data_dir / f"serve-{self.port}.out"  # stdout: the start-up banner

    def start(self, timeout: float = 60) -> ServeProcess:
        args = [
            *PACKYARD,
            "serve",
            "--no-tls",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--log-level",
            self.log_level,
        ]
        if self.database_url:
            args += ["--database-url", self.database_url]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PACKYARD_")}
        with self.log.open("ab") as log, self.out.open("ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=log, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"packyard serve exited early:\n{self.log.read_text()}")
            try:
                httpx.get(self.base_url + "/oauth2/token", timeout=2)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"packyard serve did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        """``kill -9``: no clean-up of any kind."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


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

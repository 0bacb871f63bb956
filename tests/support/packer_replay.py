"""Packer's push traffic, call by call, with the request bodies stock Packer 1.16 sends.

Each method is one HTTP call of ``packer build`` (packer-client §3, §6.2); the caller decides
what to assert. Every 200 body is validated against the swagger before it is returned and every
error is returned raw so tests can check it with ``assert_status``.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support.wire import fetch_token, ok

PACKER_VERSION = "1.16.0"
SOURCE_CHANNEL = f"packer/{PACKER_VERSION} hcp-go-sdk/0.23.0"


def done_metadata() -> dict[str, Any]:
    """The ``metadata`` object of the final DONE update, as in §6.2."""
    return {
        "cicd": None,
        "packer": {
            "options": {
                "debug": False,
                "except": None,
                "force": False,
                "only": None,
                "path": "build.pkr.hcl",
                "var-files": None,
                "vars": None,
            },
            "os": {"details": {"arch": "amd64", "version": "6.1.0-18-amd64"}, "type": "linux"},
            "plugins": None,
            "version": PACKER_VERSION,
        },
        "vcs": {
            "details": {
                "author": "Jane Doe <jane@example.com>",
                "commit": "4f2a9c1e0b7d8e6f5a4b3c2d1e0f9a8b7c6d5e4f",
                "has_uncommitted_changes": False,
                "ref": "main",
            },
            "type": "git",
        },
    }


GIT_SHA = "4f2a9c1e0b7d8e6f5a4b3c2d1e0f9a8b7c6d5e4f"


class PackerRun:
    """One ``packer build`` process: its own token, run UUID and HTTP connection."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        organization_id: str,
        project_id: str,
        bucket: str,
        fingerprint: str,
    ) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            verify=False,
            timeout=30,
            headers={"Accept": "application/json", "X-HCP-Source-Channel": SOURCE_CHANNEL},
        )
        self.token = fetch_token(self.http, client_id, client_secret)
        self.http.headers["Authorization"] = f"Bearer {self.token}"
        self.prefix = f"/packer/2023-01-01/organizations/{organization_id}/projects/{project_id}"
        self.bucket = bucket
        self.fingerprint = fingerprint
        self.run_uuid = str(uuid.uuid4())

    def close(self) -> None:
        self.http.close()

    @property
    def version_path(self) -> str:
        return f"{self.prefix}/buckets/{self.bucket}/versions/{self.fingerprint}"

    def _send(self, method: str, path: str, body: Any = None) -> httpx.Response:
        # Go's encoding/json: compact, keys in struct order; the server must not care.
        return self.http.request(method, path, json=body)

    # --- set-up phase ------------------------------------------------------
    def get_bucket(self) -> httpx.Response:
        return self._send("GET", f"{self.prefix}/buckets/{self.bucket}")

    def create_bucket(self, description: str, labels: dict[str, str]) -> dict[str, Any]:
        body = {"description": description, "labels": labels, "name": self.bucket}
        return ok(self._send("PUT", f"{self.prefix}/buckets", body), "PackerService_CreateBucket")

    def update_bucket(self, description: str, labels: dict[str, str]) -> dict[str, Any]:
        body = {"description": description, "labels": labels, "platforms": None}
        return ok(
            self._send("PATCH", f"{self.prefix}/buckets/{self.bucket}", body),
            "PackerService_UpdateBucket",
        )

    def get_version(self) -> httpx.Response:
        return self._send("GET", self.version_path)

    def create_version(self, template_type: str = "HCL2") -> dict[str, Any]:
        body = {"fingerprint": self.fingerprint, "template_type": template_type}
        return ok(
            self._send("POST", f"{self.prefix}/buckets/{self.bucket}/versions", body),
            "PackerService_CreateVersion",
        )

    def list_builds(self) -> dict[str, Any]:
        return ok(self._send("GET", f"{self.version_path}/builds"), "PackerService_ListBuilds")

    def create_build(self, component_type: str) -> httpx.Response:
        body = {
            "artifacts": None,
            "component_type": component_type,
            "packer_run_uuid": self.run_uuid,
            "status": "BUILD_UNSET",
        }
        return self._send("POST", f"{self.version_path}/builds", body)

    def enforced_blocks(self) -> httpx.Response:
        return self._send("GET", f"{self.prefix}/enforced_blocks/bucket/{self.bucket}")

    # --- per build ---------------------------------------------------------
    def set_status(self, build_id: str, status: str, run_uuid: str | None = None) -> dict[str, Any]:
        """RUNNING, heartbeat, FAILED or CANCELLED: status updates carry ``artifacts: null``."""
        body = {"artifacts": None, "packer_run_uuid": run_uuid or self.run_uuid, "status": status}
        return ok(
            self._send("PATCH", f"{self.version_path}/builds/{build_id}", body),
            "PackerService_UpdateBuild",
        )

    def done(
        self,
        build_id: str,
        *,
        artifacts: list[dict[str, str]],
        platform: str,
        labels: dict[str, str],
        source_external_identifier: str | None = None,
        parent_version_id: str | None = None,
        parent_channel_id: str | None = None,
        run_uuid: str | None = None,
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "artifacts": artifacts,
            "labels": labels,
            "metadata": done_metadata(),
            "packer_run_uuid": run_uuid or self.run_uuid,
        }
        if parent_channel_id:
            body["parent_channel_id"] = parent_channel_id
        if parent_version_id:
            body["parent_version_id"] = parent_version_id
        body["platform"] = platform
        if source_external_identifier:
            body["source_external_identifier"] = source_external_identifier
        body["status"] = "BUILD_DONE"
        return self._send("PATCH", f"{self.version_path}/builds/{build_id}", body)

    def assign_channel(self, channel: str) -> httpx.Response:
        body = {"update_mask": "versionFingerprint", "version_fingerprint": self.fingerprint}
        return self._send("PATCH", f"{self.prefix}/buckets/{self.bucket}/channels/{channel}", body)

    def get_channel(self, bucket: str, channel: str) -> httpx.Response:
        return self._send("GET", f"{self.prefix}/buckets/{bucket}/channels/{channel}")

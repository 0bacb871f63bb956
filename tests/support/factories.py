"""Factories: tenants with principals of every role, API clients, registry content."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx

from packyard.domain.enums import Role
from packyard.domain.models import Caller, Operator
from packyard.services.container import Services

_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}"


@dataclass
class Identity:
    client_id: str
    client_secret: str
    principal_id: str
    name: str
    role: Role
    token: str


@dataclass
class TenantFixture:
    organization_id: str
    project_id: str
    identities: dict[Role, Identity]

    def caller(self, role: Role = Role.ADMIN) -> Caller:
        ident = self.identities[role]
        return Caller(
            principal_id=ident.principal_id,
            name=ident.name,
            organization_id=self.organization_id,
            project_id=self.project_id,
            role=role,
        )


def make_tenant(services: Services, name: str | None = None) -> TenantFixture:
    tenant = services.tenancy.create_tenant(name or unique("org"), unique("project"))
    identities: dict[Role, Identity] = {}
    for role in Role:
        creds = services.auth.create_principal(
            name=f"{role.value}-sp",
            role=role,
            organization_id=tenant.organization.id,
            project_id=tenant.project.id,
        )
        token = services.auth.issue_token(creds.principal).access_token
        identities[role] = Identity(
            client_id=creds.principal.client_id,
            client_secret=creds.client_secret,
            principal_id=creds.principal.id,
            name=creds.principal.name,
            role=role,
            token=token,
        )
    return TenantFixture(tenant.organization.id, tenant.project.id, identities)


def make_member(
    services: Services,
    tenant: TenantFixture,
    *,
    project_role: Role | None,
    buckets: dict[str, Role] | None = None,
    name: str | None = None,
) -> Identity:
    """A new service principal with ``project_role`` on the tenant's project (``None``: none)
    and a grant on each of ``buckets`` (by bucket name), as the operator would set them."""
    creds = services.auth.create_principal(
        name=name or unique("member"),
        role=project_role or Role.VIEWER,
        organization_id=tenant.organization_id,
        project_id=tenant.project_id,
    )
    org, project, pid = tenant.organization_id, tenant.project_id, creds.principal.id
    for bucket, role in (buckets or {}).items():
        services.access.grant(Operator(), org, project, pid, role, bucket)
    if project_role is None:
        services.access.revoke(Operator(), org, project, pid)
    return Identity(
        client_id=creds.principal.client_id,
        client_secret=creds.client_secret,
        principal_id=pid,
        name=creds.principal.name,
        role=project_role or Role.VIEWER,
        token=services.auth.issue_token(creds.principal).access_token,
    )


class Api:
    """An HCP Packer API client for tests: real HTTP, raw responses."""

    def __init__(
        self,
        base_url: str,
        tenant: TenantFixture,
        role: Role = Role.ADMIN,
        identity: Identity | None = None,
    ) -> None:
        self.base_url = base_url
        self.tenant = tenant
        self.role = role
        self.identity = identity or tenant.identities[role]
        self.http = httpx.Client(base_url=base_url, verify=False, timeout=30)

    @property
    def prefix(self) -> str:
        t = self.tenant
        return f"/packer/2023-01-01/organizations/{t.organization_id}/projects/{t.project_id}"

    def as_role(self, role: Role) -> Api:
        return Api(self.base_url, self.tenant, role)

    def as_identity(self, identity: Identity) -> Api:
        """The same API as another principal (e.g. one from :func:`make_member`)."""
        return Api(self.base_url, self.tenant, identity.role, identity)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.identity.token}"}

    def request(self, method: str, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        """``path`` is relative to the project prefix unless it is an absolute API path."""
        absolute = path.startswith(
            ("/packer/", "/packyard/", "/resource-manager/", "/oauth2/", "/2019-12-10/", "/iam/")
        )
        url = path if absolute else self.prefix + path
        return self.http.request(method, url, json=json, headers=self.headers(), **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def put(self, path: str, json: Any = None) -> httpx.Response:
        return self.request("PUT", path, json)

    def post(self, path: str, json: Any = None) -> httpx.Response:
        return self.request("POST", path, json)

    def patch(self, path: str, json: Any = None) -> httpx.Response:
        return self.request("PATCH", path, json)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    def close(self) -> None:
        self.http.close()

    # --- content helpers (assert success) ---------------------------------
    def ok(self, response: httpx.Response) -> dict[str, Any]:
        assert response.status_code == 200, (response.status_code, response.text)
        body: dict[str, Any] = response.json()
        return body

    def create_bucket(self, name: str, **fields: Any) -> dict[str, Any]:
        return self.ok(self.put("/buckets", {"name": name, **fields}))["bucket"]

    def create_version(
        self, bucket: str, fingerprint: str, template_type: str = "HCL2"
    ) -> dict[str, Any]:
        return self.ok(
            self.post(
                f"/buckets/{bucket}/versions",
                {"fingerprint": fingerprint, "template_type": template_type},
            )
        )["version"]

    def create_build(
        self, bucket: str, fingerprint: str, component: str, **fields: Any
    ) -> dict[str, Any]:
        body = {"artifacts": None, "component_type": component, "status": "BUILD_UNSET", **fields}
        return self.ok(self.post(f"/buckets/{bucket}/versions/{fingerprint}/builds", body))["build"]

    def update_build(
        self, bucket: str, fingerprint: str, build_id: str, **fields: Any
    ) -> httpx.Response:
        return self.patch(f"/buckets/{bucket}/versions/{fingerprint}/builds/{build_id}", fields)

    def finish_build(
        self,
        bucket: str,
        fingerprint: str,
        build_id: str,
        *,
        platform: str = "aws",
        artifacts: list[dict[str, str]] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        arts = artifacts or [{"external_identifier": unique("ami"), "region": "us-east-1"}]
        return self.ok(
            self.update_build(
                bucket,
                fingerprint,
                build_id,
                status="BUILD_DONE",
                platform=platform,
                artifacts=arts,
                metadata={"packer": {"version": "1.16.0"}, "cicd": None, "vcs": None},
                **fields,
            )
        )["build"]

    def complete_version(
        self,
        bucket: str,
        fingerprint: str | None = None,
        *,
        components: tuple[str, ...] = ("amazon-ebs.a",),
        platform: str = "aws",
        regions: tuple[str, ...] = ("us-east-1",),
        parent: tuple[str, str | None] | None = None,
    ) -> dict[str, Any]:
        """Push a whole version the way Packer does and return it (complete, vN)."""
        fp = fingerprint or unique("fp")
        self.create_version(bucket, fp)
        builds = [self.create_build(bucket, fp, component) for component in components]
        for build in builds:
            extra: dict[str, Any] = {}
            if parent is not None:
                extra["parent_version_id"] = parent[0]
                if parent[1]:
                    extra["parent_channel_id"] = parent[1]
            self.finish_build(
                bucket,
                fp,
                build["id"],
                platform=platform,
                artifacts=[
                    {"external_identifier": unique("ami"), "region": region} for region in regions
                ],
                **extra,
            )
        return self.ok(self.get(f"/buckets/{bucket}/versions/{fp}"))["version"]


def small_registry(api: Api) -> dict[str, Any]:
    """Bucket ``golden`` (with a description and a label) whose v1 (``fp-1``) is on channel
    ``prod``, plus an open version ``fp-open`` with a running build."""
    api.create_bucket("golden", description="base images", labels={"os": "linux"})
    version = api.complete_version("golden", "fp-1")
    api.ok(api.post("/buckets/golden/channels", {"name": "prod", "version_fingerprint": "fp-1"}))
    api.create_version("golden", "fp-open")
    build = api.create_build("golden", "fp-open", "a.open", status="BUILD_RUNNING")
    return {"version": version, "open_build": build}


def assert_status(response: httpx.Response, http_status: int, code: int) -> dict[str, Any]:
    """Assert a google.rpc.Status error with this HTTP status and gRPC code."""
    assert response.status_code == http_status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["details"], list)
    return body

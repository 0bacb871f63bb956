"""A typed, synchronous client for any HCP Packer 2023-01-01 endpoint.

    >>> from packyard.client import PackerClient
    >>> with PackerClient.from_env() as hcp:                     # doctest: +SKIP
    ...     for bucket in hcp.list_buckets():
    ...         print(bucket.name, bucket.latest_version and bucket.latest_version.name)
    ...     prod = hcp.get_channel("golden", "production")
    ...     hit = prod.version.find_artifact("aws", "us-east-1")

Every failure is raised as :class:`packyard.errors.ApiError` with the gRPC
``code`` of the server's ``google.rpc.Status`` body, the ``http_status`` of the
answer (``0`` when no HTTP answer was received, e.g. connection refused or a
configuration error) and the server's ``message``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from packyard.client.auth import ClientCredentials, DiskCache
from packyard.client.config import ClientConfig, config_error
from packyard.client.connection import unreachable
from packyard.client.models import (
    AccessEntry,
    AncestryRelation,
    AuditEvent,
    Bucket,
    Build,
    Channel,
    ChannelAssignment,
    ChannelPromotion,
    EnforcedBlock,
    EnforcedBlockDetail,
    EnforcedBlockLink,
    EnforcedBlockVersion,
    ExternalArtifact,
    IamPolicy,
    Organization,
    Project,
    Registry,
    RestorePreview,
    RevocationPreview,
    Version,
    Webhook,
    WebhookDelivery,
    WireModel,
)
from packyard.errors import ApiError, Code

API_VERSION = "2023-01-01"
PACKYARD_API_VERSION = "2026-12-01"
WEBHOOK_API_VERSION = "2023-05-31"
RM_PREFIX = "/resource-manager/2019-12-10"
_IAM_POLICY = "/2019-12-10/resource-manager/resources/iam-policy"  # version first, as in HCP
USER_AGENT = "packyard-client"
M = TypeVar("M", bound=WireModel)

_HTTP_TO_CODE = {
    400: Code.INVALID_ARGUMENT,
    401: Code.UNAUTHENTICATED,
    403: Code.PERMISSION_DENIED,
    404: Code.NOT_FOUND,
    409: Code.ABORTED,
    429: Code.RESOURCE_EXHAUSTED,
    499: Code.CANCELLED,
    501: Code.UNIMPLEMENTED,
    503: Code.UNAVAILABLE,
    504: Code.DEADLINE_EXCEEDED,
}


def _seg(value: str) -> str:
    return quote(value, safe="")


def _sorting(order_by: list[str] | None) -> list[tuple[str, Any]]:
    return [("sorting.order_by", o) for o in order_by or []]


def error_from_response(response: httpx.Response) -> ApiError:
    """Turn a non-200 answer into an :class:`ApiError` (``google.rpc.Status`` if present)."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    fallback = _HTTP_TO_CODE.get(status, Code.INTERNAL if status >= 500 else Code.UNKNOWN)
    if isinstance(body, dict) and isinstance(body.get("code"), int):
        try:
            code = Code(body["code"])
        except ValueError:
            code = Code.UNKNOWN
        message = str(body.get("message") or response.reason_phrase or "request failed")
        details = body.get("details")
        return ApiError(
            code,
            message.strip(),
            details=details if isinstance(details, list) else None,
            http_status=status,
        )
    text = response.text.strip()[:200] if body is None else ""
    message = text or response.reason_phrase or f"HTTP {status}"
    return ApiError(fallback, message, http_status=status)


class PackerClient:
    """Operations of the HCP Packer 2023-01-01 API, plus tenant discovery.

    Create it with :meth:`from_env` (``HCP_*`` variables, see
    :mod:`packyard.client.config`) or from a :class:`ClientConfig`. Use it as a
    context manager, or call :meth:`close`. List operations return iterators
    that follow ``pagination.next_page_token`` transparently.

    Example (revoke, then check what Packer would see)::

        hcp = PackerClient.from_env()
        hcp.revoke_version("golden", "fp-1", revoke_in="0s", message="CVE-2024-1234")
        assert hcp.get_version("golden", "fp-1").revoked
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        headers = {
            "User-Agent": USER_AGENT,
            "X-HCP-Source-Channel": f"{config.source_channel} {USER_AGENT}",
            "Accept": "application/json",
        }
        self._http = httpx.Client(
            base_url=config.api_url,
            verify=config.verify_api,
            timeout=config.timeout,
            headers=headers,
            transport=transport,
        )
        self._auth_http: httpx.Client | None = None
        self._credentials: ClientCredentials | None = None
        if config.access_token is None:
            if not config.client_id or not config.client_secret:
                raise config_error(
                    "no credentials: set HCP_CLIENT_ID and HCP_CLIENT_SECRET, or HCP_CRED_FILE."
                )
            self._auth_http = httpx.Client(
                verify=config.verify_auth,
                timeout=config.timeout,
                headers={"User-Agent": USER_AGENT},
                transport=transport,
            )
            cache = DiskCache(config.token_cache) if config.token_cache else None
            self._credentials = ClientCredentials(
                self._auth_http,
                config.token_url,
                config.client_id,
                config.client_secret,
                cache=cache,
            )
        self._organization_id = config.organization_id
        self._project_id = config.project_id
        self._tenant_lock = threading.Lock()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PackerClient:
        """A client configured from ``HCP_*`` variables (``os.environ`` by default)."""
        return cls(ClientConfig.from_env(environ))

    # --- plumbing -----------------------------------------------------------
    def __enter__(self) -> PackerClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()
        if self._auth_http is not None:
            self._auth_http.close()

    @property
    def token_requests(self) -> int:
        """How many times the token endpoint was called (0 with a static token)."""
        return self._credentials.requests if self._credentials else 0

    def _bearer(self) -> str:
        if self._credentials is not None:
            return self._credentials.token()
        assert self.config.access_token is not None
        return self.config.access_token

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Send one authenticated request; return the decoded 200 body or raise."""
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self._bearer()}"}
            try:
                response = self._http.request(
                    method, path, json=json, params=params, headers=headers
                )
            except httpx.HTTPError as exc:
                raise unreachable(self.config.api_url, exc, variable="HCP_API_ADDRESS") from None
            if response.status_code == 401 and attempt == 1 and self._credentials is not None:
                self._credentials.invalidate()  # e.g. the server restarted; fetch a new token
                continue
            if response.status_code != 200:
                raise error_from_response(response)
            try:
                body = response.json()
            except ValueError:
                raise ApiError(
                    Code.INTERNAL,
                    f"{method} {path}: the server answered 200 without a JSON body.",
                    http_status=200,
                ) from None
            if not isinstance(body, dict):
                raise ApiError(
                    Code.INTERNAL, f"{method} {path}: expected a JSON object.", http_status=200
                )
            return body
        raise AssertionError("unreachable")  # pragma: no cover

    def _pages(
        self,
        path: str,
        key: str,
        model: type[M],
        params: list[tuple[str, Any]] | None = None,
        *,
        method: str = "GET",
        json: Any = None,
        page_size: int | None = None,
    ) -> Iterator[M]:
        token: str | None = None
        seen: set[str] = set()
        while True:
            query = list(params or [])
            if page_size:
                query.append(("pagination.page_size", str(page_size)))
            if token:
                query.append(("pagination.next_page_token", token))
            body = self.request(method, path, params=query, json=json)
            for item in body.get(key) or []:
                yield model.parse(item)
            pagination = body.get("pagination") or {}
            token = pagination.get("next_page_token") if isinstance(pagination, dict) else None
            if not token or token in seen:
                return
            seen.add(token)

    # --- tenancy ------------------------------------------------------------
    def list_organizations(self) -> list[Organization]:
        body = self.request("GET", f"{RM_PREFIX}/organizations")
        return [Organization.parse(o) for o in body.get("organizations") or []]

    def list_projects(self, organization_id: str) -> list[Project]:
        params = [("scope.type", "ORGANIZATION"), ("scope.id", organization_id)]
        return list(self._pages(f"{RM_PREFIX}/projects", "projects", Project, params))

    def get_project(self, project_id: str) -> Project:
        body = self.request("GET", f"{RM_PREFIX}/projects/{_seg(project_id)}")
        return Project.parse(body.get("project"))

    def tenant(self) -> tuple[str, str]:
        """``(organization_id, project_id)``, discovered on first use when not configured.

        With a project but no organization, the organization is the project's
        parent. Without an organization, the principal must see exactly one.
        Without a project, the oldest project of the organization is used.
        """
        with self._tenant_lock:
            if self._organization_id and self._project_id:
                return self._organization_id, self._project_id
            if self._project_id and not self._organization_id:
                project = self.get_project(self._project_id)
                if project.parent is None or not project.parent.id:
                    raise ApiError(
                        Code.FAILED_PRECONDITION,
                        f"project {self._project_id} has no parent organization.",
                        http_status=0,
                    )
                self._organization_id = project.parent.id
                return self._organization_id, self._project_id
            if not self._organization_id:
                orgs = self.list_organizations()
                if len(orgs) != 1:
                    raise ApiError(
                        Code.FAILED_PRECONDITION,
                        f"expected exactly one organization for this principal, found "
                        f"{len(orgs)}; set HCP_ORGANIZATION_ID.",
                        http_status=0,
                    )
                self._organization_id = orgs[0].id
            projects = self.list_projects(self._organization_id)
            if not projects:
                raise ApiError(
                    Code.FAILED_PRECONDITION,
                    f"organization {self._organization_id} has no project; set HCP_PROJECT_ID.",
                    http_status=0,
                )
            far_future = datetime.max.replace(tzinfo=None)

            def created(p: Project) -> tuple[datetime, str]:
                stamp = p.created_at.replace(tzinfo=None) if p.created_at else far_future
                return stamp, p.id

            self._project_id = min(projects, key=created).id
            return self._organization_id, self._project_id

    def _base(self) -> str:
        org, project = self.tenant()
        return f"/packer/{API_VERSION}/organizations/{_seg(org)}/projects/{_seg(project)}"

    def _bucket(self, bucket: str) -> str:
        return f"{self._base()}/buckets/{_seg(bucket)}"

    def _version(self, bucket: str, fingerprint: str) -> str:
        return f"{self._bucket(bucket)}/versions/{_seg(fingerprint)}"

    def _build(self, bucket: str, fingerprint: str, build_id: str) -> str:
        return f"{self._version(bucket, fingerprint)}/builds/{_seg(build_id)}"

    def _channel(self, bucket: str, channel: str) -> str:
        return f"{self._bucket(bucket)}/channels/{_seg(channel)}"

    # --- registry -----------------------------------------------------------
    def get_registry(self) -> Registry:
        """The project's registry (``GET /registry``)."""
        return Registry.parse(self.request("GET", f"{self._base()}/registry").get("registry"))

    # --- buckets ------------------------------------------------------------
    def list_buckets(
        self, *, order_by: list[str] | None = None, page_size: int | None = None
    ) -> Iterator[Bucket]:
        """Every bucket, page after page. ``order_by`` e.g. ``["name"]`` or ``["created_at desc"]``.

        >>> names = [b.name for b in hcp.list_buckets(order_by=["name"])]  # doctest: +SKIP
        """
        return self._pages(
            f"{self._base()}/buckets", "buckets", Bucket, _sorting(order_by), page_size=page_size
        )

    def get_bucket(self, name: str) -> Bucket:
        """One bucket with its latest version; code 5 (HTTP 404) when missing."""
        return Bucket.parse(self.request("GET", self._bucket(name)).get("bucket"))

    def create_bucket(
        self, name: str, *, description: str | None = None, labels: dict[str, str] | None = None
    ) -> Bucket:
        """Create a bucket (and its managed ``latest`` channel); code 6 when it exists."""
        body: dict[str, Any] = {"name": name}
        if description is not None:
            body["description"] = description
        if labels is not None:
            body["labels"] = labels
        return Bucket.parse(self.request("PUT", f"{self._base()}/buckets", json=body).get("bucket"))

    def update_bucket(
        self, name: str, *, description: str | None = None, labels: dict[str, str] | None = None
    ) -> Bucket:
        """Change the description and/or replace the labels (``None`` keeps the current value).

        UpdateBucket has no field mask: the server replaces both fields, so the
        one not given is read first and sent back unchanged.
        """
        if description is None or labels is None:
            current = self.get_bucket(name)
            description = current.description if description is None else description
            labels = dict(current.labels) if labels is None else labels
        body: dict[str, Any] = {"platforms": None, "description": description, "labels": labels}
        return Bucket.parse(self.request("PATCH", self._bucket(name), json=body).get("bucket"))

    def delete_bucket(self, name: str) -> None:
        """Delete a bucket with all its versions, builds and channels."""
        self.request("DELETE", self._bucket(name))

    # --- versions -----------------------------------------------------------
    def list_versions(
        self, bucket: str, *, order_by: list[str] | None = None, page_size: int | None = None
    ) -> Iterator[Version]:
        path = f"{self._bucket(bucket)}/versions"
        return self._pages(path, "versions", Version, _sorting(order_by), page_size=page_size)

    def get_version(self, bucket: str, fingerprint: str) -> Version:
        """One version with builds and artifacts. An unknown fingerprint is code 10 (HTTP 409)."""
        return Version.parse(self.request("GET", self._version(bucket, fingerprint)).get("version"))

    def create_version(
        self, bucket: str, fingerprint: str, *, template_type: str = "HCL2"
    ) -> Version:
        body = {"fingerprint": fingerprint, "template_type": template_type}
        path = f"{self._bucket(bucket)}/versions"
        return Version.parse(self.request("POST", path, json=body).get("version"))

    def update_version(self, bucket: str, fingerprint: str, **fields: Any) -> Version:
        """Raw UpdateVersion; see :meth:`revoke_version` and :meth:`restore_version`."""
        path = self._version(bucket, fingerprint)
        return Version.parse(self.request("PATCH", path, json=fields).get("version"))

    def revoke_version(
        self,
        bucket: str,
        fingerprint: str,
        *,
        revoke_at: datetime | str | None = None,
        revoke_in: str | None = None,
        message: str = "",
        skip_descendants: bool = False,
        disable_rollback_channels: bool = False,
    ) -> Version:
        """Revoke now, at ``revoke_at``, or after ``revoke_in`` (a duration such as ``"30d"``).

        With neither, the revocation is immediate (``revoke_in="0s"``).
        Descendants inherit it unless ``skip_descendants``; channels that point
        at the version roll back unless ``disable_rollback_channels``.

            >>> hcp.revoke_version("golden", "fp-1", revoke_in="7d")  # doctest: +SKIP
        """
        if revoke_at is not None and revoke_in is not None:
            raise config_error("give revoke_at or revoke_in, not both.")
        body: dict[str, Any] = {}
        if isinstance(revoke_at, datetime):
            body["revoke_at"] = revoke_at.isoformat().replace("+00:00", "Z")
        elif revoke_at is not None:
            body["revoke_at"] = revoke_at
        else:
            body["revoke_in"] = revoke_in or "0s"
        if message:
            body["revocation_message"] = message
        if skip_descendants:
            body["skip_descendants_revocation"] = True
        if disable_rollback_channels:
            body["disable_rollback_channels"] = True
        return self.update_version(bucket, fingerprint, **body)

    def preview_revocation(
        self,
        bucket: str,
        fingerprint: str,
        *,
        revoke_at: datetime | str | None = None,
        revoke_in: str | None = None,
        skip_descendants: bool = False,
        disable_rollback_channels: bool = False,
    ) -> RevocationPreview:
        """What :meth:`revoke_version` with the same arguments would change, changing
        nothing: the descendants that inherit the revocation and the channels rolled back.
        Packyard only (HCP answers 404).
        """
        if revoke_at is not None and revoke_in is not None:
            raise config_error("give revoke_at or revoke_in, not both.")
        params: dict[str, str] = {}
        if isinstance(revoke_at, datetime):
            params["revoke_at"] = revoke_at.isoformat().replace("+00:00", "Z")
        elif revoke_at is not None:
            params["revoke_at"] = revoke_at
        else:
            params["revoke_in"] = revoke_in or "0s"
        if skip_descendants:
            params["skip_descendants_revocation"] = "true"
        if disable_rollback_channels:
            params["disable_rollback_channels"] = "true"
        path = self._packyard_version(bucket, fingerprint) + "/revocation-preview"
        return RevocationPreview.parse(self.request("GET", path, params=params))

    def preview_restore(self, bucket: str, fingerprint: str) -> RestorePreview:
        """What :meth:`restore_version` would change, changing nothing: the descendants
        whose inherited revocation it clears. Packyard only (HCP answers 404)."""
        path = self._packyard_version(bucket, fingerprint) + "/restore-preview"
        return RestorePreview.parse(self.request("GET", path))

    def _packyard_version(self, bucket: str, fingerprint: str) -> str:
        org, project = self.tenant()
        return (
            f"/packyard/{PACKYARD_API_VERSION}/organizations/{_seg(org)}/projects/"
            f"{_seg(project)}/buckets/{_seg(bucket)}/versions/{_seg(fingerprint)}"
        )

    # --- access (Packyard only; bucket policies also through HCP's resource manager) -------
    def _access(self, member: str | None = None) -> str:
        org, project = self.tenant()
        path = (
            f"/packyard/{PACKYARD_API_VERSION}/organizations/{_seg(org)}/projects/{_seg(project)}"
        )
        return f"{path}/access" + (f"/{_seg(member)}" if member is not None else "")

    def list_access(self, bucket: str | None = None) -> list[AccessEntry]:
        """The project's roles and every bucket grant, or one bucket's grants (admins)."""
        params = {"bucket": bucket} if bucket else None
        body = self.request("GET", self._access(), params=params)
        return [AccessEntry.parse(e) for e in body.get("access") or []]

    def grant_access(self, member: str, role: str, bucket: str | None = None) -> AccessEntry:
        """Give ``member`` (principal id or client id, user id or email) ``role`` on the
        project, or on ``bucket``; it replaces the member's role there."""
        json: dict[str, str] = {"role": role}
        if bucket:
            json["bucket"] = bucket
        body = self.request("PUT", self._access(member), json=json)
        return AccessEntry.parse(body.get("access"))

    def revoke_access(self, member: str, bucket: str | None = None) -> None:
        """Take ``member``'s project role, or its grant on ``bucket``, away."""
        params = {"bucket": bucket} if bucket else None
        self.request("DELETE", self._access(member), params=params)

    # --- audit log (Packyard only; the project's admins) ----------------------------------
    def list_audit(
        self,
        *,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        actor: str | None = None,
        bucket: str | None = None,
        action: str | None = None,
        status: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[AuditEvent]:
        """The project's audit entries matching the filters, newest first, following pages.
        Times are RFC 3339 (or aware datetimes) or durations back from now (``7d``);
        ``action`` is create/update/delete or a description (``Revoked version``)."""
        params: list[tuple[str, Any]] = []
        for key, value in (
            ("since", since),
            ("until", until),
            ("actor", actor),
            ("bucket", bucket),
            ("action", action),
            ("status", status),
        ):
            if value:
                params.append((key, value.isoformat() if isinstance(value, datetime) else value))
        if page_size:
            params.append(("page_size", str(page_size)))
        org, project = self.tenant()
        path = (
            f"/packyard/{PACKYARD_API_VERSION}/organizations/{_seg(org)}/projects/"
            f"{_seg(project)}/audit"
        )
        token = ""
        seen: set[str] = set()
        while True:
            body = self.request(
                "GET", path, params=params + ([("page_token", token)] if token else [])
            )
            for item in body.get("events") or []:
                yield AuditEvent.parse(item)
            token = str(body.get("next_page_token") or "")
            if not token or token in seen:
                return
            seen.add(token)

    def get_bucket_policy(self, bucket: str) -> IamPolicy:
        """The bucket's IAM policy (resource-manager GetIamPolicy, as the Terraform
        provider reads it)."""
        _, project = self.tenant()
        body = self.request(
            "GET",
            _IAM_POLICY,
            params={"resource_name": f"packer/project/{project}/bucket/{bucket}"},
        )
        return IamPolicy.parse(body.get("policy"))

    def restore_version(self, bucket: str, fingerprint: str) -> Version:
        """Clear a revocation (and the revocations descendants inherited from it)."""
        return self.update_version(bucket, fingerprint, restore=True)

    def delete_version(
        self, bucket: str, fingerprint: str, *, rollback_channels: bool = False
    ) -> None:
        params = {"rollback_channels": "true"} if rollback_channels else None
        self.request("DELETE", self._version(bucket, fingerprint), params=params)

    # --- builds -------------------------------------------------------------
    def list_builds(self, bucket: str, fingerprint: str) -> Iterator[Build]:
        return self._pages(f"{self._version(bucket, fingerprint)}/builds", "builds", Build)

    def get_build(self, bucket: str, fingerprint: str, build_id: str) -> Build:
        path = self._build(bucket, fingerprint, build_id)
        return Build.parse(self.request("GET", path).get("build"))

    def create_build(
        self,
        bucket: str,
        fingerprint: str,
        component_type: str,
        *,
        status: str = "BUILD_UNSET",
        **fields: Any,
    ) -> Build:
        """Register a build (component) in an incomplete version; code 6 when it exists."""
        body = {"component_type": component_type, "status": status, "artifacts": None, **fields}
        path = f"{self._version(bucket, fingerprint)}/builds"
        return Build.parse(self.request("POST", path, json=body).get("build"))

    def update_build(self, bucket: str, fingerprint: str, build_id: str, **fields: Any) -> Build:
        """UpdateBuild; ``status="BUILD_DONE"`` with ``artifacts=[{"external_identifier",
        "region"}]`` and ``platform`` finishes it (the last one completes the version)."""
        path = self._build(bucket, fingerprint, build_id)
        return Build.parse(self.request("PATCH", path, json=fields).get("build"))

    def delete_build(self, bucket: str, fingerprint: str, build_id: str) -> None:
        self.request("DELETE", self._build(bucket, fingerprint, build_id))

    # --- channels -----------------------------------------------------------
    def list_channels(self, bucket: str) -> list[Channel]:
        """All channels of a bucket (not paginated), each with its full version."""
        body = self.request("GET", f"{self._bucket(bucket)}/channels")
        return [Channel.parse(c) for c in body.get("channels") or []]

    def get_channel(self, bucket: str, channel: str) -> Channel:
        return Channel.parse(self.request("GET", self._channel(bucket, channel)).get("channel"))

    def create_channel(
        self,
        bucket: str,
        name: str,
        *,
        fingerprint: str | None = None,
        restricted: bool = False,
    ) -> Channel:
        body: dict[str, Any] = {"name": name}
        if fingerprint:
            body["version_fingerprint"] = fingerprint
        if restricted:
            body["restricted"] = True
        path = f"{self._bucket(bucket)}/channels"
        return Channel.parse(self.request("POST", path, json=body).get("channel"))

    def update_channel(
        self,
        bucket: str,
        channel: str,
        *,
        fingerprint: str | None = None,
        restricted: bool | None = None,
    ) -> Channel:
        """UpdateChannel. ``fingerprint=""`` unassigns; ``None`` leaves a field alone."""
        mask: list[str] = []
        body: dict[str, Any] = {}
        if fingerprint is not None:
            mask.append("versionFingerprint")
            if fingerprint:
                body["version_fingerprint"] = fingerprint
        if restricted is not None:
            mask.append("restricted")
            if restricted:
                body["restricted"] = True
        if not mask:
            raise config_error("update_channel needs fingerprint and/or restricted.")
        body["update_mask"] = ",".join(mask)
        path = self._channel(bucket, channel)
        return Channel.parse(self.request("PATCH", path, json=body).get("channel"))

    def assign_channel(self, bucket: str, channel: str, fingerprint: str) -> Channel:
        """Point a channel at a (complete, not revoked) version."""
        if not fingerprint:
            raise config_error("a fingerprint is required; use unassign_channel to clear.")
        return self.update_channel(bucket, channel, fingerprint=fingerprint)

    def unassign_channel(self, bucket: str, channel: str) -> Channel:
        return self.update_channel(bucket, channel, fingerprint="")

    def promote_channel(self, bucket: str, source: str, target: str) -> ChannelPromotion:
        """Copy ``source``'s current version to ``target`` (AssignChannelVersion)."""
        body = {"source_channel": source, "target_channel": target}
        path = f"{self._bucket(bucket)}/channels/assign"
        return ChannelPromotion.parse(self.request("POST", path, json=body))

    def delete_channel(self, bucket: str, channel: str) -> None:
        self.request("DELETE", self._channel(bucket, channel))

    def channel_history(
        self, bucket: str, channel: str, *, page_size: int | None = None
    ) -> Iterator[ChannelAssignment]:
        """The channel's assignments, newest first."""
        path = f"{self._channel(bucket, channel)}/history"
        return self._pages(path, "history", ChannelAssignment, page_size=page_size)

    # --- enforced provisioner blocks -------------------------------------------
    def _enforced(self, block: str | None = None, version: str | None = None) -> str:
        path = f"{self._base()}/enforced_blocks"
        if block is not None:
            path += f"/{_seg(block)}"
        if version is not None:
            path += f"/versions/{_seg(version)}"
        return path

    def list_enforced_blocks(self) -> list[EnforcedBlock]:
        """Every enforced block of the project, by name."""
        body = self.request("GET", self._enforced())
        return [EnforcedBlock.parse(b) for b in body.get("enforced_blocks") or []]

    def get_enforced_block(self, block: str) -> EnforcedBlock:
        """One block (by id or name) with its latest version."""
        return EnforcedBlock.parse(self.request("GET", self._enforced(block)).get("enforced_block"))

    def create_enforced_block(
        self,
        name: str,
        block_content: str,
        *,
        template_type: str = "HCL2",
        version: str | None = None,
        labels: dict[str, str] | None = None,
        description: str | None = None,
    ) -> EnforcedBlock:
        """Create a block with its first version; the content is checked as Packer parses it."""
        body: dict[str, Any] = {
            "name": name,
            "template_type": template_type,
            "block_content": block_content,
        }
        if version:
            body["version"] = version
        if labels is not None:
            body["labels"] = labels
        if description is not None:
            body["additional_description"] = description
        out = self.request("PUT", self._enforced(), json=body)
        return EnforcedBlock.parse(out.get("enforced_block"))

    def update_enforced_block(
        self, block: str, *, name: str | None = None, labels: dict[str, str] | None = None
    ) -> EnforcedBlock:
        """Rename a block and/or replace its labels."""
        mask = [p for p, v in (("name", name), ("labels", labels)) if v is not None]
        body: dict[str, Any] = {"update_mask": ",".join(mask)}
        if name is not None:
            body["name"] = name
        if labels is not None:
            body["labels"] = labels
        out = self.request("PATCH", self._enforced(block), json=body)
        return EnforcedBlock.parse(out.get("enforced_block"))

    def delete_enforced_block(self, block: str) -> None:
        """Delete a block and its versions; code 9 while a version is linked to a bucket."""
        self.request("DELETE", self._enforced(block))

    def list_enforced_block_versions(self, block: str) -> list[EnforcedBlockDetail]:
        """The block's versions, newest first."""
        body = self.request("GET", self._enforced(block) + "/versions")
        return [EnforcedBlockDetail.parse(d) for d in body.get("enforced_block_detail") or []]

    def create_enforced_block_version(
        self,
        block: str,
        block_content: str,
        *,
        version: str | None = None,
        template_type: str = "HCL2",
        description: str | None = None,
    ) -> EnforcedBlockVersion:
        body: dict[str, Any] = {"template_type": template_type, "block_content": block_content}
        if version:
            body["version"] = version
        if description is not None:
            body["additional_description"] = description
        out = self.request("PUT", self._enforced(block) + "/versions", json=body)
        return EnforcedBlockVersion.parse(out.get("enforced_block_version"))

    def update_enforced_block_version(
        self, block: str, version: str, description: str
    ) -> EnforcedBlockVersion:
        body = {"additional_description": description, "update_mask": "additional_description"}
        out = self.request("PATCH", self._enforced(block, version), json=body)
        return EnforcedBlockVersion.parse(out.get("enforced_block_version"))

    def delete_enforced_block_version(self, block: str, version: str) -> None:
        """Code 9 while the version is linked to a bucket."""
        self.request("DELETE", self._enforced(block, version))

    def enforced_block_linked_buckets(self, block: str, version: str) -> list[EnforcedBlockLink]:
        body = self.request("GET", self._enforced(block, version) + "/buckets")
        return [EnforcedBlockLink.parse(x) for x in body.get("linked_buckets") or []]

    def link_enforced_block(
        self, block: str, version: str, buckets: list[str]
    ) -> list[EnforcedBlockLink]:
        """Link exactly ``buckets`` to this version (an empty list unlinks all); a bucket
        linked to another version of the block moves to this one."""
        body = {"bucket_names": buckets}
        out = self.request("POST", self._enforced(block, version) + "/buckets", json=body)
        return [EnforcedBlockLink.parse(x) for x in out.get("enforced_block_buckets") or []]

    def enforced_blocks_for_bucket(self, bucket: str) -> list[EnforcedBlockDetail]:
        """What ``packer build`` into ``bucket`` injects (Packer's own call)."""
        body = self.request("GET", f"{self._enforced()}/bucket/{_seg(bucket)}")
        return [EnforcedBlockDetail.parse(d) for d in body.get("enforced_block_detail") or []]

    # --- ancestry and search -------------------------------------------------
    def list_ancestry(
        self,
        bucket: str,
        *,
        type: str = "ANCESTRY_TYPE_UNSET",
        channel_name: str | None = None,
        version_fingerprint: str | None = None,
    ) -> Iterator[AncestryRelation]:
        """Parent and child edges of a bucket's version (default: its latest).

        ``type`` is ``ANCESTRY_TYPE_PARENTS``, ``ANCESTRY_TYPE_CHILDREN`` or
        ``ANCESTRY_TYPE_UNSET`` (both).
        """
        params: list[tuple[str, Any]] = [("type", type)]
        if channel_name:
            params.append(("channel_name", channel_name))
        if version_fingerprint:
            params.append(("version_fingerprint", version_fingerprint))
        path = f"{self._bucket(bucket)}/ancestry"
        return self._pages(path, "relations", AncestryRelation, params)

    def search_external_artifact(
        self,
        external_identifier: str,
        *,
        platform: str | None = None,
        region: str | None = None,
    ) -> Iterator[ExternalArtifact]:
        """Reverse lookup: the bucket, version and build that produced a cloud image id.

        >>> hits = hcp.search_external_artifact("ami-123")  # doctest: +SKIP
        >>> [hit.version.status for hit in hits]  # doctest: +SKIP
        ['VERSION_ACTIVE']
        """
        body: dict[str, Any] = {"external_identifier": external_identifier}
        if platform:
            body["platform"] = platform
        if region:
            body["region"] = region
        path = f"{self._base()}/_search/external_artifact"
        return self._pages(path, "artifacts", ExternalArtifact, method="POST", json=body)

    # --- webhooks (HCP's webhook service, 2023-05-31; redelivery is Packyard's) -------------
    def _webhooks(self) -> str:
        _, project = self.tenant()
        return f"/{WEBHOOK_API_VERSION}/webhook/project/{_seg(project)}/webhooks"

    def _webhook(self, name: str) -> str:
        _, project = self.tenant()
        return f"/{WEBHOOK_API_VERSION}/webhook/project/{_seg(project)}/geo/us/webhook/{_seg(name)}"

    def create_webhook(
        self,
        name: str,
        url: str,
        *,
        hmac_key: str | None = None,
        description: str = "",
        enabled: bool | None = None,
        events: list[tuple[str, str]] | None = None,
    ) -> Webhook:
        """Create a webhook subscribed to ``events`` (``(source, action)`` pairs, ``*`` for
        any action). Unless ``enabled`` is False the server first POSTs a verification event
        to ``url``: with ``enabled=True`` a failed verification is an error, without it the
        webhook is created disabled."""
        config: dict[str, str] = {"url": url}
        if hmac_key:
            config["hmac_key"] = hmac_key
        body: dict[str, Any] = {"name": name, "config": config, "description": description}
        if enabled is not None:
            body["enabled"] = enabled
        if events:
            body["subscriptions"] = [
                {"events": [{"source": source, "action": action} for source, action in events]}
            ]
        return Webhook.parse(self.request("POST", self._webhooks(), json=body).get("webhook"))

    def list_webhooks(self, *, page_size: int | None = None) -> Iterator[Webhook]:
        return self._pages(self._webhooks(), "webhooks", Webhook, page_size=page_size)

    def get_webhook(self, name: str) -> Webhook:
        return Webhook.parse(self.request("GET", self._webhook(name)).get("webhook"))

    def update_webhook(self, name: str, update_mask: str, webhook: dict[str, Any]) -> Webhook:
        """Replace the fields ``update_mask`` names (e.g. ``"config,enabled"``) with those of
        ``webhook`` (a named field left out takes its zero value)."""
        body = {"update_mask": update_mask, "webhook": webhook}
        return Webhook.parse(self.request("PATCH", self._webhook(name), json=body).get("webhook"))

    def delete_webhook(self, name: str) -> None:
        self.request("DELETE", self._webhook(name))

    def list_deliveries(
        self, name: str, *, page_size: int | None = None
    ) -> Iterator[WebhookDelivery]:
        """The webhook's deliveries, newest first."""
        return self._pages(
            self._webhook(name) + "/deliveries", "deliveries", WebhookDelivery, page_size=page_size
        )

    def redeliver(self, name: str, delivery_id: str) -> WebhookDelivery:
        """Send a delivered or dead delivery again (same event, same ``event_id``)."""
        org, project = self.tenant()
        path = (
            f"/packyard/{PACKYARD_API_VERSION}/organizations/{_seg(org)}/projects/"
            f"{_seg(project)}/webhooks/{_seg(name)}/deliveries/{_seg(delivery_id)}/redeliver"
        )
        return WebhookDelivery.parse(self.request("POST", path).get("delivery"))


def is_code(exc: BaseException, *codes: Code) -> bool:
    """True when ``exc`` is an :class:`ApiError` with one of ``codes``."""
    return isinstance(exc, ApiError) and exc.code in codes


def tolerate(call: Callable[[], M], *codes: Code) -> M | None:
    """Run ``call``; return ``None`` instead of raising for the given codes.

    >>> tolerate(lambda: hcp.get_bucket("maybe"), Code.NOT_FOUND)  # doctest: +SKIP
    """
    try:
        return call()
    except ApiError as exc:
        if exc.code in codes:
            return None
        raise

"""The SDK against a real Packyard server (SQLite and PostgreSQL), token flow included."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from packyard.client import ApiError, ClientConfig, Code, PackerClient
from packyard.domain.enums import Role
from packyard.services.container import Services
from packyard.tls import ensure_self_signed
from tests.support.factories import Api, TenantFixture
from tests.support.hcp_env import hcp_env, push, push_built_from, sdk_client
from tests.support.server import running_server


@pytest.fixture
def hcp(api: Api, base_url: str, tenant: TenantFixture) -> Iterator[PackerClient]:
    with sdk_client(base_url, tenant) as client:
        yield client


def test_bucket_lifecycle_and_pagination(hcp: PackerClient) -> None:
    created = hcp.create_bucket("web", description="Web tier", labels={"team": "a"})
    assert created.name == "web" and created.labels == {"team": "a"}
    assert created.version_count == 0 and created.latest_version is None
    for name in ("b1", "b2", "b3", "b4"):
        hcp.create_bucket(name)
    names = [b.name for b in hcp.list_buckets(order_by=["name"], page_size=2)]
    assert names == ["b1", "b2", "b3", "b4", "web"]
    updated = hcp.update_bucket("web", description="Web")
    assert updated.description == "Web" and updated.labels == {"team": "a"}
    assert hcp.update_bucket("web", labels={"x": "y"}).labels == {"x": "y"}
    assert hcp.get_bucket("web").raw["name"] == "web"
    with pytest.raises(ApiError) as info:
        hcp.create_bucket("web")
    assert (info.value.code, info.value.http_status) == (Code.ALREADY_EXISTS, 409)
    hcp.delete_bucket("web")
    with pytest.raises(ApiError) as info:
        hcp.get_bucket("web")
    assert (info.value.code, info.value.http_status) == (Code.NOT_FOUND, 404)
    assert info.value.message


def test_versions_builds_and_registry(hcp: PackerClient) -> None:
    hcp.create_bucket("golden")
    push(hcp, "golden", "fp-1", {"us-east-1": "ami-1", "eu-west-1": "ami-2"})
    version = hcp.get_version("golden", "fp-1")
    assert (version.name, version.number, version.status) == ("v1", 1, "VERSION_ACTIVE")
    assert not version.revoked and not version.revocation_scheduled
    found = version.find_artifact("aws", "eu-west-1")
    assert found is not None and found[1].external_identifier == "ami-2"
    assert version.find_artifact("aws", "ap-south-1") is None
    assert {p: sorted(r) for p, r in version.available().items()} == {
        "aws": ["eu-west-1", "us-east-1"]
    }
    builds = list(hcp.list_builds("golden", "fp-1"))
    assert [b.component_type for b in builds] == ["amazon-ebs.base"]
    build = hcp.get_build("golden", "fp-1", builds[0].id)
    assert build.status == "BUILD_DONE" and build.version_id == version.id
    push(hcp, "golden", "fp-2", {"us-east-1": "ami-3"})
    assert sorted(v.fingerprint for v in hcp.list_versions("golden", page_size=1)) == [
        "fp-1",
        "fp-2",
    ]
    assert hcp.get_bucket("golden").latest_version is not None
    with pytest.raises(ApiError) as info:
        hcp.get_version("golden", "nope")
    assert (info.value.code, info.value.http_status) == (Code.ABORTED, 409)
    hcp.delete_version("golden", "fp-1")
    assert [v.fingerprint for v in hcp.list_versions("golden")] == ["fp-2"]
    registry = hcp.get_registry()
    assert registry.id and registry.config.activated


def test_channels_assign_promote_history(hcp: PackerClient) -> None:
    hcp.create_bucket("app")
    push(hcp, "app", "fp-a", {"us-east-1": "ami-a"})
    push(hcp, "app", "fp-b", {"us-east-1": "ami-b"})
    staging = hcp.create_channel("app", "staging", fingerprint="fp-a")
    assert staging.version is not None and staging.version.fingerprint == "fp-a"
    hcp.create_channel("app", "production")
    assert hcp.get_channel("app", "production").version is None
    hcp.assign_channel("app", "staging", "fp-b")
    promoted = hcp.promote_channel("app", "staging", "production")
    assert promoted.fingerprint == "fp-b"
    assert promoted.target_channel is not None and promoted.target_channel.name == "production"
    prod = hcp.get_channel("app", "production")
    assert prod.version is not None and prod.version.builds[0].artifacts[0].external_identifier == (
        "ami-b"
    )
    history = list(hcp.channel_history("app", "staging", page_size=1))
    assert [h.version.fingerprint if h.version else None for h in history] == ["fp-b", "fp-a"]
    assert all(h.assigned_at is not None for h in history)
    assert hcp.unassign_channel("app", "production").version is None
    assert hcp.update_channel("app", "production", restricted=True).restricted
    names = {c.name: c for c in hcp.list_channels("app")}
    assert set(names) == {"latest", "staging", "production"}
    assert names["latest"].managed
    with pytest.raises(ApiError) as info:
        hcp.assign_channel("app", "latest", "fp-a")
    assert info.value.code is Code.FAILED_PRECONDITION
    hcp.delete_channel("app", "production")
    with pytest.raises(ApiError) as info:
        hcp.get_channel("app", "production")
    assert info.value.code is Code.NOT_FOUND


def _skip_if_unimplemented(exc: ApiError, what: str) -> None:
    if exc.code is Code.UNIMPLEMENTED:
        pytest.skip(f"the server does not implement {what} yet (code 12)")


def test_ancestry_and_search(hcp: PackerClient) -> None:
    hcp.create_bucket("base")
    push(hcp, "base", "fp-p", {"us-east-1": "ami-parent"})
    channel = hcp.create_channel("base", "prod", fingerprint="fp-p")
    hcp.create_bucket("child")
    push_built_from(
        hcp,
        channel,
        "child",
        "fp-c",
        {"us-east-1": "ami-child"},
        source_external_identifier="ami-parent",
    )
    try:
        parents = list(hcp.list_ancestry("child", type="ANCESTRY_TYPE_PARENTS"))
    except ApiError as exc:
        _skip_if_unimplemented(exc, "ListBucketAncestry")
        raise
    assert len(parents) == 1 and parents[0].parent is not None
    assert parents[0].parent.bucket_name == "base"
    assert parents[0].status == "UP_TO_DATE"
    children = [r for r in hcp.list_ancestry("base") if r.child is not None]
    assert [c.child.bucket_name for c in children if c.child] == ["child"]
    try:
        hits = list(hcp.search_external_artifact("ami-child"))
    except ApiError as exc:
        _skip_if_unimplemented(exc, "SearchExternalArtifact")
        raise
    assert len(hits) == 1
    assert (hits[0].bucket.name, hits[0].version.fingerprint) == ("child", "fp-c")
    assert hits[0].version.status == "VERSION_ACTIVE"
    assert list(hcp.search_external_artifact("ami-nobody")) == []
    assert list(hcp.search_external_artifact("ami-child", platform="gce")) == []


def test_revoke_and_restore(hcp: PackerClient) -> None:
    hcp.create_bucket("rv")
    push(hcp, "rv", "fp-1", {"us-east-1": "ami-1"})
    try:
        revoked = hcp.revoke_version("rv", "fp-1", message="CVE-1")
    except ApiError as exc:
        _skip_if_unimplemented(exc, "revocation")
        raise
    assert revoked.revoked and revoked.revocation_message == "CVE-1"
    assert hcp.get_version("rv", "fp-1").status == "VERSION_REVOKED"
    restored = hcp.restore_version("rv", "fp-1")
    assert not restored.revoked and restored.status == "VERSION_ACTIVE"
    scheduled = hcp.revoke_version("rv", "fp-1", revoke_in="30d")
    assert scheduled.revocation_scheduled and scheduled.status == "VERSION_REVOCATION_SCHEDULED"
    with pytest.raises(ApiError):
        hcp.revoke_version("rv", "fp-1", revoke_in="1d", revoke_at="2030-01-01T00:00:00Z")


def test_token_is_fetched_once_and_tenant_discovered(base_url: str, tenant: TenantFixture) -> None:
    env = hcp_env(base_url, tenant, with_tenant_ids=False)
    cfg = ClientConfig.from_env({k: v for k, v in env.items() if v is not None})
    with PackerClient(cfg) as hcp:
        assert hcp.tenant() == (tenant.organization_id, tenant.project_id)
        hcp.create_bucket("disc")
        assert [b.name for b in hcp.list_buckets()] == ["disc"]
        assert hcp.token_requests == 1
    # A project alone: the organization is the project's parent.
    cfg = ClientConfig.from_env(
        {k: v for k, v in env.items() if v is not None} | {"HCP_PROJECT_ID": tenant.project_id}
    )
    with PackerClient(cfg) as hcp:
        assert hcp.tenant() == (tenant.organization_id, tenant.project_id)


def test_disk_token_cache_is_shared(base_url: str, tenant: TenantFixture, tmp_path: Path) -> None:
    env = {k: v for k, v in hcp_env(base_url, tenant).items() if v is not None}
    env["PACKYARD_TOKEN_CACHE"] = str(tmp_path / "creds-cache.json")
    with PackerClient.from_env(env) as first:
        first.get_registry()
        assert first.token_requests == 1
    cached = json.loads((tmp_path / "creds-cache.json").read_text())
    assert tenant.identities[Role.ADMIN].client_id in cached["service-principals"]
    with PackerClient.from_env(env) as second:
        second.get_registry()
        assert second.token_requests == 0


def test_authentication_and_permission_errors(base_url: str, tenant: TenantFixture) -> None:
    env = {k: v for k, v in hcp_env(base_url, tenant).items() if v is not None}
    bad = PackerClient.from_env(env | {"HCP_CLIENT_SECRET": "wrong"})
    with bad, pytest.raises(ApiError) as info:
        next(bad.list_buckets())
    assert (info.value.code, info.value.http_status) == (Code.UNAUTHENTICATED, 401)
    assert "invalid_client" in info.value.message
    static_cfg = ClientConfig(
        api_address=env["HCP_API_ADDRESS"],
        api_tls="disabled",
        access_token="garbage",
        organization_id=tenant.organization_id,
        project_id=tenant.project_id,
    )
    with PackerClient(static_cfg) as static, pytest.raises(ApiError) as info:
        static.get_registry()
    assert info.value.code is Code.UNAUTHENTICATED and static.token_requests == 0
    with sdk_client(base_url, tenant, Role.VIEWER) as viewer, pytest.raises(ApiError) as info:
        viewer.create_bucket("nope")
    assert (info.value.code, info.value.http_status) == (Code.PERMISSION_DENIED, 403)


def test_unreachable_server_is_code_14_without_http_status() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    cfg = ClientConfig(
        api_address=f"127.0.0.1:{port}",
        api_tls="disabled",
        auth_url=f"http://127.0.0.1:{port}",
        client_id="x",
        client_secret="y",
        organization_id="o",
        project_id="p",
        timeout=5,
    )
    with PackerClient(cfg) as hcp, pytest.raises(ApiError) as info:
        hcp.get_registry()
    assert (info.value.code, info.value.http_status) == (Code.UNAVAILABLE, 0)


def test_tls_server_with_token_flow(
    services: Services, tenant: TenantFixture, tmp_path: Path
) -> None:
    cert, key = ensure_self_signed(tmp_path / "tls")
    with running_server(services, ssl_cert=cert, ssl_key=key) as url:
        assert url.startswith("https://")
        env = {k: v for k, v in hcp_env(url, tenant).items() if v is not None}
        assert env["HCP_API_TLS"] == "insecure" and env["HCP_AUTH_URL"].startswith("https://")
        with PackerClient.from_env(env) as hcp:
            hcp.create_bucket("tls-bucket")
            assert hcp.get_bucket("tls-bucket").name == "tls-bucket"
            assert hcp.token_requests == 1
        # Verified TLS refuses the self-signed certificate: one error type, no HTTP status.
        strict = env | {"HCP_API_TLS": "", "HCP_AUTH_TLS": ""}
        with PackerClient.from_env(strict) as hcp, pytest.raises(ApiError) as info:
            hcp.get_bucket("tls-bucket")
        assert (info.value.code, info.value.http_status) == (Code.UNAVAILABLE, 0)
        assert "certificate" in info.value.message.lower()

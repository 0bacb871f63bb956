"""``packyard access grant|revoke|list`` against a real server, and the SDK calls under it."""

from __future__ import annotations

from packyard.client import PackerClient
from packyard.domain.enums import Role
from packyard.services.container import Services
from tests.support.cli import Cli
from tests.support.factories import Api, TenantFixture, make_member


def test_grant_list_and_revoke_on_a_bucket_and_the_project(
    cli: Cli, api: Api, services: Services, tenant: TenantFixture
) -> None:
    api.create_bucket("network-base")
    net = make_member(services, tenant, project_role=None, name="net-ci")
    granted = cli.json("access", "grant", net.client_id, "contributor", "--bucket", "network-base")
    assert granted == {
        "member_id": net.principal_id,
        "member_type": "SERVICE_PRINCIPAL",
        "name": "net-ci",
        "role": "contributor",
        "bucket": "network-base",
    }
    rows = cli.json("access", "list")
    assert {(r["name"], r["role"], r["bucket"]) for r in rows} == {
        ("admin-sp", "admin", None),
        ("contributor-sp", "contributor", None),
        ("viewer-sp", "viewer", None),
        ("net-ci", "contributor", "network-base"),
    }
    assert [r["member_id"] for r in cli.json("access", "list", "-b", "network-base")] == [
        net.principal_id
    ]
    cli.ok("access", "grant", net.principal_id, "viewer")  # a project role as well
    plain = cli.ok("access", "list", "--format", "plain").stdout.splitlines()
    assert plain[0].split() == ["SCOPE", "ROLE", "TYPE", "ID", "NAME"]
    assert ["project", "viewer", "SERVICE_PRINCIPAL", net.principal_id, "net-ci"] in [
        line.split() for line in plain[1:]
    ]
    cli.ok("access", "revoke", net.client_id, "--bucket", "network-base")
    cli.ok("access", "revoke", net.client_id)
    assert "net-ci" not in {r["name"] for r in cli.json("access", "list")}


def test_bad_requests_are_one_line_and_change_nothing(
    cli: Cli, api: Api, tenant: TenantFixture
) -> None:
    api.create_bucket("app")
    before = cli.json("access", "list")
    viewer = tenant.identities[Role.VIEWER]
    for args, code in [
        (("access", "grant", "nobody", "viewer", "--bucket", "app"), 1),
        (("access", "grant", viewer.client_id, "owner"), 2),
        (("access", "grant", viewer.client_id, "viewer", "--bucket", "missing"), 1),
        (("access", "revoke", viewer.client_id, "--bucket", "app"), 1),
    ]:
        result = cli.fails(code, *args)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert cli.json("access", "list") == before


def test_the_last_admin_keeps_its_project_role(cli: Cli, tenant: TenantFixture) -> None:
    admin = tenant.identities[Role.ADMIN]
    result = cli.fails(1, "access", "revoke", admin.client_id)
    assert result.stderr.startswith("error:")
    result = cli.fails(1, "access", "grant", admin.client_id, "viewer")
    assert {
        r["role"] for r in cli.json("access", "list") if r["member_id"] == admin.principal_id
    } == {"admin"}


def test_only_admins_manage_access(base_url: str, api: Api, tenant: TenantFixture) -> None:
    api.create_bucket("app")
    contributor = Cli(base_url, tenant, Role.CONTRIBUTOR)
    contributor.fails(1, "access", "list")
    contributor.fails(
        1, "access", "grant", tenant.identities[Role.VIEWER].client_id, "admin", "-b", "app"
    )


def test_the_sdk_reads_a_bucket_policy_as_the_provider_does(
    hcp: PackerClient, api: Api, tenant: TenantFixture
) -> None:
    api.create_bucket("app")
    viewer = tenant.identities[Role.VIEWER]
    hcp.grant_access(viewer.client_id, "contributor", "app")
    policy = hcp.get_bucket_policy("app")
    assert [(b.role_id, [m.member_id for m in b.members]) for b in policy.bindings] == [
        ("roles/contributor", [viewer.principal_id])
    ]
    assert policy.etag

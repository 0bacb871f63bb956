"""The lifecycle of service principals at the service level (both backends)."""

from __future__ import annotations

import pytest

from packyard.domain.enums import Role
from packyard.domain.models import Caller, Operator
from packyard.errors import ApiError, Code
from packyard.services.container import Services
from tests.support.factories import TenantFixture, make_tenant

OPERATOR = Operator()


@pytest.fixture(autouse=True)
def no_role_cache(services: Services) -> None:
    """Changes apply to other processes within the role cache's 5 s; here, at once."""
    services.auth.roles.ttl_s = 0


def _code(err: pytest.ExceptionInfo[ApiError]) -> Code:
    return err.value.code


def _authorize(services: Services, tenant: TenantFixture, token: str) -> Caller:
    return services.auth.authorize(token, tenant.organization_id, tenant.project_id)


def _token(services: Services, client_id: str, secret: str) -> str:
    principal = services.auth.authenticate_client(client_id, secret)
    assert principal is not None
    return services.auth.issue_token(principal).access_token


def test_admin_creates_lists_and_the_new_principal_works(
    services: Services, tenant: TenantFixture
) -> None:
    admin = tenant.caller(Role.ADMIN)
    org, project = tenant.organization_id, tenant.project_id
    issued = services.principals.create(admin, org, project, name=" ci-bot ", role=Role.VIEWER)
    assert issued.principal.name == "ci-bot"
    assert issued.principal.role is Role.VIEWER
    assert not issued.principal.disabled
    listed = services.principals.list(admin, org, project)
    assert [p.client_id for p in listed][-1] == issued.principal.client_id
    assert {p.role for p in listed} == set(Role)
    token = _token(services, issued.principal.client_id, issued.client_secret)
    assert _authorize(services, tenant, token).role is Role.VIEWER
    for ref in (issued.principal.id, issued.principal.client_id):
        assert services.principals.get(admin, org, project, ref) == issued.principal


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CONTRIBUTOR])
def test_only_admins_manage_principals(
    services: Services, tenant: TenantFixture, role: Role
) -> None:
    caller = tenant.caller(role)
    org, project = tenant.organization_id, tenant.project_id
    target = tenant.identities[Role.VIEWER].client_id
    calls = [
        lambda: services.principals.list(caller, org, project),
        lambda: services.principals.create(caller, org, project, name="x", role=Role.ADMIN),
        lambda: services.principals.update(caller, org, project, target, role=Role.ADMIN),
        lambda: services.principals.rotate_secret(caller, org, project, target),
        lambda: services.principals.delete(caller, org, project, target),
    ]
    for call in calls:
        with pytest.raises(ApiError) as err:
            call()
        assert _code(err) is Code.PERMISSION_DENIED
    assert len(services.principals.list(OPERATOR, org, project)) == 3


def test_an_admin_manages_only_its_own_project(services: Services, tenant: TenantFixture) -> None:
    other = make_tenant(services)
    admin = tenant.caller(Role.ADMIN)
    with pytest.raises(ApiError) as err:
        services.principals.list(admin, other.organization_id, other.project_id)
    assert _code(err) is Code.PERMISSION_DENIED
    # a principal of another project is not found through this one
    foreign = other.identities[Role.VIEWER].client_id
    with pytest.raises(ApiError) as err:
        services.principals.delete(admin, tenant.organization_id, tenant.project_id, foreign)
    assert _code(err) is Code.NOT_FOUND


def test_set_role_applies_to_the_next_request(services: Services, tenant: TenantFixture) -> None:
    ident = tenant.identities[Role.VIEWER]
    assert not _authorize(services, tenant, ident.token).can_write
    record = services.principals.update(
        tenant.caller(),
        tenant.organization_id,
        tenant.project_id,
        ident.client_id,
        role=Role.CONTRIBUTOR,
    )
    assert record.role is Role.CONTRIBUTOR
    assert _authorize(services, tenant, ident.token).can_write  # same token, new role


def test_disable_ends_tokens_and_enable_does_not_revive_them(
    services: Services, tenant: TenantFixture
) -> None:
    ident = tenant.identities[Role.CONTRIBUTOR]
    org, project, admin = tenant.organization_id, tenant.project_id, tenant.caller()
    assert services.principals.update(admin, org, project, ident.client_id, disabled=True).disabled
    with pytest.raises(ApiError) as err:
        _authorize(services, tenant, ident.token)
    assert _code(err) is Code.UNAUTHENTICATED
    assert services.auth.authenticate_client(ident.client_id, ident.client_secret) is None
    services.principals.update(admin, org, project, ident.client_id, disabled=False)
    with pytest.raises(ApiError) as err:
        _authorize(services, tenant, ident.token)
    assert _code(err) is Code.UNAUTHENTICATED
    fresh = _token(services, ident.client_id, ident.client_secret)
    assert _authorize(services, tenant, fresh).role is Role.CONTRIBUTOR


def test_rotate_secret_keeps_issued_tokens_by_default(
    services: Services, tenant: TenantFixture
) -> None:
    """Routine rotation: running pipelines finish with the tokens they hold."""
    ident = tenant.identities[Role.CONTRIBUTOR]
    issued = services.principals.rotate_secret(
        tenant.caller(), tenant.organization_id, tenant.project_id, ident.principal_id
    )
    assert services.auth.authenticate_client(ident.client_id, ident.client_secret) is None
    assert services.auth.authenticate_client(ident.client_id, issued.client_secret) is not None
    _authorize(services, tenant, ident.token)


def test_rotate_secret_can_end_the_old_secret_and_its_tokens(
    services: Services, tenant: TenantFixture
) -> None:
    ident = tenant.identities[Role.CONTRIBUTOR]
    issued = services.principals.rotate_secret(
        tenant.caller(),
        tenant.organization_id,
        tenant.project_id,
        ident.principal_id,
        revoke_tokens=True,
    )
    assert issued.client_secret != ident.client_secret
    assert services.auth.authenticate_client(ident.client_id, ident.client_secret) is None
    with pytest.raises(ApiError) as err:
        _authorize(services, tenant, ident.token)
    assert _code(err) is Code.UNAUTHENTICATED
    token = _token(services, ident.client_id, issued.client_secret)
    assert _authorize(services, tenant, token).principal_id == ident.principal_id
    # other principals are untouched
    _authorize(services, tenant, tenant.identities[Role.VIEWER].token)


def test_delete_ends_the_principal(services: Services, tenant: TenantFixture) -> None:
    ident = tenant.identities[Role.VIEWER]
    org, project = tenant.organization_id, tenant.project_id
    services.principals.delete(tenant.caller(), org, project, ident.client_id)
    assert ident.client_id not in [
        p.client_id for p in services.principals.list(OPERATOR, org, project)
    ]
    with pytest.raises(ApiError) as err:
        _authorize(services, tenant, ident.token)
    assert _code(err) is Code.UNAUTHENTICATED
    with pytest.raises(ApiError) as err:
        services.principals.delete(tenant.caller(), org, project, ident.client_id)
    assert _code(err) is Code.NOT_FOUND


def test_the_last_enabled_admin_stays(services: Services, tenant: TenantFixture) -> None:
    admin = tenant.identities[Role.ADMIN]
    org, project = tenant.organization_id, tenant.project_id
    for change in (
        lambda: services.principals.update(
            OPERATOR, org, project, admin.client_id, role=Role.VIEWER
        ),
        lambda: services.principals.update(OPERATOR, org, project, admin.client_id, disabled=True),
        lambda: services.principals.delete(OPERATOR, org, project, admin.client_id),
    ):
        with pytest.raises(ApiError) as err:
            change()
        assert _code(err) is Code.FAILED_PRECONDITION
    assert _authorize(services, tenant, admin.token).role is Role.ADMIN
    # with a second admin, the first may go
    second = tenant.identities[Role.CONTRIBUTOR]
    services.principals.update(OPERATOR, org, project, second.client_id, role=Role.ADMIN)
    services.principals.update(OPERATOR, org, project, admin.client_id, role=Role.VIEWER)
    with pytest.raises(ApiError) as err:
        services.principals.update(OPERATOR, org, project, second.client_id, disabled=True)
    assert _code(err) is Code.FAILED_PRECONDITION


def test_names_are_validated(services: Services, tenant: TenantFixture) -> None:
    org, project = tenant.organization_id, tenant.project_id
    for name in ("", "   ", "x" * 257, "tab\there", "a\ud800"):
        with pytest.raises(ApiError) as err:
            services.principals.create(OPERATOR, org, project, name=name, role=Role.VIEWER)
        assert _code(err) is Code.INVALID_ARGUMENT
    assert len(services.principals.list(OPERATOR, org, project)) == 3


def test_organizations_and_projects_come_with_an_admin(services: Services) -> None:
    tenant, admin = services.tenancy.create_organization(
        "acme", project_name="images", admin_name="acme-admin"
    )
    assert admin.role is Role.ADMIN
    token = _token(services, admin.principal.client_id, admin.client_secret)
    caller = services.auth.authorize(token, tenant.organization.id, tenant.project.id)
    assert caller.role is Role.ADMIN
    second, second_admin = services.tenancy.create_project(
        tenant.organization.id, "windows", admin_name="win-admin"
    )
    assert second.organization == tenant.organization
    assert [p.id for p in services.tenancy.all_projects(tenant.organization.id)] == [
        tenant.project.id,
        second.project.id,
    ]
    # each admin is confined to its own project
    with pytest.raises(ApiError) as err:
        services.auth.authorize(token, tenant.organization.id, second.project.id)
    assert _code(err) is Code.NOT_FOUND
    with pytest.raises(ApiError) as err:
        services.tenancy.create_project("no-such-org", "x", admin_name="a")
    assert _code(err) is Code.NOT_FOUND
    with pytest.raises(ApiError) as err:
        services.tenancy.create_organization("", project_name="p", admin_name="a")
    assert _code(err) is Code.INVALID_ARGUMENT
    assert second_admin.principal.organization_id == tenant.organization.id

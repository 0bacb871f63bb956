"""Grants at the service level (both backends): who may change them, what they change, and
the lifecycle of accounts that hold only grants."""

from __future__ import annotations

import pytest

from packyard.domain.enums import MemberType, Role
from packyard.domain.models import Caller, Operator, PolicyMember
from packyard.errors import ApiError, Code
from packyard.services.container import Services
from tests.support.factories import Identity, TenantFixture, make_member

OPERATOR = Operator()


@pytest.fixture(autouse=True)
def no_role_cache(services: Services) -> None:
    services.auth.roles.ttl_s = 0


@pytest.fixture
def buckets(services: Services, tenant: TenantFixture) -> tuple[str, str]:
    admin = tenant.caller(Role.ADMIN)
    services.buckets.create(admin, "a", "", {})
    services.buckets.create(admin, "b", "", {})
    return "a", "b"


def as_caller(services: Services, tenant: TenantFixture, who: Identity) -> Caller:
    return services.auth.authorize(who.token, tenant.organization_id, tenant.project_id)


def code_of(call: object) -> Code:
    with pytest.raises(ApiError) as err:
        call()  # type: ignore[operator]
    return err.value.code


def test_a_bucket_admin_manages_its_bucket_and_nothing_else(
    services: Services, tenant: TenantFixture, buckets: tuple[str, str]
) -> None:
    org, project = tenant.organization_id, tenant.project_id
    owner = as_caller(
        services,
        tenant,
        make_member(services, tenant, project_role=None, buckets={"a": Role.ADMIN}),
    )
    viewer = tenant.identities[Role.VIEWER].client_id
    entry = services.access.grant(owner, org, project, viewer, Role.CONTRIBUTOR, "a")
    assert (entry.bucket, entry.role, entry.member.type) == (
        "a",
        Role.CONTRIBUTOR,
        MemberType.SERVICE_PRINCIPAL,
    )
    granted = {(e.member.id, e.role) for e in services.access.list(owner, org, project, "a")}
    assert granted == {
        (owner.principal_id, Role.ADMIN),
        (tenant.identities[Role.VIEWER].principal_id, Role.CONTRIBUTOR),
    }
    # another bucket is invisible to it; project roles and the project's list are not its own
    assert (
        code_of(lambda: services.access.grant(owner, org, project, viewer, Role.ADMIN, "b"))
        is Code.NOT_FOUND
    )
    assert (
        code_of(lambda: services.access.grant(owner, org, project, viewer, Role.ADMIN))
        is Code.PERMISSION_DENIED
    )
    assert code_of(lambda: services.access.list(owner, org, project)) is Code.PERMISSION_DENIED


def test_a_project_contributor_cannot_grant(
    services: Services, tenant: TenantFixture, buckets: tuple[str, str]
) -> None:
    org, project = tenant.organization_id, tenant.project_id
    contributor = tenant.caller(Role.CONTRIBUTOR)
    viewer = tenant.identities[Role.VIEWER].client_id
    assert (
        code_of(lambda: services.access.grant(contributor, org, project, viewer, Role.ADMIN, "a"))
        is Code.PERMISSION_DENIED
    )


def test_grants_apply_to_the_next_authorization(
    services: Services, tenant: TenantFixture, buckets: tuple[str, str]
) -> None:
    org, project = tenant.organization_id, tenant.project_id
    who = make_member(services, tenant, project_role=Role.VIEWER)
    assert as_caller(services, tenant, who).bucket_roles == {}
    services.access.grant(OPERATOR, org, project, who.principal_id, Role.CONTRIBUTOR, "a")
    bucket_a = services.buckets.get(tenant.caller(), "a")
    assert as_caller(services, tenant, who).bucket_roles == {bucket_a.id: Role.CONTRIBUTOR}
    services.access.revoke(OPERATOR, org, project, who.principal_id)  # its project role
    caller = as_caller(services, tenant, who)
    assert (caller.role, caller.bucket_roles) == (None, {bucket_a.id: Role.CONTRIBUTOR})
    services.access.revoke(OPERATOR, org, project, who.principal_id, "a")
    assert code_of(lambda: as_caller(services, tenant, who)) is Code.NOT_FOUND  # nothing left


def test_every_grant_change_moves_the_policy_etag(
    services: Services, tenant: TenantFixture, buckets: tuple[str, str]
) -> None:
    org, project = tenant.organization_id, tenant.project_id
    admin = tenant.caller(Role.ADMIN)
    viewer = tenant.identities[Role.VIEWER]
    etags = [services.access.policy(admin, "a").etag]
    services.access.grant(OPERATOR, org, project, viewer.principal_id, Role.CONTRIBUTOR, "a")
    etags.append(services.access.policy(admin, "a").etag)
    services.access.set_policy(admin, "a", {Role.ADMIN: [(viewer.principal_id, None)]}, etags[-1])
    etags.append(services.access.policy(admin, "a").etag)
    services.access.revoke(OPERATOR, org, project, viewer.principal_id, "a")
    etags.append(services.access.policy(admin, "a").etag)
    assert etags[0] == "" and len(set(etags)) == 4
    assert services.access.policy(admin, "a").bindings == {}


def test_a_member_bound_to_two_roles_holds_the_higher(
    services: Services, tenant: TenantFixture, buckets: tuple[str, str]
) -> None:
    admin = tenant.caller(Role.ADMIN)
    who = make_member(services, tenant, project_role=None, buckets={"b": Role.VIEWER})
    bindings = {Role.VIEWER: [(who.principal_id, None)], Role.ADMIN: [(who.principal_id, None)]}
    policy = services.access.set_policy(admin, "a", bindings, "")
    member = PolicyMember(who.principal_id, MemberType.SERVICE_PRINCIPAL)
    assert policy.bindings == {Role.VIEWER: (member,), Role.ADMIN: (member,)}
    bucket_a = services.buckets.get(admin, "a")
    assert as_caller(services, tenant, who).bucket_roles[bucket_a.id] is Role.ADMIN


def test_accounts_holding_only_grants_stay_manageable(
    services: Services, tenant: TenantFixture, buckets: tuple[str, str]
) -> None:
    org, project = tenant.organization_id, tenant.project_id
    admin = tenant.caller(Role.ADMIN)
    who = make_member(
        services, tenant, project_role=None, buckets={"a": Role.CONTRIBUTOR}, name="net-ci"
    )
    listed = {p.name: p.role for p in services.principals.list(admin, org, project)}
    assert listed["net-ci"] is None
    services.principals.update(admin, org, project, who.client_id, disabled=True)
    services.principals.update(admin, org, project, who.client_id, role=Role.VIEWER, disabled=False)
    assert services.principals.get(admin, org, project, who.client_id).role is Role.VIEWER
    made = services.users.create(OPERATOR, org, project, email="ada@example.com", role=Role.VIEWER)
    services.access.grant(OPERATOR, org, project, "ada@example.com", Role.CONTRIBUTOR, "a")
    services.access.revoke(OPERATOR, org, project, "ada@example.com")
    users = {u.user.email: u.role for u in services.users.list_for_project(admin, org, project)}
    assert users["ada@example.com"] is None
    assert [(p.id, role) for p, role in services.users.projects(made.record.user)] == [
        (project, None)
    ]


def test_the_last_admin_principal_keeps_its_project_role(
    services: Services, tenant: TenantFixture
) -> None:
    org, project = tenant.organization_id, tenant.project_id
    admin = tenant.identities[Role.ADMIN].principal_id
    assert (
        code_of(lambda: services.access.revoke(OPERATOR, org, project, admin))
        is Code.FAILED_PRECONDITION
    )
    assert (
        code_of(lambda: services.access.grant(OPERATOR, org, project, admin, Role.VIEWER))
        is Code.FAILED_PRECONDITION
    )


def test_members_of_other_organizations_are_unknown(
    services: Services, tenant: TenantFixture, buckets: tuple[str, str]
) -> None:
    from tests.support.factories import make_tenant

    stranger = make_tenant(services).identities[Role.ADMIN]
    org, project = tenant.organization_id, tenant.project_id
    assert (
        code_of(
            lambda: services.access.grant(
                OPERATOR, org, project, stranger.client_id, Role.VIEWER, "a"
            )
        )
        is Code.NOT_FOUND
    )
    assert (
        code_of(
            lambda: services.access.members(
                tenant.identities[Role.ADMIN].principal_id, org, [stranger.principal_id]
            )
        )
        is Code.NOT_FOUND
    )

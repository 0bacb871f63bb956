"""Console users, passwords, sign-in and sessions at the service level (both backends)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from packyard.domain.enums import Role
from packyard.domain.models import Operator
from packyard.domain.rules import utcnow
from packyard.errors import ApiError, Code
from packyard.services import users as users_module
from packyard.services.container import Services
from packyard.services.throttle import FailureCounter
from packyard.services.users import NewPassword, session_key
from packyard.store.schema import users, web_sessions
from tests.support.factories import TenantFixture, make_tenant

OPERATOR = Operator()


@pytest.fixture
def person(services: Services, tenant: TenantFixture) -> NewPassword:
    return services.users.create(
        OPERATOR,
        tenant.organization_id,
        tenant.project_id,
        email=" Ana@Example.com ",
        role=Role.CONTRIBUTOR,
    )


def _code(err: pytest.ExceptionInfo[ApiError]) -> Code:
    return err.value.code


def test_passwords_are_generated_and_stored_as_argon2id(
    services: Services, person: NewPassword
) -> None:
    assert person.record.user.email == "ana@example.com"
    assert len(person.password) >= 20
    with services.store.read() as conn:
        stored = conn.execute(select(users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")
    assert person.password not in stored


def test_sign_in_gives_a_session_acting_with_the_role(
    services: Services, tenant: TenantFixture, person: NewPassword
) -> None:
    token, session = services.users.sign_in("ANA@example.com", person.password, address="a")
    assert services.users.session(token) == session
    caller = services.users.caller(session, tenant.project_id)
    assert caller.role is Role.CONTRIBUTOR
    assert caller.name == "ana@example.com"  # authors are shown by name
    with services.store.read() as conn:
        keys = conn.execute(select(web_sessions.c.id)).scalars().all()
    assert keys == [session_key(token)]  # the cookie's value itself is not stored
    other = make_tenant(services)
    with pytest.raises(ApiError) as err:
        services.users.caller(session, other.project_id)
    assert _code(err) is Code.NOT_FOUND


def test_failures_read_the_same_whoever_asks(services: Services, person: NewPassword) -> None:
    answers = []
    for email, password in (
        ("ana@example.com", "wrong password here"),
        ("nobody@example.com", "wrong password here"),
        ("ana@example.com", ""),
    ):
        with pytest.raises(ApiError) as err:
            services.users.sign_in(email, password, address=None)
        answers.append((err.value.code, err.value.message))
    assert len(set(answers)) == 1
    assert answers[0][0] is Code.UNAUTHENTICATED


def test_sign_in_is_throttled_without_checking_the_password(
    services: Services, person: NewPassword
) -> None:
    services.users.throttle.per_email = FailureCounter(limit=3, window=60)
    for _ in range(3):
        with pytest.raises(ApiError):
            services.users.sign_in("ana@example.com", "wrong password here", address=None)
    with pytest.raises(ApiError) as err:
        services.users.sign_in("ana@example.com", person.password, address=None)
    assert _code(err) is Code.RESOURCE_EXHAUSTED
    # the same for an email that has no account: the throttle tells nothing either
    for _ in range(3):
        with pytest.raises(ApiError):
            services.users.sign_in("ghost@example.com", "wrong password here", address=None)
    with pytest.raises(ApiError) as err:
        services.users.sign_in("ghost@example.com", "anything at all", address=None)
    assert _code(err) is Code.RESOURCE_EXHAUSTED


def test_sessions_end_when_idle_or_old(services: Services, person: NewPassword) -> None:
    token, _ = services.users.sign_in("ana@example.com", person.password, address=None)
    key = session_key(token)
    idle = utcnow() - users_module.SESSION_IDLE - timedelta(seconds=1)
    with services.store.write() as conn:
        conn.execute(update(web_sessions).where(web_sessions.c.id == key).values(last_seen_at=idle))
    assert services.users.session(token) is None
    token, _ = services.users.sign_in("ana@example.com", person.password, address=None)
    old = utcnow() - users_module.SESSION_MAX - timedelta(seconds=1)
    with services.store.write() as conn:
        conn.execute(
            update(web_sessions)
            .where(web_sessions.c.id == session_key(token))
            .values(created_at=old)
        )
    assert services.users.session(token) is None  # however recently it was used
    assert services.users.session("not-a-session") is None
    assert services.users.session("x" * 1000) is None


def test_disabling_or_resetting_ends_sessions(
    services: Services, tenant: TenantFixture, person: NewPassword
) -> None:
    org, project = tenant.organization_id, tenant.project_id
    token, _ = services.users.sign_in("ana@example.com", person.password, address=None)
    services.users.update(OPERATOR, org, project, "ana@example.com", disabled=True)
    assert services.users.session(token) is None
    with pytest.raises(ApiError):
        services.users.sign_in("ana@example.com", person.password, address=None)
    services.users.update(OPERATOR, org, project, "ana@example.com", disabled=False)
    token, _ = services.users.sign_in("ana@example.com", person.password, address=None)
    reset = services.users.reset_password(OPERATOR, org, project, "ana@example.com")
    assert services.users.session(token) is None
    with pytest.raises(ApiError):
        services.users.sign_in("ana@example.com", person.password, address=None)
    services.users.sign_in("ana@example.com", reset.password, address=None)


def test_changing_ones_password_keeps_only_this_session(
    services: Services, person: NewPassword
) -> None:
    first, _ = services.users.sign_in("ana@example.com", person.password, address=None)
    second, _ = services.users.sign_in("ana@example.com", person.password, address=None)
    with pytest.raises(ApiError) as err:
        services.users.change_password(first, "not my password", "a new long passphrase")
    assert _code(err) is Code.INVALID_ARGUMENT
    with pytest.raises(ApiError) as err:
        services.users.change_password(first, person.password, "short")
    assert _code(err) is Code.INVALID_ARGUMENT
    services.users.change_password(first, person.password, "a new long passphrase")
    assert services.users.session(first) is not None
    assert services.users.session(second) is None
    services.users.sign_in("ana@example.com", "a new long passphrase", address=None)


def test_only_admins_manage_users_and_not_their_own_access(
    services: Services, tenant: TenantFixture, person: NewPassword
) -> None:
    org, project = tenant.organization_id, tenant.project_id
    for role in (Role.VIEWER, Role.CONTRIBUTOR):
        with pytest.raises(ApiError) as err:
            services.users.list_for_project(tenant.caller(role), org, project)
        assert _code(err) is Code.PERMISSION_DENIED
    admin = services.users.create(OPERATOR, org, project, email="boss@example.com", role=Role.ADMIN)
    _, session = services.users.sign_in("boss@example.com", admin.password, address=None)
    caller = services.users.caller(session, project)
    with pytest.raises(ApiError) as err:
        services.users.update(caller, org, project, "boss@example.com", role=Role.VIEWER)
    assert _code(err) is Code.FAILED_PRECONDITION
    changed = services.users.update(caller, org, project, "ana@example.com", role=Role.VIEWER)
    assert changed.role is Role.VIEWER


def test_bad_input_creates_nothing(
    services: Services, tenant: TenantFixture, person: NewPassword
) -> None:
    org, project = tenant.organization_id, tenant.project_id
    for email in ("", "no-at-sign", "@example.com", "ana@", "a b@example.com", "é@example.com"):
        with pytest.raises(ApiError) as err:
            services.users.create(OPERATOR, org, project, email=email, role=Role.VIEWER)
        assert _code(err) is Code.INVALID_ARGUMENT
    with pytest.raises(ApiError) as err:
        services.users.create(OPERATOR, org, project, email="ana@example.com", role=Role.ADMIN)
    assert _code(err) is Code.ALREADY_EXISTS
    assert [r.user.email for r in services.users.list_for_project(OPERATOR, org, project)] == [
        "ana@example.com"
    ]


def test_one_person_on_two_projects(
    services: Services, tenant: TenantFixture, person: NewPassword
) -> None:
    other = make_tenant(services)
    again = services.users.create(
        OPERATOR,
        other.organization_id,
        other.project_id,
        email="ana@example.com",
        role=Role.VIEWER,
    )
    assert again.password == ""  # the existing password stays; nothing new to show
    _, session = services.users.sign_in("ana@example.com", person.password, address=None)
    roles = {p.id: r for p, r in services.users.projects(session.user)}
    assert roles == {tenant.project_id: Role.CONTRIBUTOR, other.project_id: Role.VIEWER}


def test_the_first_admin_is_made_once(services: Services, tenant: TenantFixture) -> None:
    first = services.users.create_first_admin(tenant.organization_id, tenant.project_id)
    assert first is not None
    assert first.record.role is Role.ADMIN
    assert services.users.create_first_admin(tenant.organization_id, tenant.project_id) is None


def test_user_writes_leave_cached_api_reads_valid(
    services: Services, tenant: TenantFixture, person: NewPassword
) -> None:
    """Signing in is not a registry change: it must not empty the API's read cache."""
    before = services.generations.validity(tenant.project_id).generation
    services.users.sign_in("ana@example.com", person.password, address=None)
    assert services.generations.validity(tenant.project_id).generation == before


def test_admins_leave_accounts_shared_with_other_projects_to_the_operator(
    services: Services, tenant: TenantFixture, person: NewPassword
) -> None:
    other = make_tenant(services)
    services.users.create(
        OPERATOR,
        other.organization_id,
        other.project_id,
        email="ana@example.com",
        role=Role.VIEWER,
    )
    org, project = tenant.organization_id, tenant.project_id
    admin = services.users.create(OPERATOR, org, project, email="boss@example.com", role=Role.ADMIN)
    _, session = services.users.sign_in("boss@example.com", admin.password, address=None)
    caller = services.users.caller(session, project)
    for change in (
        lambda: services.users.update(caller, org, project, "ana@example.com", disabled=True),
        lambda: services.users.reset_password(caller, org, project, "ana@example.com"),
    ):
        with pytest.raises(ApiError) as err:
            change()
        assert _code(err) is Code.PERMISSION_DENIED
    # the role on this project is this project's business
    services.users.update(caller, org, project, "ana@example.com", role=Role.VIEWER)
    services.users.sign_in("ana@example.com", person.password, address=None)

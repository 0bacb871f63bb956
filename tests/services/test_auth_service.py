"""Principals, secrets, tokens and authorization at the service level (both backends)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from packyard.domain.enums import Role
from packyard.errors import ApiError, Code
from packyard.services.auth import verify_secret
from packyard.services.container import Services
from packyard.store.engine import Store
from packyard.store.schema import principals, settings
from tests.support.factories import TenantFixture, make_tenant


def test_secrets_are_stored_only_as_slow_hashes(services: Services, tenant: TenantFixture) -> None:
    with services.store.read() as conn:
        rows = conn.execute(select(principals.c.client_id, principals.c.secret_hash)).all()
    stored = {r.client_id: r.secret_hash for r in rows}
    for ident in tenant.identities.values():
        encoded = stored[ident.client_id]
        assert encoded.startswith("scrypt$16384$8$1$")
        assert ident.client_secret not in encoded
        assert verify_secret(ident.client_secret, encoded)
        assert not verify_secret(ident.client_secret + "x", encoded)
    # every secret has its own salt
    assert len({h.split("$")[4] for h in stored.values()}) == len(stored)


def test_tokens_survive_a_restart(services: Services, tenant: TenantFixture, db_url: str) -> None:
    ident = tenant.identities[Role.CONTRIBUTOR]
    principal = services.auth.authenticate_client(ident.client_id, ident.client_secret)
    assert principal is not None
    token = services.auth.issue_token(principal).access_token
    services.store.dispose()

    restarted_store = Store(db_url)
    try:
        restarted = Services.create(restarted_store)
        caller = restarted.auth.authorize(token, tenant.organization_id, tenant.project_id)
        assert caller.role is Role.CONTRIBUTOR
        assert caller.principal_id == ident.principal_id
        # the fixture's tokens, issued before the "restart", work too
        restarted.auth.authorize(
            tenant.identities[Role.ADMIN].token, tenant.organization_id, tenant.project_id
        )
    finally:
        restarted_store.dispose()


def test_signing_key_is_created_once_under_concurrency(store: Store, db_url: str) -> None:
    stores = [Store(db_url) for _ in range(4)]  # ``store`` migrated the database
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            keys = list(
                pool.map(lambda s: Services.create(s).auth.signing_key(), [*stores, *stores])
            )
        assert len(set(keys)) == 1
        with stores[0].read() as conn:
            assert len(conn.execute(select(settings)).all()) >= 1
    finally:
        for s in stores:
            s.dispose()


def test_authorize_roles_and_tenancy(services: Services, tenant: TenantFixture) -> None:
    other = make_tenant(services)
    for role, ident in tenant.identities.items():
        caller = services.auth.authorize(ident.token, tenant.organization_id, tenant.project_id)
        assert caller.role is role
        assert caller.can_write is (role is not Role.VIEWER)
        with pytest.raises(ApiError) as err:
            services.auth.authorize(ident.token, other.organization_id, other.project_id)
        assert err.value.code is Code.NOT_FOUND
        with pytest.raises(ApiError) as err:
            services.auth.authorize(ident.token, other.organization_id, tenant.project_id)
        assert err.value.code is Code.NOT_FOUND


def test_principal_must_be_created_inside_its_organization(
    services: Services, tenant: TenantFixture
) -> None:
    other = make_tenant(services)
    with pytest.raises(ApiError) as err:
        services.auth.create_principal(
            name="cross",
            role=Role.ADMIN,
            organization_id=tenant.organization_id,
            project_id=other.project_id,
        )
    assert err.value.code is Code.NOT_FOUND
    with services.store.read() as conn:
        names = conn.execute(select(principals.c.name)).scalars().all()
    assert "cross" not in names


def test_database_errors_do_not_echo_parameters(services: Services) -> None:
    """A failed statement's message (which may reach a log) never carries bound values."""
    services.auth.signing_key()
    with pytest.raises(IntegrityError) as err, services.store.write() as conn:
        conn.execute(settings.insert().values(key="token_signing_key", value="s3cret-value"))
    assert "s3cret-value" not in str(err.value)

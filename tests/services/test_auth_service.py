"""Principals, secrets, tokens and authorization at the service level (both backends)."""

from __future__ import annotations

import base64
import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from packyard.domain.enums import Role
from packyard.domain.rules import utcnow
from packyard.errors import ApiError, Code
from packyard.services.auth import verify_secret
from packyard.services.container import Services
from packyard.store.engine import Store
from packyard.store.schema import principals, signing_keys
from tests.support.factories import TenantFixture, make_tenant


def test_secrets_are_stored_only_as_hashes(services: Services, tenant: TenantFixture) -> None:
    with services.store.read() as conn:
        rows = conn.execute(select(principals.c.client_id, principals.c.secret_hash)).all()
    stored = {r.client_id: r.secret_hash for r in rows}
    for ident in tenant.identities.values():
        encoded = stored[ident.client_id]
        scheme, digest = encoded.split("$")
        assert scheme == "sha256"
        assert len(digest) == 64
        assert ident.client_secret not in encoded
        assert len(ident.client_secret) >= 64  # 48 random bytes: no hash speed makes it guessable
        assert verify_secret(ident.client_secret, encoded)
        assert not verify_secret(ident.client_secret + "x", encoded)


def _legacy_scrypt(secret: str) -> str:
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    b64 = base64.b64encode
    return f"scrypt$16384$8$1${b64(salt).decode()}${b64(digest).decode()}"


def test_legacy_scrypt_hashes_verify_and_are_rehashed_on_success(
    services: Services, tenant: TenantFixture
) -> None:
    ident = tenant.identities[Role.CONTRIBUTOR]
    with services.store.write() as conn:
        conn.execute(
            update(principals)
            .where(principals.c.id == ident.principal_id)
            .values(secret_hash=_legacy_scrypt(ident.client_secret))
        )
    assert services.auth.authenticate_client(ident.client_id, "wrong") is None
    assert services.auth.authenticate_client(ident.client_id, ident.client_secret) is not None
    with services.store.read() as conn:
        stored = conn.execute(
            select(principals.c.secret_hash).where(principals.c.id == ident.principal_id)
        ).scalar_one()
    assert stored.startswith("sha256$")
    assert services.auth.authenticate_client(ident.client_id, ident.client_secret) is not None
    # the rehash did not revoke the tokens issued so far
    services.auth.authorize(ident.token, tenant.organization_id, tenant.project_id)


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
            assert len(conn.execute(select(signing_keys)).all()) == 1
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
        conn.execute(
            signing_keys.insert().values(id="initial", secret="s3cret-value", created_at=utcnow())
        )
    assert "s3cret-value" not in str(err.value)

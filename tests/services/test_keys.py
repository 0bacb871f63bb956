"""Token signing keys: rotation, grace periods and every process agreeing (both backends)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from datetime import timedelta

import jwt
import pytest

from packyard.domain.enums import Role
from packyard.errors import ApiError, Code
from packyard.services import keys
from packyard.services.auth import TOKEN_AUDIENCE
from packyard.services.container import Services
from packyard.services.keys import KeyRing
from packyard.store.engine import Store
from tests.support.factories import TenantFixture


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def other_server(db_url: str, store: Store) -> Iterator[tuple[Services, Clock]]:
    """Another process on the same database, with a clock the test moves."""
    other_store = Store(db_url)
    clock = Clock()
    other = Services.create(other_store)
    other.auth.keys = KeyRing(other_store, clock=clock)
    yield other, clock
    other_store.dispose()


def _authorize(services: Services, tenant: TenantFixture, token: str) -> None:
    services.auth.authorize(token, tenant.organization_id, tenant.project_id)


def _refused(services: Services, tenant: TenantFixture, token: str) -> None:
    with pytest.raises(ApiError) as err:
        _authorize(services, tenant, token)
    assert err.value.code is Code.UNAUTHENTICATED


def _new_token(services: Services, tenant: TenantFixture) -> str:
    ident = tenant.identities[Role.ADMIN]
    principal = services.auth.authenticate_client(ident.client_id, ident.client_secret)
    assert principal is not None
    return services.auth.issue_token(principal).access_token


def test_tokens_name_their_key(services: Services, tenant: TenantFixture) -> None:
    token = _new_token(services, tenant)
    assert jwt.get_unverified_header(token)["kid"] == services.auth.keys.current().id


def test_rotation_ends_old_tokens_at_once_everywhere(
    services: Services, tenant: TenantFixture, other_server: tuple[Services, Clock]
) -> None:
    other, clock = other_server
    old = tenant.identities[Role.ADMIN].token
    _authorize(other, tenant, old)  # verified and remembered by the other process
    rotation = services.auth.keys.rotate(timedelta(0))
    assert rotation.retired == 1
    _refused(services, tenant, old)  # the rotating process knows at once
    clock.now += keys.REFRESH_S
    _refused(other, tenant, old)  # the other one after its refresh, remembered or not
    fresh = _new_token(services, tenant)
    assert jwt.get_unverified_header(fresh)["kid"] == rotation.key.id
    _authorize(other, tenant, fresh)  # an unknown key id makes it look at once


def test_a_grace_period_keeps_old_tokens_until_it_ends(
    services: Services, tenant: TenantFixture
) -> None:
    old = tenant.identities[Role.ADMIN].token
    rotation = services.auth.keys.rotate(timedelta(hours=1))
    _authorize(services, tenant, old)
    assert services.auth.keys.current().id == rotation.key.id
    assert len(services.auth.keys.verifying_keys()) == 2
    services.auth.keys.rotate(timedelta(0))
    _refused(services, tenant, old)  # a later rotation without grace ends the grace too


def test_tokens_without_a_key_id_are_checked_against_the_current_key(
    services: Services, tenant: TenantFixture
) -> None:
    """Tokens issued before key ids existed carry no ``kid``."""
    ident = tenant.identities[Role.ADMIN]
    claims = {"sub": ident.principal_id, "aud": TOKEN_AUDIENCE, "exp": 4_000_000_000}
    legacy = jwt.encode(claims, services.auth.signing_key(), algorithm="HS256")
    _authorize(services, tenant, legacy)
    services.auth.keys.rotate(timedelta(0))
    _refused(services, tenant, legacy)


def test_forged_key_ids_are_refused(services: Services, tenant: TenantFixture) -> None:
    ident = tenant.identities[Role.ADMIN]
    claims = {"sub": ident.principal_id, "aud": TOKEN_AUDIENCE, "exp": 4_000_000_000}
    key = services.auth.signing_key()
    for kid in ("unknown", "", "../../etc/passwd", "x" * 10_000):
        token = jwt.encode(claims, key, algorithm="HS256", headers={"kid": kid})
        _refused(services, tenant, token)
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT","kid":7}').rstrip(b"=")
    body = jwt.encode(claims, key, algorithm="HS256").split(".")[1].encode()
    signature = hmac.new(key, header + b"." + body, hashlib.sha256).digest()
    non_string = b".".join([header, body, base64.urlsafe_b64encode(signature).rstrip(b"=")])
    _refused(services, tenant, non_string.decode())


def test_a_negative_grace_is_refused(services: Services) -> None:
    with pytest.raises(ApiError) as err:
        services.auth.keys.rotate(timedelta(seconds=-1))
    assert err.value.code is Code.INVALID_ARGUMENT


def test_sbom_links_follow_the_current_key(services: Services) -> None:
    before = services.auth.signing_key()
    services.auth.keys.rotate(timedelta(0))
    assert services.auth.signing_key() != before

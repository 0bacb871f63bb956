"""Token signing keys: rotation, grace periods and every process agreeing (both backends)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import timedelta

import jwt
import pytest
from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from packyard.domain.enums import Role
from packyard.errors import ApiError, Code
from packyard.services import keys
from packyard.services.auth import TOKEN_AUDIENCE
from packyard.services.container import Services
from packyard.services.keys import KeyRing
from packyard.store.engine import Store
from tests.support.clock import ManualClock
from tests.support.factories import TenantFixture


@pytest.fixture
def other_server(db_url: str, store: Store) -> Iterator[tuple[Services, ManualClock]]:
    """Another process on the same database, with a clock the test moves."""
    other_store, keys_store = Store(db_url), Store(db_url)  # the keys' reads counted apart
    clock = ManualClock()
    other = Services.create(other_store)
    other.auth.keys = KeyRing(keys_store, clock=clock)
    yield other, clock
    other_store.dispose()
    keys_store.dispose()


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
    services: Services, tenant: TenantFixture, other_server: tuple[Services, ManualClock]
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


class KeyReads:
    """The key ring's database reads, by whether they ran on the calling (test) thread;
    ``failing`` makes them fail as an unreachable database would."""

    def __init__(self, ring: KeyRing, monkeypatch: pytest.MonkeyPatch) -> None:
        self.caller = threading.get_ident()
        self.on_caller = 0
        self.elsewhere = 0
        self.failing = False
        real = ring.store.read

        def read() -> AbstractContextManager[Connection]:
            if threading.get_ident() == self.caller:
                self.on_caller += 1
            else:
                self.elsewhere += 1
            if self.failing:
                raise OperationalError("SELECT", {}, Exception("connection refused"))
            return real()

        monkeypatch.setattr(ring.store, "read", read)


def _eventually(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_with_a_refresher_tokens_are_verified_without_reading_the_keys(
    tenant: TenantFixture,
    other_server: tuple[Services, ManualClock],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other, clock = other_server
    ring = other.auth.keys
    fresh = _new_token(other, tenant)
    reads = KeyReads(ring, monkeypatch)
    claims = {"sub": "p", "aud": TOKEN_AUDIENCE, "exp": 4_000_000_000}
    forged = jwt.encode(claims, b"k" * 32, algorithm="HS256", headers={"kid": "x"})
    with ring.refreshing(interval=3600):
        assert ring.wait_first_pass(10)
        clock.now += keys.STALE_LIMIT_S - 1  # past REFRESH_S: due, but the refresher's to do
        _authorize(other, tenant, tenant.identities[Role.ADMIN].token)
        _authorize(other, tenant, fresh)
        assert reads.on_caller == 0
        # an unknown key id is still looked up at once (a key made by another server)
        _refused(other, tenant, forged)
        assert (reads.on_caller, reads.elsewhere) == (1, 1)
    clock.now += keys.REFRESH_S
    _authorize(other, tenant, tenant.identities[Role.ADMIN].token)
    assert reads.on_caller == 2  # without a refresher, the caller reads them when due


def test_a_refresher_sees_a_rotation_elsewhere_within_its_interval(
    services: Services, tenant: TenantFixture, other_server: tuple[Services, ManualClock]
) -> None:
    other, _ = other_server
    old = tenant.identities[Role.ADMIN].token
    with other.auth.keys.refreshing(interval=0.05):
        assert other.auth.keys.wait_first_pass(10)
        _authorize(other, tenant, old)
        services.auth.keys.rotate(timedelta(0))
        assert _eventually(lambda: not other.auth.keys.still_valid(_key_id(old)))
        _refused(other, tenant, old)


def test_while_the_keys_cannot_be_read_tokens_are_refused_as_unavailable_for_a_while(
    tenant: TenantFixture,
    other_server: tuple[Services, ManualClock],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    other, clock = other_server
    ring = other.auth.keys
    reads = KeyReads(ring, monkeypatch)
    token = tenant.identities[Role.ADMIN].token
    with caplog.at_level(logging.WARNING, logger=keys.__name__), ring.refreshing(interval=0.02):
        assert ring.wait_first_pass(10)
        reads.failing = True
        tried = reads.elsewhere
        assert _eventually(lambda: reads.elsewhere > tried + 2)
        clock.now += keys.STALE_LIMIT_S - 1
        _authorize(other, tenant, token)  # the keys read last still serve for a while
        clock.now += 1
        with pytest.raises(ApiError) as err:
            _authorize(other, tenant, token)
        assert err.value.code is Code.UNAVAILABLE
        assert reads.on_caller == 0  # refused at once, without a read that would wait
        reads.failing = False
        assert _eventually(lambda: _verifies(other, token))
    assert [r.getMessage() for r in caplog.records if r.name == keys.__name__] == [
        "Signing keys: the database is unavailable; retrying.",
        "Signing keys: read again; the database is back.",
    ]


def test_a_refresher_that_never_read_the_keys_refuses_tokens_as_unavailable(
    tenant: TenantFixture,
    other_server: tuple[Services, ManualClock],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other, _ = other_server
    ring = other.auth.keys
    reads = KeyReads(ring, monkeypatch)
    reads.failing = True
    with ring.refreshing(interval=3600):
        assert ring.wait_first_pass(10)
        with pytest.raises(ApiError) as err:
            other.auth.verify_token(tenant.identities[Role.ADMIN].token)
        assert err.value.code is Code.UNAVAILABLE
    assert reads.on_caller == 0


def test_unknown_key_ids_read_the_keys_at_most_once_a_second_even_when_reads_fail(
    tenant: TenantFixture,
    other_server: tuple[Services, ManualClock],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other, clock = other_server
    ident = tenant.identities[Role.ADMIN]
    _authorize(other, tenant, ident.token)
    reads = KeyReads(other.auth.keys, monkeypatch)
    reads.failing = True
    claims = {"sub": ident.principal_id, "aud": TOKEN_AUDIENCE, "exp": 4_000_000_000}
    clock.now += keys.UNKNOWN_KEY_REFRESH_S
    for kid in ("a", "b", "c"):
        token = jwt.encode(claims, b"k" * 32, algorithm="HS256", headers={"kid": kid})
        with pytest.raises(ApiError):
            other.auth.verify_token(token)
    assert reads.on_caller == 1


def _key_id(token: str) -> str:
    kid = jwt.get_unverified_header(token)["kid"]
    assert isinstance(kid, str)
    return kid


def _verifies(services: Services, token: str) -> bool:
    try:
        services.auth.verify_token(token)
    except ApiError:
        return False
    return True


def test_the_cached_path_leaves_keys_not_read_yet_to_the_lookup(
    services: Services,
    tenant: TenantFixture,
    other_server: tuple[Services, ManualClock],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``authorize_cached`` runs on the event loop: it never reads the keys, and answers
    ``None`` where it would, so the request's lookup (on a read thread) does."""
    other, clock = other_server
    auth = other.auth
    where = (tenant.organization_id, tenant.project_id)
    old = tenant.identities[Role.ADMIN].token
    _authorize(other, tenant, old)  # the keys read and the role cached
    services.auth.keys.rotate(timedelta(hours=1))
    fresh = _new_token(services, tenant)  # signed with a key the other process has not read
    reads = KeyReads(auth.keys, monkeypatch)
    clock.now += keys.UNKNOWN_KEY_REFRESH_S
    assert auth.authorize_cached(fresh, *where) is None
    assert auth.authorize_cached(old, *where) is not None
    assert reads.on_caller == 0
    _authorize(other, tenant, fresh)  # the lookup reads the new key
    assert reads.on_caller == 1
    assert auth.authorize_cached(fresh, *where) is not None
    clock.now += keys.REFRESH_S  # due, and no refresher: left to the lookup too
    assert auth.authorize_cached(old, *where) is None
    assert reads.on_caller == 1

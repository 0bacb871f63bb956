"""POST /oauth2/token: client credentials as the HCP Go SDK sends them, errors, throttling."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import httpx
import pytest

from packyard.domain.enums import Role
from packyard.domain.models import Principal
from packyard.domain.rules import utcnow
from packyard.ids import new_id
from packyard.services.auth import hash_secret
from packyard.services.container import Services
from packyard.services.throttle import LoginThrottle
from packyard.store.tenancy import TenancyRepo
from tests.support.clock import ManualClock
from tests.support.factories import TenantFixture, assert_status
from tests.support.wire import go_basic, ok, token_form

SPECIAL_ID = "team/ci+bot:1 é"
SPECIAL_SECRET = "p@ss w:rd/+%25&=?ü#"


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


def _add_principal(services: Services, tenant: TenantFixture, client_id: str, secret: str) -> None:
    principal = Principal(
        id=new_id(), client_id=client_id, name="special", organization_id=tenant.organization_id
    )
    with services.store.write() as conn:
        repo = TenancyRepo(conn)
        repo.add_principal(principal, hash_secret(secret), utcnow())
        repo.bind_role(principal.id, tenant.project_id, Role.CONTRIBUTOR)


def _use(http: httpx.Client, tenant: TenantFixture, token: str) -> httpx.Response:
    path = (
        f"/packer/2023-01-01/organizations/{tenant.organization_id}"
        f"/projects/{tenant.project_id}/buckets"
    )
    return http.get(path, headers={"Authorization": f"Bearer {token}"})


def _check_token_body(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert isinstance(body["access_token"], str) and body["access_token"]
    return str(body["access_token"])


def test_basic_auth_url_escaped_special_characters(
    http: httpx.Client, services: Services, tenant: TenantFixture
) -> None:
    _add_principal(services, tenant, SPECIAL_ID, SPECIAL_SECRET)
    response = http.post(
        "/oauth2/token",
        data=token_form(),
        headers={"Authorization": go_basic(SPECIAL_ID, SPECIAL_SECRET)},
    )
    token = _check_token_body(response)
    ok(_use(http, tenant, token), "PackerService_ListBuckets")


def test_form_fields(http: httpx.Client, services: Services, tenant: TenantFixture) -> None:
    _add_principal(services, tenant, SPECIAL_ID, SPECIAL_SECRET)
    response = http.post(
        "/oauth2/token",
        data=token_form(client_id=SPECIAL_ID, client_secret=SPECIAL_SECRET),
    )
    ok(_use(http, tenant, _check_token_body(response)), "PackerService_ListBuckets")


def test_plain_basic_and_missing_audience(http: httpx.Client, tenant: TenantFixture) -> None:
    ident = tenant.identities[Role.VIEWER]
    raw = base64.b64encode(f"{ident.client_id}:{ident.client_secret}".encode()).decode()
    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {raw}"},
    )
    ok(_use(http, tenant, _check_token_body(response)), "PackerService_ListBuckets")


def test_bad_secret_and_unknown_client_are_identical_401(
    http: httpx.Client, tenant: TenantFixture
) -> None:
    ident = tenant.identities[Role.ADMIN]
    answers = [
        http.post(
            "/oauth2/token",
            data=token_form(),
            headers={"Authorization": go_basic(client_id, secret)},
        )
        for client_id, secret in (
            (ident.client_id, ident.client_secret + "x"),
            ("packyard-unknown", ident.client_secret),
        )
    ]
    answers.append(
        http.post(
            "/oauth2/token",
            data=token_form(client_id=ident.client_id, client_secret="wrong"),
        )
    )
    for response in answers:
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Basic")
        assert response.json() == {
            "error": "invalid_client",
            "error_description": "Client authentication failed.",
        }


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": "authorization_code", "code": "x"}, 400, "unsupported_grant_type"),
        ({}, 400, "unsupported_grant_type"),
        (
            {"grant_type": "client_credentials", "audience": "https://evil.example"},
            400,
            "invalid_request",
        ),
        ({"grant_type": "client_credentials"}, 401, "invalid_client"),
    ],
)
def test_request_errors(http: httpx.Client, data: dict[str, str], status: int, error: str) -> None:
    response = http.post("/oauth2/token", data=data)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == error


def test_json_body_is_not_a_token_request(http: httpx.Client, tenant: TenantFixture) -> None:
    ident = tenant.identities[Role.ADMIN]
    response = http.post(
        "/oauth2/token",
        json={
            "grant_type": "client_credentials",
            "client_id": ident.client_id,
            "client_secret": ident.client_secret,
        },
    )
    assert response.status_code == 400


def test_malformed_basic_header_falls_back_to_form(
    http: httpx.Client, tenant: TenantFixture
) -> None:
    ident = tenant.identities[Role.ADMIN]
    response = http.post(
        "/oauth2/token",
        data=token_form(client_id=ident.client_id, client_secret=ident.client_secret),
        headers={"Authorization": "Basic !!!not-base64!!!"},
    )
    _check_token_body(response)


def test_throttling_per_client_id(
    http: httpx.Client, services: Services, tenant: TenantFixture
) -> None:
    clock = ManualClock()
    services.auth.throttle = LoginThrottle.with_limits(
        client_failures=3, address_failures=100, window=60, clock=clock
    )
    ident = tenant.identities[Role.ADMIN]

    def attempt(secret: str, client_id: str = ident.client_id) -> httpx.Response:
        return http.post(
            "/oauth2/token",
            data=token_form(),
            headers={"Authorization": go_basic(client_id, secret)},
        )

    for _ in range(3):
        assert attempt("guess").status_code == 401
        clock.now += 1
    locked = attempt("guess")
    assert locked.status_code == 429
    assert locked.headers["content-type"].startswith("application/json")
    assert locked.json()["error"] == "slow_down"
    assert int(locked.headers["retry-after"]) == 57  # failure at t=0 leaves the window at t=60
    # the lockout never applies to the right secret: knowing a client id is not enough to
    # stop its owner's pipelines
    _check_token_body(attempt(ident.client_secret))
    # success cleared the counter: three more failures are needed to lock again
    assert attempt("guess").status_code == 401
    assert attempt("guess").status_code == 401
    assert attempt("guess").status_code == 401
    assert attempt("guess").status_code == 429
    # other clients are not affected
    other = tenant.identities[Role.VIEWER]
    _check_token_body(attempt(other.client_secret, other.client_id))
    clock.now += 60
    assert attempt("guess").status_code == 401


def test_throttling_per_address_spares_every_right_secret(
    http: httpx.Client, services: Services, tenant: TenantFixture
) -> None:
    """Behind a TLS proxy every pipeline shares one address: failures from it must not
    deny the pipelines that know their secrets."""
    clock = ManualClock()
    services.auth.throttle = LoginThrottle.with_limits(
        client_failures=100, address_failures=4, window=30, clock=clock
    )
    for i in range(4):
        response = http.post(
            "/oauth2/token",
            data=token_form(),
            headers={"Authorization": go_basic(f"packyard-guess-{i}", "guess")},
        )
        assert response.status_code == 401
    wrong = http.post(
        "/oauth2/token", data=token_form(), headers={"Authorization": go_basic("x", "guess")}
    )
    assert wrong.status_code == 429
    assert int(wrong.headers["retry-after"]) == 30
    for ident in tenant.identities.values():
        good = {"Authorization": go_basic(ident.client_id, ident.client_secret)}
        _check_token_body(http.post("/oauth2/token", data=token_form(), headers=good))
    clock.now += 30
    wrong = http.post(
        "/oauth2/token", data=token_form(), headers={"Authorization": go_basic("x", "guess")}
    )
    assert wrong.status_code == 401


def test_failures_past_the_limit_are_not_logged(
    http: httpx.Client, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    services.auth.throttle = LoginThrottle.with_limits(
        client_failures=3, address_failures=100, window=60, clock=ManualClock()
    )
    caplog.set_level(logging.WARNING, logger="packyard.auth")
    for _ in range(20):
        http.post(
            "/oauth2/token",
            data=token_form(),
            headers={"Authorization": go_basic("packyard-0000", "guess")},
        )
    failures = [r for r in caplog.records if r.name == "packyard.auth"]
    assert len(failures) == 3


def test_a_secret_typed_as_client_id_is_not_logged(
    http: httpx.Client, tenant: TenantFixture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ident = tenant.identities[Role.ADMIN]
    for client_id, secret in (
        (ident.client_secret, ident.client_secret),
        (ident.client_secret, "whatever"),
    ):
        response = http.post(
            "/oauth2/token", data=token_form(client_id=client_id, client_secret=secret)
        )
        assert response.status_code == 401
    # a known client id is logged as it is: that is what an operator looks for
    http.post("/oauth2/token", data=token_form(client_id=ident.client_id, client_secret="nope"))
    logged = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert ident.client_secret not in logged
    assert ident.client_secret[:16] not in logged
    assert ident.client_id in logged


def test_secrets_and_tokens_are_never_logged(
    http: httpx.Client, tenant: TenantFixture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ident = tenant.identities[Role.ADMIN]
    http.post(
        "/oauth2/token",
        data=token_form(),
        headers={"Authorization": go_basic(ident.client_id, ident.client_secret + "typo")},
    )
    http.post(
        "/oauth2/token",
        data=token_form(client_id=ident.client_id, client_secret="another-wrong-secret"),
    )
    token = _check_token_body(
        http.post(
            "/oauth2/token",
            data=token_form(),
            headers={"Authorization": go_basic(ident.client_id, ident.client_secret)},
        )
    )
    _use(http, tenant, token)
    _use(http, tenant, token + "tampered")
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    assert "client authentication failed" in logged  # failures are logged ...
    for secret in (ident.client_secret, "another-wrong-secret", token, token[-20:]):
        assert secret not in logged  # ... without the secret or any token


def test_token_for_disabled_principal_is_refused(
    http: httpx.Client, services: Services, tenant: TenantFixture
) -> None:
    from sqlalchemy import update

    from packyard.store.schema import principals

    ident = tenant.identities[Role.ADMIN]
    with services.store.write() as conn:
        conn.execute(
            update(principals).where(principals.c.id == ident.principal_id).values(disabled=True)
        )
    assert_status(_use(http, tenant, ident.token), 401, 16)
    response = http.post(
        "/oauth2/token",
        data=token_form(),
        headers={"Authorization": go_basic(ident.client_id, ident.client_secret)},
    )
    assert response.status_code == 401

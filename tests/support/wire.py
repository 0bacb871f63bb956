"""Wire-level assertions shared by the issue-2 suites: 200 bodies checked against the swagger,
tokens crafted for negative auth tests, Go-style HTTP Basic credentials."""

from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import quote_plus

import httpx
import jwt

from tests.support import swagger

API_AUDIENCE = "https://api.hashicorp.cloud"


def ok(response: httpx.Response, operation: str, *, spec: Any = None) -> dict[str, Any]:
    """Assert exactly HTTP 200 with a JSON body valid for ``operation``; return the body."""
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    if spec is None:
        swagger.validate(operation, body)
    else:
        swagger.validate(operation, body, spec=spec)
    return body


def go_basic(client_id: str, client_secret: str) -> str:
    """The Authorization header golang.org/x/oauth2 sends: URL-query-escape, then base64."""
    raw = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def token_form(**extra: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "audience": API_AUDIENCE, **extra}


def fetch_token(http: httpx.Client, client_id: str, client_secret: str) -> str:
    """Client-credentials grant exactly as the HCP Go SDK sends it (Basic first)."""
    response = http.post(
        "/oauth2/token",
        data=token_form(),
        headers={"Authorization": go_basic(client_id, client_secret)},
    )
    assert response.status_code == 200, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}, body
    assert body["token_type"] == "Bearer"
    return str(body["access_token"])


def craft_token(
    key: bytes | str,
    *,
    sub: str,
    exp_offset: int = 3600,
    aud: str = "packyard",
    algorithm: str = "HS256",
) -> str:
    """A token with chosen claims, signed with ``key`` (the server's or a forger's)."""
    now = int(time.time())
    claims = {"sub": sub, "aud": aud, "iat": now, "exp": now + exp_offset, "jti": "test"}
    return jwt.encode(claims, key, algorithm=algorithm)


def unsigned_token(*, sub: str) -> str:
    """An ``alg: none`` token: header and claims, empty signature."""

    def part(obj: dict[str, Any]) -> str:
        import json

        raw = json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    now = int(time.time())
    header = {"alg": "none", "typ": "JWT"}
    claims = {"sub": sub, "aud": "packyard", "iat": now, "exp": now + 3600}
    return f"{part(header)}.{part(claims)}."

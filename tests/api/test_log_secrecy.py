"""Secrets and tokens never reach the server's logs, even on failures logged at debug level."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import httpx
import jwt
import pytest

from packyard.domain.enums import Role
from packyard.services.auth import TOKEN_AUDIENCE
from packyard.services.container import Services
from tests.support.factories import Api
from tests.support.serve_process import plain_http_server

WRONG_SECRET = "wrong-secret-0123456789abcdefghijklmnop"


def _log_text(caplog: pytest.LogCaptureFixture) -> str:
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
        if record.exc_text:
            parts.append(record.exc_text)
    return "\n".join(parts)


def _traffic(base_url: str, client_id: str, secret: str, prefix: str) -> list[str]:
    """Token exchanges that succeed and fail, and API calls with good and bad tokens.

    Returns every token that was sent or issued.
    """
    tokens: list[str] = []
    with httpx.Client(base_url=base_url, timeout=30) as http:
        form = {"grant_type": "client_credentials"}
        good = http.post("/oauth2/token", data=form, auth=(client_id, secret))
        assert good.status_code == 200, good.text
        tokens.append(good.json()["access_token"])
        by_form = {**form, "client_id": client_id, "client_secret": secret}
        good = http.post("/oauth2/token", data=by_form)
        assert good.status_code == 200, good.text
        tokens.append(good.json()["access_token"])
        assert (
            http.post("/oauth2/token", data=form, auth=(client_id, WRONG_SECRET)).status_code == 401
        )
        bad_form = {**form, "client_id": client_id, "client_secret": WRONG_SECRET}
        assert http.post("/oauth2/token", data=bad_form).status_code == 401
        unknown = {**form, "client_id": "nobody", "client_secret": WRONG_SECRET}
        assert http.post("/oauth2/token", data=unknown).status_code == 401

        ok = http.get(prefix + "/buckets", headers={"Authorization": f"Bearer {tokens[0]}"})
        assert ok.status_code == 200
        now = int(time.time())
        forged = jwt.encode(
            {"sub": "x", "aud": TOKEN_AUDIENCE, "exp": now + 60}, "f" * 32, algorithm="HS256"
        )
        tampered = tokens[0][:-4] + ("AAAA" if not tokens[0].endswith("AAAA") else "BBBB")
        for bad in (forged, tampered, "not-a-jwt-" + "z" * 40):
            tokens.append(bad)
            got = http.get(prefix + "/buckets", headers={"Authorization": f"Bearer {bad}"})
            assert got.status_code == 401
    return tokens


def test_no_secret_or_token_in_logs(
    api: Api, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    identity = api.tenant.identities[Role.ADMIN]
    tokens = _traffic(api.base_url, identity.client_id, identity.client_secret, api.prefix)
    text = _log_text(caplog)
    assert "client authentication failed" in text  # the capture works: failures are logged
    secrets = [identity.client_secret, WRONG_SECRET, services.auth.signing_key().hex(), *tokens]
    for secret in secrets:
        assert secret not in text
    for token in tokens:  # not even a recognisable piece of one (a JWT's signature part)
        assert token.rsplit(".", 1)[-1][:16] not in text


def test_no_secret_or_token_in_a_real_servers_logs(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with plain_http_server(data_dir, log_level="debug") as server:
        creds = json.loads((data_dir / "credentials.json").read_text())
        prefix = (
            f"/packer/2023-01-01/organizations/{creds['organization_id']}"
            f"/projects/{creds['project_id']}"
        )
        secret = creds["oauth"]["client_secret"]
        tokens = _traffic(server.base_url, creds["oauth"]["client_id"], secret, prefix)
    logged = server.stderr
    assert "client authentication failed" in logged
    for value in [secret, WRONG_SECRET, *tokens]:
        assert value not in logged

"""Secrets and tokens never reach the server's logs, even on failures logged at debug level."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
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


def test_json_logs_and_the_access_log_keep_secrets_out(tmp_path: Path) -> None:
    """``--log-format json --access-log``: every line on stderr is one JSON object with a
    UTC timestamp; each request has an access line with its fields; no token, secret,
    query string or header value is in any of them."""
    data_dir = tmp_path / "data"
    query_secret = "query-secret-0123456789abcdef"
    with plain_http_server(
        data_dir, None, "--log-format", "json", "--access-log", log_level="debug"
    ) as server:
        creds = json.loads((data_dir / "credentials.json").read_text())
        prefix = (
            f"/packer/2023-01-01/organizations/{creds['organization_id']}"
            f"/projects/{creds['project_id']}"
        )
        secret = creds["oauth"]["client_secret"]
        tokens = _traffic(server.base_url, creds["oauth"]["client_id"], secret, prefix)
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            bearer = {"Authorization": f"Bearer {tokens[0]}"}
            got = http.get(f"{prefix}/buckets?access_token={query_secret}", headers=bearer)
            assert got.status_code == 200
        time.sleep(0.5)
    lines = server.stderr.splitlines()
    entries = [json.loads(line) for line in lines]  # every line is JSON
    for entry in entries:
        assert {"ts", "level", "logger", "message"} <= set(entry), entry
        assert entry["ts"].endswith("Z") and "T" in entry["ts"]
    access = [e for e in entries if e["logger"] == "packyard.access"]
    fields = {"method", "path", "operation", "status", "duration_ms", "bytes"}
    assert access and all(fields <= set(e) for e in access)
    buckets = [e for e in access if e["operation"] == "PackerService_ListBuckets"]
    assert {e["status"] for e in buckets} >= {200, 401}
    listed = next(e for e in buckets if e["status"] == 200 and e["bytes"] > 0)
    assert listed["path"] == f"{prefix}/buckets" and listed["method"] == "GET"
    tokens_exchanged = [e for e in access if e["path"] == "/oauth2/token"]
    assert {e["status"] for e in tokens_exchanged} == {200, 401}
    assert any(e["logger"] == "granian" for e in entries)  # granian's lines too
    logged = server.stderr
    assert "client authentication failed" in logged
    for value in [secret, WRONG_SECRET, query_secret, "access_token=", *tokens]:
        assert value not in logged
    assert "Bearer" not in logged and "authorization" not in logged.lower()


def test_text_logs_are_timestamped(tmp_path: Path) -> None:
    with plain_http_server(tmp_path / "data", None, "--access-log", log_level="info") as server:
        assert httpx.get(f"{server.base_url}/healthz", timeout=10).status_code == 200
        time.sleep(0.5)
    logged = [
        line for line in server.stderr.splitlines() if " granian: " in line or "packyard." in line
    ]
    access = [line for line in logged if " packyard.access: " in line]
    assert len(access) == 1
    stamp, level, logger, method, path, status = access[0].split()[:6]
    assert stamp.endswith("Z") and stamp[10] == "T"
    assert (level, logger, method, path, status) == (
        "INFO",
        "packyard.access:",
        "GET",
        "/healthz",
        "200",
    )
    for line in logged:  # every log line (not the start-up banner) starts with a UTC timestamp
        datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")

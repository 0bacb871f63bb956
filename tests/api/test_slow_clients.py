"""A request body that does not arrive in time is answered 408 (code 4) and the
connection closed, on every path a body takes: the read cache's keyed body, the
directly called routes and FastAPI's own routing."""

from __future__ import annotations

import json
import logging
import socket
import time

import pytest

from packyard.api.app import create_app
from packyard.domain.enums import Role
from packyard.services.container import Services
from tests.support.factories import TenantFixture
from tests.support.server import serving_app

TIMEOUT_S = 0.5


def _send_partial(
    port: int, method: str, path: str, headers: dict[str, str]
) -> tuple[bytes, float]:
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head.encode() + b"\r\n" + b'{"name": ')
        sock.settimeout(10)
        started = time.monotonic()
        answer = b""
        while chunk := sock.recv(65536):  # until the server closes the connection
            answer += chunk
        return answer, time.monotonic() - started


@pytest.mark.slow
def test_slow_bodies_are_answered_408_and_closed(
    services: Services, tenant: TenantFixture, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = (
        f"/packer/2023-01-01/organizations/{tenant.organization_id}/projects/{tenant.project_id}"
    )
    auth = {
        "Authorization": f"Bearer {tenant.identities[Role.ADMIN].token}",
        "Content-Type": "application/json",
    }
    app = create_app(services, background_jobs=False, body_timeout_s=TIMEOUT_S)
    caplog.set_level(logging.INFO)
    with serving_app(app) as base:
        port = int(base.rsplit(":", 1)[1])
        cases = [
            ("POST", f"{prefix}/_search/external_artifact", auth),  # keyed by the read cache
            ("PUT", f"{prefix}/buckets", auth),  # a directly called route
            ("POST", "/oauth2/token", {"Content-Type": "application/x-www-form-urlencoded"}),
        ]
        for method, path, headers in cases:
            answer, waited = _send_partial(port, method, path, headers)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.split(b" ")[1] == b"408", (path, answer)
            assert b"connection: close" in head.lower()
            assert json.loads(body)["code"] == 4
            assert TIMEOUT_S / 2 < waited < TIMEOUT_S + 3
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text

"""Refused console forms: one FAILED audit record each, by the signed-in person, over real
HTTP (a forged form, without the session's CSRF token, is not the person's and is not)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import select

from packyard.domain.enums import Role
from packyard.domain.models import Operator
from packyard.services.container import Services
from packyard.store.schema import audit_events
from tests.support.factories import Api, TenantFixture, unique

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _records(services: Services, project_id: str) -> list[Any]:
    with services.store.read() as conn:
        return list(
            conn.execute(
                select(audit_events)
                .where(audit_events.c.scope == project_id)
                .order_by(audit_events.c.seq)
            ).all()
        )


def _signed_in(base_url: str, email: str, password: str) -> httpx.Client:
    http = httpx.Client(base_url=base_url, verify=False, timeout=30)
    page = http.get("/sign-in")
    token = _CSRF.search(page.text)
    assert token is not None
    answer = http.post(
        "/sign-in", data={"email": email, "password": password, "csrf_token": token.group(1)}
    )
    assert answer.status_code in (200, 303), answer.text
    return http


def test_a_viewers_form_is_one_failed_record(
    api: Api, services: Services, tenant: TenantFixture, base_url: str
) -> None:
    bucket = unique("b")
    api.create_bucket(bucket)
    email, password = f"{unique('v')}@example.com", "a long enough password 1"
    services.users.create(
        Operator(),
        tenant.organization_id,
        tenant.project_id,
        email=email,
        role=Role.VIEWER,
        password=password,
    )
    http = _signed_in(base_url, email, password)
    try:
        page = http.get(f"/p/{tenant.project_id}/buckets/{bucket}")
        token = _CSRF.search(page.text)
        assert token is not None
        path = f"/p/{tenant.project_id}/buckets/{bucket}/channels"
        before = len(_records(services, tenant.project_id))
        forged = http.post(path, data={"csrf_token": "forged", "name": "qa"})
        refused = http.post(path, data={"csrf_token": token.group(1), "name": "qa"})
    finally:
        http.close()
    assert (forged.status_code, refused.status_code) == (403, 403)
    added = _records(services, tenant.project_id)[before:]
    assert [(r.status, r.description, r.actor_type, r.bucket) for r in added] == [
        ("FAILED", "Created channel", "TYPE_USER", bucket)
    ]
    assert dict(added[0].record)["error"].startswith("code = PERMISSION_DENIED desc = ")
    assert added[0].request_id == refused.headers["x-request-id"]

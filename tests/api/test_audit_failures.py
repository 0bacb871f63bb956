"""Refused writes over HTTP: one FAILED audit record each for an authenticated caller (with
the request's id and source address), nothing for a request without credentials."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from packyard.domain.enums import Role
from packyard.services.container import Services
from packyard.store.schema import audit_events, events
from tests.support.factories import Api, TenantFixture, unique


def _records(services: Services, project_id: str) -> list[Any]:
    with services.store.read() as conn:
        return list(
            conn.execute(
                select(audit_events)
                .where(audit_events.c.scope == project_id)
                .order_by(audit_events.c.seq)
            ).all()
        )


def _events(services: Services, project_id: str) -> int:
    with services.store.read() as conn:
        return len(conn.execute(select(events.c.id).where(events.c.project_id == project_id)).all())


def test_a_viewers_patch_is_one_failed_record(
    api: Api, services: Services, tenant: TenantFixture
) -> None:
    bucket = unique("b")
    api.create_bucket(bucket)
    before = len(_records(services, tenant.project_id))
    events_before = _events(services, tenant.project_id)

    response = api.as_role(Role.VIEWER).patch(f"/buckets/{bucket}", {"description": "mine"})

    assert response.status_code == 403
    added = _records(services, tenant.project_id)[before:]
    assert len(added) == 1
    (failed,) = added
    assert (failed.status, failed.action, failed.description) == (
        "FAILED",
        "update",
        "Updated bucket",
    )
    assert failed.request_id == response.headers["x-request-id"]
    assert failed.source_address == "127.0.0.1"
    assert (failed.actor_type, failed.actor_id) == (
        "TYPE_SERVICE",
        tenant.identities[Role.VIEWER].principal_id,
    )
    assert failed.bucket == bucket
    record = dict(failed.record)
    assert record["status"] == "FAILED"
    assert record["bucket"] == {"name": bucket}
    assert record["error"].startswith("code = PERMISSION_DENIED desc = ")
    assert _events(services, tenant.project_id) == events_before


def test_refusals_on_direct_routes_are_recorded_too(
    api: Api, services: Services, tenant: TenantFixture
) -> None:
    """CreateVersion is answered by the direct route table, outside FastAPI's routing
    (tests/api/test_direct.py::test_the_hot_routes_are_called_directly)."""
    bucket = unique("b")
    api.create_bucket(bucket)
    before = len(_records(services, tenant.project_id))
    response = api.as_role(Role.VIEWER).post(
        f"/buckets/{bucket}/versions", {"fingerprint": "fp-1", "template_type": "HCL2"}
    )
    assert response.status_code == 403
    added = _records(services, tenant.project_id)[before:]
    assert [(r.status, r.description) for r in added] == [("FAILED", "Created version")]


def test_a_bad_request_by_a_writer_is_recorded(
    api: Api, services: Services, tenant: TenantFixture
) -> None:
    bucket = unique("b")
    api.create_bucket(bucket)
    before = len(_records(services, tenant.project_id))
    response = api.post(f"/buckets/{bucket}/versions", {"fingerprint": "fp-1"})
    assert response.status_code == 400
    added = _records(services, tenant.project_id)[before:]
    assert [(r.status, r.description, r.actor_type) for r in added] == [
        ("FAILED", "Created version", "TYPE_SERVICE")
    ]
    assert dict(added[0].record)["error"].startswith("code = INVALID_ARGUMENT desc = ")


def test_no_credentials_no_record(api: Api, services: Services, tenant: TenantFixture) -> None:
    before = len(_records(services, tenant.project_id))
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = api.http.put(
            api.prefix + "/buckets", json={"name": unique("b")}, headers=headers
        )
        assert response.status_code == 401
    assert len(_records(services, tenant.project_id)) == before


def test_refused_reads_are_not_recorded(
    api: Api, services: Services, tenant: TenantFixture
) -> None:
    before = len(_records(services, tenant.project_id))
    assert api.get("/buckets/no-such-bucket").status_code == 404
    assert len(_records(services, tenant.project_id)) == before

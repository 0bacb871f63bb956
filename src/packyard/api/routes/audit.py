"""The project's audit log (Packyard's own API, ``packyard audit``): its admins only.

``GET …/audit`` lists entries newest first (commit order), one page at a time; each entry is
HCP's flat audit record plus Packyard's ``id``, ``seq``, ``request_id`` and
``source_address``, exactly as the audit sinks stream it (:mod:`packyard.services.audit`).
"""

from __future__ import annotations

from fastapi import APIRouter

from packyard.api.calls import run
from packyard.api.deps import CallerDep, ServicesDep
from packyard.api.responses import JSONBody
from packyard.api.routes import PACKYARD_BASE
from packyard.domain.audit import audit_query
from packyard.domain.paging import PageRequest, parse_page_size
from packyard.domain.rules import utcnow
from packyard.errors import ApiError, invalid
from packyard.services.audit import stream_record

router = APIRouter(prefix=PACKYARD_BASE, tags=["audit"])


@router.get(
    "/audit",
    operation_id="Packyard_ListAuditEvents",
    description=(
        "Audit entries of the project, newest first. ``since``/``until``: RFC 3339 or a"
        " duration back from now (``30m``, ``7d``); ``actor``: id or name; ``action``:"
        " ``create``, ``update``, ``delete`` or a description (``Revoked version``);"
        " ``status``: OK or FAILED."
    ),
)
async def list_audit(
    organization_id: str,
    project_id: str,
    caller: CallerDep,
    svc: ServicesDep,
    since: str | None = None,
    until: str | None = None,
    actor: str | None = None,
    bucket: str | None = None,
    action: str | None = None,
    status: str | None = None,
    page_size: str | None = None,
    page_token: str | None = None,
) -> JSONBody:
    query = audit_query(
        utcnow(),
        since=since,
        until=until,
        actor=actor,
        bucket=bucket,
        action=action,
        status=status,
    )
    try:
        size = parse_page_size(page_size)
    except ApiError:
        raise invalid(
            "page_size must be a whole number from 0 to 1000.", field="page_size"
        ) from None
    page = PageRequest(size=size, next_token=page_token or None)
    found = await run(svc, svc.audit.list, caller, organization_id, project_id, query, page)
    return JSONBody(
        {"events": [stream_record(r) for r in found.items], "next_page_token": found.next_token}
    )

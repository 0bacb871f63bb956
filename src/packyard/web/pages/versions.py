"""Console pages: a bucket's versions, one version, two versions compared, and the bucket's
whole lineage drawn as a graph.

Each page is one load function run as one call (``console.page``): a service read model (see
``VersionService.listing/detail/compare``, ``SbomService.links_for_version``,
``AncestryService.lineage``), each a fixed number of queries whatever the data. What a
writer may do to a version is linked from its page and done by the revocation and channel
pages; a viewer is shown none of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from packyard.domain.buildinfo import build_info
from packyard.domain.compare import compare_versions
from packyard.domain.enums import RevocationType, VersionStatus
from packyard.domain.lineage import MAX_CHILDREN, MAX_LINEAGE_NODES, LineageVersion
from packyard.domain.models import Caller, Version
from packyard.domain.paging import PageRequest
from packyard.domain.rules import status_of, utcnow
from packyard.services.container import Services
from packyard.web.console import page, project_url
from packyard.web.graph import layout

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
# The statuses a version can have, in the order people look for them.
STATUSES = (
    VersionStatus.ACTIVE,
    VersionStatus.REVOCATION_SCHEDULED,
    VersionStatus.REVOKED,
    VersionStatus.RUNNING,
    VersionStatus.INCOMPLETE,
    VersionStatus.FAILED,
    VersionStatus.CANCELLED,
)
Load = Callable[[Services, Caller], Mapping[str, Any]]
# What a finished change made on another page says when it returns here (``?done=…``):
# fixed texts, so nothing a link carries is shown as it is.
DONE = {
    "revoked": "Revoked. Versions built from it inherit the revocation, and channels that "
    "served them were rolled back unless you chose otherwise.",
    "revocation-scheduled": "Revocation scheduled: the version stays valid until then.",
    "restored": "The revocation was lifted: this version is valid again. Channels are not "
    "moved back to it; assign it again where it should be served.",
    "deleted": "The version was deleted.",
}


def _statuses(now: datetime) -> Callable[[Version], VersionStatus]:
    return lambda v: status_of(v, now)


def _revocation(v: Version, now: datetime) -> dict[str, Any] | None:
    """How a version's revocation reads on a page, or ``None`` when it has none."""
    if v.revoke_at is None:
        return None
    inherited = v.revocation_type is RevocationType.INHERITED
    return {
        "revoked": v.revoke_at <= now,
        "at": v.revoke_at,
        "message": v.revocation_message,
        "author": v.revocation_author,
        "inherited": inherited,
        "ancestor": v.revocation_inherited_from if inherited else None,
    }


# --- the versions of a bucket -------------------------------------------------------------


@router.get("/p/{project_id}/buckets/{bucket}/versions")
async def versions_page(
    request: Request,
    project_id: str,
    bucket: str,
    status: str = "",
    next: str = "",
    size: str = "",
    done: str = "",
) -> Response:
    chosen: VersionStatus | None = None
    errors: dict[str, str] = {}
    if status:
        try:
            chosen = VersionStatus(status)
        except ValueError:
            errors["status"] = "Choose one of the statuses in the list."
        if chosen is VersionStatus.UNSET:
            chosen, errors["status"] = None, "Choose one of the statuses in the list."
    page_size = int(size) if size.isdigit() and 0 < int(size) <= MAX_PAGE_SIZE else PAGE_SIZE

    def load(svc: Services, caller: Caller) -> dict[str, Any]:
        listing = svc.versions.listing(
            caller, bucket, PageRequest(size=page_size, next_token=next or None), status=chosen
        )
        now = utcnow()
        kept = {"status": chosen.value if chosen else ""}
        if page_size != PAGE_SIZE:
            kept["size"] = str(page_size)

        def url(**more: str) -> str:
            query = urlencode({k: v for k, v in {**kept, **more}.items() if v})
            return "?" + query if query else "?"

        next_url = url(next=listing.page.next_token) if listing.page.next_token else ""
        return {
            "bucket": listing.bucket,
            "versions": listing.page.items,
            "channels": listing.channels,
            "status_of": _statuses(now),
            "revocation": lambda v: _revocation(v, now),
            "statuses": STATUSES,
            "chosen": chosen,
            "asked": status,
            "paged": bool(next),
            "next_url": next_url,
            "first_url": url() if next else "",
            "done": DONE.get(done, ""),
            "errors": errors,
        }

    return await page(request, project_id, "versions.html", load)


# --- one version ----------------------------------------------------------------------------


@router.get("/p/{project_id}/buckets/{bucket}/versions/{fingerprint}")
async def version_page(
    request: Request, project_id: str, bucket: str, fingerprint: str, done: str = ""
) -> Response:
    def load(svc: Services, caller: Caller) -> dict[str, Any]:
        detail = svc.versions.detail(caller, bucket, fingerprint)
        sboms = svc.sboms.links_for_version(caller, bucket, fingerprint)
        now = utcnow()
        v = detail.version
        return {
            "bucket": detail.bucket,
            "version": v,
            "status": status_of(v, now),
            "revocation": _revocation(v, now),
            "channels": detail.channels,
            "parents": detail.relations.parents,
            "children": detail.relations.children,
            "children_total": detail.relations.children_total,
            "max_children": MAX_CHILDREN,
            "info": {b.id: build_info(b.metadata) for b in v.builds},
            "sboms": sboms,
            "now": now,
            "done": DONE.get(done, ""),
        }

    return await page(request, project_id, "version.html", load)


# --- two versions compared ------------------------------------------------------------------


@router.get("/p/{project_id}/buckets/{bucket}/compare")
async def compare_page(
    request: Request, project_id: str, bucket: str, a: str = "", b: str = ""
) -> Response:
    def load(svc: Services, caller: Caller) -> dict[str, Any]:
        found = svc.versions.compare(caller, bucket, a, b)
        errors: dict[str, str] = {}
        for side, asked, version in (("a", found.asked_a, found.a), ("b", found.asked_b, found.b)):
            if asked and version is None:
                errors[side] = (
                    f"{bucket} has no version with the fingerprint “{asked[:128]}”; choose one "
                    "from the list."
                )
        sections = []
        if found.a is not None and found.b is not None:
            sections = compare_versions(
                found.a,
                found.b,
                found.parents.get(found.a.id, []),
                found.parents.get(found.b.id, []),
            )
        now = utcnow()
        return {
            "bucket": found.bucket,
            "a": found.a,
            "b": found.b,
            "asked_a": found.asked_a,
            "asked_b": found.asked_b,
            "options": found.options,
            "sections": sections,
            "status_of": _statuses(now),
            "revocation": lambda v: _revocation(v, now),
            "errors": errors,
        }

    return await page(request, project_id, "compare.html", load)


# --- the lineage graph ----------------------------------------------------------------------


@router.get("/p/{project_id}/buckets/{bucket}/ancestry")
async def ancestry_page(request: Request, project_id: str, bucket: str) -> Response:
    def load(svc: Services, caller: Caller) -> dict[str, Any]:
        lineage = svc.ancestry.lineage(caller, bucket)
        now = utcnow()

        def href(v: LineageVersion) -> str:
            return project_url(caller, "buckets", v.bucket_name, "versions", v.fingerprint)

        graph = layout(lineage, now, href)
        nodes = lineage.nodes
        relations = sorted(
            (e for e in lineage.edges if e.parent_id in nodes and e.child_id in nodes),
            key=lambda e: (
                nodes[e.child_id].bucket_name,
                -(nodes[e.child_id].number or 0),
                nodes[e.parent_id].bucket_name,
            ),
        )
        revoked = [n for n in graph.nodes if n.status is VersionStatus.REVOKED]
        return {
            "bucket_name": lineage.bucket_name,
            "lineage": lineage,
            "graph": graph,
            "relations": relations,
            "revoked": revoked,
            "href": href,
            "max_nodes": MAX_LINEAGE_NODES,
            "now": now,
        }

    return await page(request, project_id, "ancestry.html", load)

"""Refused changes of the API in the audit log: one FAILED record per refused write.

The :class:`ApiError` handler calls :func:`audit_failure` for every error, on FastAPI's
routes and the direct ones alike (both answer errors through the application's handlers).
A write (a route of :data:`WRITES`) refused to an authenticated caller is audited with the
error; a request without valid credentials is not (nobody could then fill the audit log),
and neither are reads.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request

from packyard.api.calls import run
from packyard.domain.events import AuditAction, Change
from packyard.domain.models import Caller
from packyard.errors import ApiError
from packyard.services.container import Services
from packyard.services.journal import record_failure

log = logging.getLogger("packyard.api")

CREATE, UPDATE, DELETE = AuditAction.CREATE, AuditAction.UPDATE, AuditAction.DELETE

# The operation id of each write route: what its audit record says it attempted.
WRITES: dict[str, tuple[AuditAction, str]] = {
    "PackerService_CreateBucket": (CREATE, "Created bucket"),
    "PackerService_UpdateBucket": (UPDATE, "Updated bucket"),
    "PackerService_DeleteBucket": (DELETE, "Deleted bucket"),
    "PackerService_CreateVersion": (CREATE, "Created version"),
    "PackerService_UpdateVersion": (UPDATE, "Updated version"),
    "PackerService_DeleteVersion": (DELETE, "Deleted version"),
    "PackerService_CreateBuild": (CREATE, "Created build"),
    "PackerService_UpdateBuild": (UPDATE, "Updated build"),
    "PackerService_DeleteBuild": (DELETE, "Deleted build"),
    "PackerService_UploadSbom": (CREATE, "Uploaded SBOM"),
    "PackerService_CreateChannel": (CREATE, "Created channel"),
    "PackerService_UpdateChannel": (UPDATE, "Updated channel"),
    "PackerService_AssignChannelVersion": (UPDATE, "Assigned version to channel"),
    "PackerService_DeleteChannel": (DELETE, "Deleted channel"),
    "PackerService_CreateRegistry": (CREATE, "Created registry"),
    "PackerService_UpdateRegistry": (UPDATE, "Updated registry"),
    "PackerService_DeleteRegistry": (DELETE, "Deleted registry"),
    "PackerService_UpdateRunTaskConfig": (UPDATE, "Updated run task configuration"),
    "PackerService_RegenerateTFCRunTaskHmacKey": (UPDATE, "Regenerated run task HMAC key"),
    "Packyard_CreatePrincipal": (CREATE, "Created service principal"),
    "Packyard_UpdatePrincipal": (UPDATE, "Updated service principal"),
    "Packyard_RotatePrincipalSecret": (UPDATE, "Rotated service principal secret"),
    "Packyard_DeletePrincipal": (DELETE, "Deleted service principal"),
    "Packyard_GrantAccess": (CREATE, "Granted access"),
    "Packyard_RevokeAccess": (DELETE, "Revoked access"),
    "ResourceService_SetIamPolicy": (UPDATE, "Updated bucket access policy"),
    "WebhookService_CreateWebhook": (CREATE, "Created webhook"),
    "WebhookService_UpdateWebhook": (UPDATE, "Updated webhook"),
    "WebhookService_UpdateWebhookName": (UPDATE, "Renamed webhook"),
    "WebhookService_DeleteWebhook": (DELETE, "Deleted webhook"),
    "Packyard_RedeliverWebhookDelivery": (UPDATE, "Redelivered webhook delivery"),
    "PackerService_CreateEnforcedBlock": (CREATE, "Created enforced block"),
    "PackerService_UpdateEnforcedBlock": (UPDATE, "Updated enforced block"),
    "PackerService_DeleteEnforcedBlock": (DELETE, "Deleted enforced block"),
    "PackerService_CreateEnforcedBlockVersion": (CREATE, "Created enforced block version"),
    "PackerService_UpdateEnforcedBlockVersion": (UPDATE, "Updated enforced block version"),
    "PackerService_DeleteEnforcedBlockVersion": (DELETE, "Deleted enforced block version"),
    "PackerService_ManageEnforcedBlockLinkedBuckets": (UPDATE, "Linked enforced block to buckets"),
}


def remember_caller(request: Request, caller: Caller) -> None:
    """Called by the authentication dependency: who a refused change is audited as."""
    request.state.caller = caller


async def audit_failure(request: Request, error: ApiError) -> None:
    route = request.scope.get("route")
    attempted = WRITES.get(getattr(route, "operation_id", None) or "")
    caller = getattr(request.state, "caller", None)
    if attempted is None or not isinstance(caller, Caller):
        return
    svc: Services = request.app.state.services
    params = request.path_params
    blocks: dict[str, Any] = {}
    if "bucket_name" in params:
        blocks["bucket"] = {"name": params["bucket_name"]}
    if "fingerprint" in params:
        blocks["version"] = {"fingerprint": params["fingerprint"]}
    if "enforced_block_id" in params:
        blocks["enforced_block"] = {"id": params["enforced_block_id"]}
    change = Change(attempted[0], attempted[1], blocks, bucket=str(params.get("bucket_name", "")))
    try:
        await run(svc, record_failure, svc.store, caller.project_id, caller, change, error)
    except Exception:  # the refusal is answered whatever happens to its record
        log.exception("could not audit a refused %s", attempted[1].lower())

"""Refused changes of the console in the audit log: one FAILED record per refused form.

:func:`packyard.web.console.error_page` and :func:`packyard.web.console.field_errors` (the
two ways every form answers a refusal) call :func:`audit_refusal`; a form of
:data:`FORMS` refused to a signed-in person is audited once, with the error. Forms that
change nothing (a revocation's preview, signing in and out) are not in the table.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

from starlette.requests import Request

from packyard.domain.events import AuditAction, Change
from packyard.domain.models import Caller
from packyard.errors import ApiError
from packyard.services.container import Services
from packyard.services.journal import record_failure

log = logging.getLogger("packyard.web")

CREATE, UPDATE, DELETE = AuditAction.CREATE, AuditAction.UPDATE, AuditAction.DELETE

# The handler of each form that changes something: what its audit record says it attempted.
FORMS: dict[str, tuple[AuditAction, str]] = {
    "create_user": (CREATE, "Created user"),
    "set_user_role": (UPDATE, "Updated user"),
    "disable_user": (UPDATE, "Updated user"),
    "enable_user": (UPDATE, "Updated user"),
    "reset_password": (UPDATE, "Reset user password"),
    "create_principal": (CREATE, "Created service principal"),
    "set_principal_role": (UPDATE, "Updated service principal"),
    "disable_principal": (UPDATE, "Updated service principal"),
    "enable_principal": (UPDATE, "Updated service principal"),
    "rotate_secret": (UPDATE, "Rotated service principal secret"),
    "delete_principal": (DELETE, "Deleted service principal"),
    "grant_access": (CREATE, "Granted access"),
    "revoke_access": (DELETE, "Revoked access"),
    "create_channel": (CREATE, "Created channel"),
    "promote_channel": (UPDATE, "Assigned version to channel"),
    "assign_version": (UPDATE, "Assigned version to channel"),
    "change_restriction": (UPDATE, "Updated channel"),
    "delete_channel": (DELETE, "Deleted channel"),
    "revoke_confirm": (UPDATE, "Revoked version"),
    "restore": (UPDATE, "Restored version"),
    "delete_version": (DELETE, "Deleted version"),
    "create_webhook": (CREATE, "Created webhook"),
    "enable_webhook": (UPDATE, "Updated webhook"),
    "disable_webhook": (UPDATE, "Updated webhook"),
    "delete_webhook": (DELETE, "Deleted webhook"),
    "redeliver_webhook": (UPDATE, "Redelivered webhook delivery"),
}

# The form being answered, once its person is known (set by ``submitted``), for
# ``field_errors``, which is given only the error.
_form: contextvars.ContextVar[tuple[Request, Caller] | None] = contextvars.ContextVar(
    "packyard_console_form", default=None
)


def answering(request: Request, caller: Caller | None) -> None:
    if caller is not None:
        _form.set((request, caller))


def refused_form(error: ApiError) -> None:
    found = _form.get()
    if found is not None:
        audit_refusal(found[0], found[1], error)


def not_audited(request: Request) -> None:
    """A refusal that is not the person's attempt (a forged cross-site form)."""
    request.state.refusal_audited = True


def audit_refusal(request: Request, caller: Caller | None, error: ApiError) -> None:
    if caller is None or request.method != "POST":
        return
    if getattr(request.state, "refusal_audited", False):
        return
    attempted = FORMS.get(getattr(request.scope.get("route"), "name", "") or "")
    if attempted is None:
        return
    request.state.refusal_audited = True
    params = request.path_params
    blocks: dict[str, Any] = {}
    if "bucket" in params:
        blocks["bucket"] = {"name": params["bucket"]}
    if "fingerprint" in params:
        blocks["version"] = {"fingerprint": params["fingerprint"]}
    change = Change(attempted[0], attempted[1], blocks, bucket=str(params.get("bucket", "")))
    svc: Services = request.app.state.services
    try:
        record_failure(svc.store, caller.project_id, caller, change, error)
    except Exception:  # the refusal is shown whatever happens to its record
        log.exception("could not audit a refused %s", attempted[1].lower())

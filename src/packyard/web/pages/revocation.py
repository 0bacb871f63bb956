"""Console pages: revoking a version (form, preview of everything it changes, typed
confirmation), restoring one or cancelling a scheduled revocation, and deleting a version.

The preview comes from :meth:`RevocationService.preview`, which runs the SQL the revocation
itself runs, so what a person confirms is what happens (unless someone changes the registry
in between). The version's name must be typed to confirm, and the server checks it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from packyard.api.calls import run
from packyard.domain.models import Caller, Version
from packyard.domain.rules import utcnow
from packyard.errors import ApiError, Code, invalid
from packyard.services.container import Services
from packyard.services.revocation import RevocationPreview, RevocationRequest
from packyard.web.console import (
    Context,
    acting,
    checked,
    error_page,
    field,
    field_errors,
    redirect,
    render,
    show,
    submitted,
    writer,
)
from packyard.web.filters import version_status

router = APIRouter(include_in_schema=False)

_VERSION = "/p/{project_id}/buckets/{bucket}/versions/{fingerprint}"
_REFUSED = (Code.PERMISSION_DENIED, Code.NOT_FOUND, Code.ABORTED)


@dataclass(frozen=True, slots=True)
class RevokeForm:
    """The revocation form as the person filled it in (kept on errors and in the preview)."""

    when: str = "now"  # now | at | in
    revoke_at: str = ""  # <input type="datetime-local">, UTC
    revoke_in: str = ""  # a duration: 2h, 30d, 2h45m
    message: str = ""
    descendants: bool = True
    rollback: bool = True

    @classmethod
    def of(cls, data: FormData) -> RevokeForm:
        return cls(
            when=field(data, "when") or "now",
            revoke_at=field(data, "revoke_at").strip(),
            revoke_in=field(data, "revoke_in").strip(),
            message=field(data, "revocation_message").strip(),
            descendants=checked(data, "descendants"),
            rollback=checked(data, "rollback"),
        )

    def request(self, now: datetime) -> RevocationRequest:
        """The service request; what only a person's form can get wrong is refused here
        (the service checks the rest: durations, the message, the horizon)."""
        revoke_at: datetime | None = None
        revoke_in: str | None = None
        if self.when == "now":
            revoke_in = "0s"
        elif self.when == "at":
            revoke_at = _utc_time(self.revoke_at)
            if revoke_at <= now:
                raise invalid(
                    "That time has passed: choose a time ahead, or revoke now.", field="revoke_at"
                )
        elif self.when == "in":
            if not self.revoke_in:
                raise invalid("Give a duration such as 2h or 30d.", field="revoke_in")
            revoke_in = self.revoke_in
        else:
            raise invalid("Choose when the revocation takes effect.", field="when")
        return RevocationRequest(
            revoke_at=revoke_at,
            revoke_in=revoke_in,
            message=self.message,
            restore=False,
            skip_descendants=not self.descendants,
            disable_rollback=not self.rollback,
        )


def _utc_time(value: str) -> datetime:
    if not value:
        raise invalid("Choose the date and time (UTC).", field="revoke_at")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise invalid(
            "Give the date and time as YYYY-MM-DDTHH:MM (UTC).", field="revoke_at"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _version(bucket: str, fingerprint: str) -> Callable[[Services, Caller], Mapping[str, Any]]:
    def load(svc: Services, caller: Caller) -> Mapping[str, Any]:
        return {"version": svc.versions.get(caller, bucket, fingerprint)}

    return load


def _version_url(ctx: Context, bucket: str, fingerprint: str) -> str:
    return ctx.url("buckets", bucket, "versions", fingerprint)


async def _revoke_form(
    ctx: Context,
    bucket: str,
    fingerprint: str,
    entered: RevokeForm,
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    return await show(
        ctx,
        "revoke.html",
        _version(bucket, fingerprint),
        status=status,
        bucket_name=bucket,
        entered=entered,
        errors=errors,
        here=_version_url(ctx, bucket, fingerprint),
        now_utc=utcnow().strftime("%Y-%m-%d %H:%M"),
    )


def _preview_page(
    ctx: Context,
    preview: RevocationPreview,
    entered: RevokeForm,
    *,
    errors: dict[str, str] | None = None,
    typed: str = "",
) -> Response:
    v = preview.version
    return render(
        ctx,
        "revoke_preview.html",
        {
            "preview": preview,
            "entered": entered,
            "typed": typed,
            "errors": errors or {},
            "here": _version_url(ctx, v.bucket_name, v.fingerprint),
        },
        status=400 if errors else 200,
    )


@router.get(_VERSION + "/revoke")
async def revoke_form(request: Request, project_id: str, bucket: str, fingerprint: str) -> Response:
    ctx = await writer(request, project_id, bucket)
    if not isinstance(ctx, Context):
        return ctx
    return await _revoke_form(ctx, bucket, fingerprint, RevokeForm(), {})


@router.post(_VERSION + "/revoke")
async def revoke_preview(
    request: Request, project_id: str, bucket: str, fingerprint: str
) -> Response:
    got = await submitted(request, project_id, bucket=bucket)
    if isinstance(got, Response):
        return got
    ctx, data = got
    entered = RevokeForm.of(data)
    if field(data, "edit"):  # "Change the choices" on the preview
        return await _revoke_form(ctx, bucket, fingerprint, entered, {})
    svc, caller = acting(ctx)
    try:
        wanted = entered.request(utcnow())
        preview = await run(svc, svc.revocation.preview, caller, bucket, fingerprint, wanted)
    except ApiError as exc:
        if exc.code in _REFUSED:
            return error_page(ctx, request, exc)
        return await _revoke_form(ctx, bucket, fingerprint, entered, field_errors(exc), 400)
    return _preview_page(ctx, preview, entered)


def _confirmed(
    svc: Services,
    caller: Caller,
    bucket: str,
    fingerprint: str,
    wanted: RevocationRequest,
    typed: str,
) -> Version | RevocationPreview:
    """Revoke if ``typed`` is the version's name; else the preview again, to retry."""
    version = svc.versions.get(caller, bucket, fingerprint)
    if typed != version.name:
        return svc.revocation.preview(caller, bucket, fingerprint, wanted)
    return svc.revocation.update(caller, bucket, fingerprint, wanted)


@router.post(_VERSION + "/revoke/confirm")
async def revoke_confirm(
    request: Request, project_id: str, bucket: str, fingerprint: str
) -> Response:
    got = await submitted(request, project_id, bucket=bucket)
    if isinstance(got, Response):
        return got
    ctx, data = got
    entered = RevokeForm.of(data)
    typed = field(data, "confirm").strip()
    svc, caller = acting(ctx)
    try:
        wanted = entered.request(utcnow())
        done = await run(svc, _confirmed, svc, caller, bucket, fingerprint, wanted, typed)
    except ApiError as exc:
        if exc.code in _REFUSED:
            return error_page(ctx, request, exc)
        return await _revoke_form(ctx, bucket, fingerprint, entered, field_errors(exc), 400)
    if isinstance(done, RevocationPreview):
        name = done.version.name
        wrong = {"confirm": f"Type the version's name, {name}, exactly: nothing was revoked."}
        return _preview_page(ctx, done, entered, errors=wrong, typed=typed)
    state = "revoked" if version_status(done) == "VERSION_REVOKED" else "revocation-scheduled"
    return redirect(_version_url(ctx, bucket, fingerprint) + f"?done={state}")


@router.post(_VERSION + "/restore")
async def restore(request: Request, project_id: str, bucket: str, fingerprint: str) -> Response:
    got = await submitted(request, project_id, bucket=bucket)
    if isinstance(got, Response):
        return got
    ctx, _ = got
    svc, caller = acting(ctx)
    try:
        await run(svc, svc.revocation.restore, caller, bucket, fingerprint)
    except ApiError as exc:
        return error_page(ctx, request, exc)
    return redirect(_version_url(ctx, bucket, fingerprint) + "?done=restored")


# --- deleting a version --------------------------------------------------------------


def _use(bucket: str, fingerprint: str) -> Callable[[Services, Caller], Mapping[str, Any]]:
    def load(svc: Services, caller: Caller) -> Mapping[str, Any]:
        return {"use": svc.channels.serving_version(caller, bucket, fingerprint)}

    return load


def _deleted(
    svc: Services, caller: Caller, bucket: str, fingerprint: str, typed: str, rollback: bool
) -> None:
    """Delete if ``typed`` is the version's name (400 on ``confirm`` otherwise)."""
    version = svc.versions.get(caller, bucket, fingerprint)
    if typed != version.name:
        raise invalid(
            f"Type the version's name, {version.name}, exactly: nothing was deleted.",
            field="confirm",
        )
    svc.versions.delete(caller, bucket, fingerprint, rollback_channels=rollback)


@router.get(_VERSION + "/delete")
async def delete_form(request: Request, project_id: str, bucket: str, fingerprint: str) -> Response:
    ctx = await writer(request, project_id, bucket)
    if not isinstance(ctx, Context):
        return ctx
    return await show(
        ctx,
        "delete_version.html",
        _use(bucket, fingerprint),
        here=_version_url(ctx, bucket, fingerprint),
        errors={},
        typed="",
        rollback=False,
    )


@router.post(_VERSION + "/delete")
async def delete_version(
    request: Request, project_id: str, bucket: str, fingerprint: str
) -> Response:
    got = await submitted(request, project_id, bucket=bucket)
    if isinstance(got, Response):
        return got
    ctx, data = got
    typed = field(data, "confirm").strip()
    rollback = checked(data, "rollback_channels")
    svc, caller = acting(ctx)
    try:
        await run(svc, _deleted, svc, caller, bucket, fingerprint, typed, rollback)
    except ApiError as exc:
        if exc.code in _REFUSED:
            return error_page(ctx, request, exc)
        errors = field_errors(exc)
        if exc.code is Code.FAILED_PRECONDITION:  # served by channels: roll them back?
            errors = {"rollback_channels": errors.pop("form", exc.message), **errors}
        return await show(
            ctx,
            "delete_version.html",
            _use(bucket, fingerprint),
            status=400,
            here=_version_url(ctx, bucket, fingerprint),
            errors=errors,
            typed=typed,
            rollback=rollback,
        )
    return redirect(ctx.url("buckets", bucket, "versions") + "?done=deleted")

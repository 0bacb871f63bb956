"""OAuth2 client-credentials token endpoint, as the HCP Go SDK calls it.

Credentials come in HTTP Basic (each part URL-escaped before base64, as golang.org/x/oauth2
sends them) or as ``client_id``/``client_secret`` form fields. Repeated failures are throttled
per client id and per remote address (429 + ``Retry-After``, see
:mod:`packyard.services.throttle`). Nothing here logs a secret or a token.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from fastapi import APIRouter, Request
from starlette.responses import Response

from packyard.api.admission import without_write_turn
from packyard.api.calls import run, run_hashing
from packyard.api.deps import ServicesDep
from packyard.api.responses import JSONBody
from packyard.errors import ApiError, Code
from packyard.services.throttle import retry_after

router = APIRouter(tags=["auth"])
API_AUDIENCE = "https://api.hashicorp.cloud"


def _oauth_error(
    status: int, error: str, description: str, *, retry_after: int | None = None
) -> JSONBody:
    headers: dict[str, str] = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="packyard"'
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONBody(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    # The Go oauth2 library URL-escapes both parts before base64-encoding them.
    return unquote_plus(client_id), unquote_plus(secret)


@router.post("/oauth2/token", operation_id="OAuth2_Token")
@without_write_turn
async def token(request: Request, svc: ServicesDep) -> Response:
    form = await request.form()
    grant_type = form.get("grant_type")
    if grant_type != "client_credentials":
        return _oauth_error(
            400, "unsupported_grant_type", "Only the client_credentials grant is supported."
        )
    audience = form.get("audience")
    if audience not in (None, "", API_AUDIENCE):
        return _oauth_error(400, "invalid_request", f"Unknown audience; use {API_AUDIENCE}.")
    creds = _basic_credentials(request.headers.get("authorization", ""))
    if creds is None:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if isinstance(client_id, str) and isinstance(secret, str):
            creds = (client_id, secret)
    if creds is None or not creds[0] or not creds[1]:
        return _oauth_error(401, "invalid_client", "Client authentication failed.")
    address = request.client.host if request.client else None
    try:
        # Secrets of databases made before 0.2 are still checked with scrypt until their
        # first successful use.
        principal = await run_hashing(
            svc.auth.authenticate_client, creds[0], creds[1], address=address
        )
    except ApiError as exc:
        if exc.code is not Code.RESOURCE_EXHAUSTED:
            raise
        wait = retry_after(exc) or 1
        return _oauth_error(429, "slow_down", exc.message, retry_after=wait)
    if principal is None:
        return _oauth_error(401, "invalid_client", "Client authentication failed.")
    issued = await run(svc, svc.auth.issue_token, principal)
    return JSONBody(
        {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )

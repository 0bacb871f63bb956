"""OAuth2 client-credentials token endpoint, as the HCP Go SDK calls it."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from fastapi import APIRouter, Request
from starlette.responses import Response

from packyard.api.deps import ServicesDep
from packyard.api.responses import JSONBody

router = APIRouter(tags=["auth"])
API_AUDIENCE = "https://api.hashicorp.cloud"


def _oauth_error(status: int, error: str, description: str) -> JSONBody:
    headers = {"WWW-Authenticate": 'Basic realm="packyard"'} if status == 401 else None
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
    principal = svc.auth.authenticate_client(*creds)
    if principal is None:
        return _oauth_error(401, "invalid_client", "Client authentication failed.")
    issued = svc.auth.issue_token(principal)
    return JSONBody(
        {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )

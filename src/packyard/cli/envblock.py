"""The environment block stock HCP clients need to reach this server."""

from __future__ import annotations

import shlex

from packyard.config import Advertised
from packyard.services.bootstrap import AdminCredentials

ENV_KEYS = (
    "HCP_API_ADDRESS",
    "HCP_API_TLS",
    "HCP_AUTH_URL",
    "HCP_AUTH_TLS",
    "HCP_CLIENT_ID",
    "HCP_CLIENT_SECRET",
    "HCP_ORGANIZATION_ID",
    "HCP_PROJECT_ID",
)


def env_block(advertised: Advertised, creds: AdminCredentials) -> dict[str, str | None]:
    """The eight ``HCP_*`` variables; ``None`` means "leave unset".

    The SDK insists on an https auth URL even when the API is plain HTTP (behind
    a TLS-terminating proxy the public address is https). It knows only two TLS
    settings, ``disabled`` (plain HTTP) and ``insecure`` (no certificate check);
    verified TLS is what it does when the variable is unset, which is right for
    a certificate given with ``--tls-cert``. The generated self-signed
    certificate needs ``insecure``.
    """
    api_tls: str | None
    if not advertised.tls:
        api_tls = "disabled"
    else:
        api_tls = "insecure" if advertised.self_signed else None
    auth_tls = "insecure" if advertised.self_signed else None
    return {
        "HCP_API_ADDRESS": advertised.address,
        "HCP_API_TLS": api_tls,
        "HCP_AUTH_URL": f"https://{advertised.address}",
        "HCP_AUTH_TLS": auth_tls,
        "HCP_CLIENT_ID": creds.client_id,
        "HCP_CLIENT_SECRET": creds.client_secret,
        "HCP_ORGANIZATION_ID": creds.organization_id,
        "HCP_PROJECT_ID": creds.project_id,
    }


def as_shell(block: dict[str, str | None]) -> str:
    return "\n".join(
        f"unset {k}" if v is None else f"export {k}={shlex.quote(v)}" for k, v in block.items()
    )
